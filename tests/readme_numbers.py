"""Check, or regenerate, every number README.md and docs/*.md quote from this repository's code and commands.

    python -m tests.readme_numbers                  # the checks below, then `make demo`'s command (examples/demo.py)
    python -m tests.readme_numbers --no-demo        # the checks without the demo (what tests/test_readme.py runs)
    python -m tests.readme_numbers --demo-run DIR   # reads the demo's two finished run folders under DIR (its
                                                    # --project, e.g. runs/classify) instead of training again
    python -m tests.readme_numbers --project DIR    # the demo's run folders under DIR (default: Ultralytics' runs_dir)
    python -m tests.readme_numbers --write          # also regenerates the tables, the split sizes and the demo table

It prints one row per item: the page, what it says, what the code or command gives, and whether they agree; the exit
code is 1 when any item disagrees.

**Facts of the code, tolerance none** (they must agree exactly):

- the supported Ultralytics range, wherever a page writes it, against pyproject.toml's requirement;
- the two releases ``make test-compat`` tests (docs/compatibility.md) against the Makefile's ``COMPAT_VERSIONS``;
- the digits sizes and the two dataset builders' signatures (docs/datasets.md) against the builders;
- the plugin argument table (README.md) and the hostile-input table (docs/robustness.md) against their generators.

**``make demo``'s numbers, measured** (only when the demo runs: it trains two runs of 10 epochs, or reads them with
``--demo-run``), from each run's ``calibration/final.json`` (best.pt):

- docs/calibration.md's side-by-side table (between ``<!-- demo-table -->`` markers) of the hard-target run (ε=0)
  and the smoothed run (ε=0.1), row by row. **Tolerance: 0.03 absolute** for top-1, ECE, confidence - top-1 and ECE
  after temperature scaling, **0.06** for NLL (training from scratch on another CPU or torch build moves them a
  little; the same machine repeats them exactly). ``--write`` puts the measured table in place;
- its two claims, for both runs: **under**-confident (mean confidence below top-1 accuracy), and temperature scaling
  removes most of the ECE (``ece_ts < ece / 2``);
- the demo's wall time against README.md's and docs/development.md's "about N min". **Tolerance: a factor of 2**
  either way (it depends on the machine and its load; rewrite it by hand).

Study numbers (compare reports, benchmarks) are not regenerated here: they come with their commands in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import ROOT
from tests.readme_blocks import page_name, pages

README = ROOT / "README.md"
DOCS = ROOT / "docs"
RANGE_RE = re.compile(r">=\d+(?:\.\d+)*,<\d+(?:\.\d+)*")
COMPAT_RE = re.compile(r"the\s+oldest\s+and\s+the\s+newest\s+supported\s+release\s+\((?P<old>[\d.]+)\s+and\s+"
                       r"(?P<new>[\d.]+)\)")
DIGITS_RE = re.compile(r"the\s+(?P<total>[\d,]+)\s+digits\s+\((?P<train>[\d,]+)\s+train\s+/\s+(?P<val>[\d,]+)\s+val")
DEMO_CLAIM = ("**under**-confident (mean confidence below top-1 accuracy), and temperature scaling removes most of "
              "their ECE")
DEMO_TIME_RES = {  # the pages that say how long `make demo` takes
    "README.md": re.compile(r"^make demo\s+#[^\n]*about (?P<minutes>[\d.]+) min", re.M),
    "docs/development.md": re.compile(r"\| `make demo` \|[^|\n]*\| about (?P<minutes>[\d.]+) min"),
}
DEMO_TIME_FACTOR = 2.0
DEMO_TOLERANCE = {"NLL": 0.06}  # per row of the demo table; every other row 0.03
DEMO_ROW_TOLERANCE = 0.03
DEMO_START, DEMO_END = "<!-- demo-table -->\n", "\n<!-- /demo-table -->"
DEMO_PAGE = "docs/calibration.md"
HOSTILE_START, HOSTILE_END = "<!-- hostile-table -->\n", "\n<!-- /hostile-table -->"
ARG_HEADER = "| argument | default | allowed | what it does |"


@dataclass
class Item:
    """One quoted item: the page, what it says, what the code or command gives, and whether they agree."""

    name: str
    page: str
    says: str
    gives: str
    ok: bool
    by_write: bool = False  # --write puts the code's or command's value in place (besides the tables and sizes)


def flat(text: str) -> str:
    """The text with every run of whitespace (line breaks included) as one space, to find a phrase across lines."""
    return " ".join(text.split())


def _same(name: str, page: str, says: str | None, gives: str) -> Item:
    """An item that must be written exactly as the code gives it (``None``: the page does not say it)."""
    return Item(name, page, "(not found)" if says is None else says, gives, says == gives)


def texts() -> dict[str, str]:
    """Every page's text by its name (README.md, docs/*.md)."""
    return {page_name(p): p.read_text(encoding="utf-8") for p in pages()}


# ------------------------------------------------------------------------------------------ facts of the code
def ultralytics_spec() -> str:
    """pyproject.toml's Ultralytics requirement, e.g. ``>=8.3.210,<8.5``."""
    found = re.search(r'"ultralytics(?P<spec>[<>=!~][^"]*)"', (ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    if found is None:
        raise ValueError("pyproject.toml has no ultralytics requirement")
    return found["spec"].replace(" ", "")


def compat_versions() -> list[str]:
    """The Makefile's ``COMPAT_VERSIONS``: the releases ``make test-compat`` tests."""
    found = re.search(r"^COMPAT_VERSIONS\s*\??=\s*(?P<v>.+)$", (ROOT / "Makefile").read_text(encoding="utf-8"), re.M)
    if found is None:
        raise ValueError("the Makefile sets no COMPAT_VERSIONS")
    return found["v"].split()


def signature(fn) -> str:
    """``name(arg=default, ...)`` as the docs write a builder's call with its defaults."""
    params = ", ".join(f"{p.name}={p.default!r}" for p in inspect.signature(fn).parameters.values()
                       if p.default is not inspect.Parameter.empty and p.kind is not p.KEYWORD_ONLY)
    return f"{fn.__name__}({params})"


def digit_counts() -> dict[str, str]:
    """The digits dataset's image counts, from a fresh build (total, train, val; written as the docs write them)."""
    from yolo_ls.datasets import digits

    with tempfile.TemporaryDirectory() as tmp:
        root = digits(Path(tmp) / "digits", imgsz=8)
        counts = {s: sum(1 for _ in (root / s).rglob("*.png")) for s in ("train", "val")}
    return {k: f"{v:,}" for k, v in {"total": counts["train"] + counts["val"], **counts}.items()}


def arg_table() -> str:
    """The plugin argument table as the package generates it."""
    try:  # the package layout after the move into subpackages, and before it
        from yolo_ls.core.args import markdown_table
    except ImportError:
        from yolo_ls.core.args import markdown_table
    return markdown_table()


def hostile_table() -> str:
    from tests.test_hostile_inputs import markdown_table

    return markdown_table()


# ------------------------------------------------------------------------------------------ the checks
def hostile_section(text: str) -> str | None:
    if HOSTILE_START not in text or HOSTILE_END not in text:
        return None
    return text[text.index(HOSTILE_START) + len(HOSTILE_START):text.index(HOSTILE_END)]


def arg_section(text: str) -> str | None:
    if ARG_HEADER not in text:
        return None
    start = text.index(ARG_HEADER)
    end = text.find("\n\n", start)
    return text[start:] if end < 0 else text[start:end]


def range_items(pages_text: dict[str, str]) -> list[Item]:
    """Every written version range against pyproject.toml (README.md must write it at least once)."""
    spec = ultralytics_spec()
    items = [_same("Ultralytics range", page, said, spec)
             for page, text in pages_text.items() for said in RANGE_RE.findall(text)]
    if not any(i.page == "README.md" for i in items):
        items.append(_same("Ultralytics range", "README.md", None, spec))
    return items


def compat_items(pages_text: dict[str, str]) -> list[Item]:
    page = "docs/compatibility.md"
    found = COMPAT_RE.search(pages_text.get(page, ""))
    said = f"{found['old']} and {found['new']}" if found else None
    versions = compat_versions()
    return [_same("make test-compat releases", page, said, f"{versions[0]} and {versions[-1]}")]


def dataset_items(pages_text: dict[str, str]) -> list[Item]:
    """The digits sizes and the builders' defaults, as docs/datasets.md states them, against the builders."""
    from yolo_ls.datasets import digits, digits_detection

    page = "docs/datasets.md"
    text = pages_text.get(page, "")
    found = DIGITS_RE.search(text)
    items = [_same(f"digits {k} images", page, found[k] if found else None, v) for k, v in digit_counts().items()]
    for fn in (digits, digits_detection):
        call = signature(fn)
        items.append(_same(f"{fn.__name__} defaults", page, call if call in flat(text) else None, call))
    return items


def table_items(pages_text: dict[str, str]) -> tuple[list[Item], dict[str, tuple[str, str, str]]]:
    """The two generated tables: equal or not, and for --write: page, old text, new text."""
    items, fixes = [], {}
    for name, page, section, fresh in (
            ("plugin argument table", "README.md", arg_section(pages_text.get("README.md", "")), arg_table()),
            ("hostile-input table", "docs/robustness.md", hostile_section(pages_text.get("docs/robustness.md", "")),
             hostile_table())):
        rows = f"{len(fresh.splitlines())} lines"
        if section is None:
            items.append(Item(name, page, "(not found)", rows, False))
            continue
        same = section == fresh
        items.append(Item(name, page, "as generated" if same else f"differs ({len(section.splitlines())} lines)",
                          "as generated" if same else f"{rows}, regenerated", same))
        if not same:
            fixes[name] = (page, section, fresh)
    return items, fixes


def static_items(pages_text: dict[str, str] | None = None) -> tuple[list[Item], dict[str, tuple[str, str, str]]]:
    """Every check that needs no training (tests/test_readme.py runs these)."""
    pages_text = texts() if pages_text is None else pages_text
    tables, fixes = table_items(pages_text)
    return range_items(pages_text) + compat_items(pages_text) + dataset_items(pages_text) + tables, fixes


# ------------------------------------------------------------------------------------------ the demo
def demo_module():
    """examples/demo.py as a module (its runs, row definitions and run-folder names; importing it trains nothing)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("yolo_ls_demo", ROOT / "examples" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_demo(project: Path | None = None) -> tuple[dict[float, Path], float]:
    """``make demo``'s command, from the repository root as make runs it: ({ε: run folder}, wall seconds).

    ``project``: where the run folders go (``demo.py --project``) instead of Ultralytics' ``runs_dir``."""
    start = time.perf_counter()
    extra = ["--project", str(project)] if project else []
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "demo.py"), *extra], cwd=ROOT, capture_output=True,
                          text=True)
    seconds = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"examples/demo.py failed:\n{proc.stderr[-3000:]}")
    found = {float(m[1]): Path(m[2].strip()) for m in re.finditer(r"Run folder \(ε=([\d.]+)[^)]*\): (.+)", proc.stdout)}
    if set(found) != {eps for eps, _ in demo_module().RUNS}:
        sys.exit(f"examples/demo.py did not print its run folders:\n{proc.stdout[-2000:]}")
    print(proc.stdout[proc.stdout.rfind("yolo-ls demo:"):].rstrip())
    return found, seconds


def demo_runs(project: Path) -> dict[float, Path]:
    """The demo's run folders under ``project`` (its ``--project``), by ε."""
    demo = demo_module()
    return {eps: project / demo.run_name(eps) for eps, _ in demo.RUNS}


def demo_table(finals: dict[float, dict]) -> str:
    """docs/calibration.md's table of the two runs, as examples/demo.py computes its rows."""
    demo = demo_module()
    heads = [f"ε={eps:g} ({what})" for eps, what in demo.RUNS]
    lines = [f"| best.pt on the digits val | {' | '.join(heads)} |", "|---" + "|---:" * len(heads) + "|"]
    for (label, values), (_, _, decimals) in zip(demo.rows(finals), demo.ROWS):
        cells = [f"{v:+.{decimals}f}" if label.startswith("confidence") else f"{v:.{decimals}f}" for v in values]
        lines.append(f"| {label} | {' | '.join(cells)} |")
    return "\n".join(lines)


def table_values(table: str) -> dict[str, list[float]]:
    """The rows of a demo table: label -> values (a cell that is not a number is NaN)."""
    out = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        try:
            out[cells[0]] = [float(c) for c in cells[1:]]
        except ValueError:
            out[cells[0]] = [float("nan")] * (len(cells) - 1)
    return out


def demo_section(text: str) -> str | None:
    if DEMO_START not in text or DEMO_END not in text:
        return None
    return text[text.index(DEMO_START) + len(DEMO_START):text.index(DEMO_END)]


def demo_items(pages_text: dict[str, str], runs: dict[float, Path], seconds: float | None
               ) -> tuple[list[Item], dict[str, tuple[str, str, str]]]:
    """docs/calibration.md's demo table (within the tolerances) and its two claims against the runs' final (best.pt)
    calibration, and the demo's wall time against the pages' "about N min"; with the table's fix for --write."""
    finals = {eps: json.loads((run / "calibration" / "final.json").read_text()) for eps, run in runs.items()}
    page = DEMO_PAGE
    fresh = demo_table(finals)
    section = demo_section(pages_text.get(page, ""))
    said = table_values(section) if section is not None else {}
    items = []
    for label, values in table_values(fresh).items():
        tol = DEMO_TOLERANCE.get(label, DEMO_ROW_TOLERANCE)
        says = said.get(label)
        ok = says is not None and len(says) == len(values) and all(abs(a - b) <= tol for a, b in zip(says, values))
        items.append(Item(f"demo {label} (±{tol:g})", page,
                          "(not found)" if says is None else " / ".join(f"{v:g}" for v in says),
                          " / ".join(f"{v:.3f}" for v in values), ok, by_write=section is not None))
    fixes = {} if section is None or all(i.ok for i in items) else {"demo table": (page, section, fresh)}
    stated = DEMO_CLAIM in flat(pages_text.get(page, ""))
    m = {eps: {**f["metrics"], "ece_ts": f["ece_ts"]} for eps, f in finals.items()}
    names = " / ".join(f"ε={eps:g}" for eps in m)
    items += [
        Item("demo under-confident", page, "confidence < top-1, both runs" if stated else "(not found)",
             f"{names}: " + ", ".join(f"confidence {v['confidence']:.3f} top-1 {v['accuracy']:.3f}"
                                      for v in m.values()),
             stated and all(v["confidence"] < v["accuracy"] for v in m.values())),
        Item("demo ECE after temperature scaling", page, "ece_ts < ece / 2, both runs" if stated else "(not found)",
             f"{names}: " + ", ".join(f"ece {v['ece']:.3f} ece_ts {v['ece_ts']:.3f}" for v in m.values()),
             stated and all(v["ece_ts"] < v["ece"] / 2 for v in m.values()))]
    if seconds is not None:
        for time_page, pattern in DEMO_TIME_RES.items():
            found = pattern.search(pages_text.get(time_page, ""))
            ratio = seconds / 60 / float(found["minutes"]) if found else math.nan
            ok = 1 / DEMO_TIME_FACTOR <= ratio <= DEMO_TIME_FACTOR
            items.append(Item(f"demo wall time in minutes (within a factor {DEMO_TIME_FACTOR:g})", time_page,
                              found["minutes"] if found else "(not found)", f"{seconds / 60:.1f}", ok))
    return items, fixes


def rewrite(pages_text: dict[str, str], items: list[Item], fixes: dict[str, tuple[str, str, str]]) -> dict[str, str]:
    """The pages with every differing table and digits size replaced by the code's (nothing else is rewritten)."""
    out = dict(pages_text)
    for page, old, new in fixes.values():
        out[page] = out[page].replace(old, new, 1)
    sizes = {i.name.split()[1]: i.gives for i in items if i.name.startswith("digits ") and i.name.endswith(" images")}
    page = "docs/datasets.md"
    if set(sizes) == {"total", "train", "val"} and page in out:
        out[page] = DIGITS_RE.sub(f"the {sizes['total']} digits ({sizes['train']} train / {sizes['val']} val",
                                  out[page], count=1)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-demo", action="store_true", help="only the checks that need no training")
    parser.add_argument("--demo-run", type=Path, help="the folder holding a finished `make demo`'s two run folders "
                                                          "(its --project, e.g. runs/classify): skip training")
    parser.add_argument("--project", type=Path, help="train the demo's run folders under this folder")
    parser.add_argument("--write", action="store_true",
                        help="regenerate the tables, the split sizes and the demo table in place")
    args = parser.parse_args()
    pages_text = texts()
    items, fixes = static_items(pages_text)
    if not args.no_demo:
        runs, seconds = (demo_runs(args.demo_run), None) if args.demo_run else run_demo(args.project)
        print("demo runs: " + ", ".join(f"ε={eps:g} {run}" for eps, run in runs.items()))
        demo, demo_fixes = demo_items(pages_text, runs, seconds)
        items += demo
        fixes.update(demo_fixes)
    print("| item | page | it says | the code or command gives | |\n|---|---|---|---|---|")
    for i in items:
        verdict = "ok" if i.ok else "DIFFERS"
        print(f"| {i.name} | {i.page} | {i.says} | {i.gives} | {verdict} |")
    bad = [i for i in items if not i.ok]
    if bad and args.write:
        new = rewrite(pages_text, items, fixes)
        changed = [page for page in new if new[page] != pages_text[page]]
        for page in changed:
            (ROOT / page).write_text(new[page], encoding="utf-8")
        by_hand = [i.name for i in bad if i.name not in fixes and not i.name.startswith("digits ") and not i.by_write]
        print(f"\nrewrote {', '.join(changed) or 'nothing'}; still to fix by hand: {', '.join(by_hand) or '-'}")
        return 0
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
