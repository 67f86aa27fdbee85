"""Check, or regenerate, every number README.md and docs/*.md quote from this repository's code and commands.

    python -m tests.readme_numbers                  # the checks below, then `make demo`'s command (examples/demo.py)
    python -m tests.readme_numbers --no-demo        # the checks without the demo (what tests/test_readme.py runs)
    python -m tests.readme_numbers --demo-run DIR   # reads a finished demo run folder instead of training again
    python -m tests.readme_numbers --project DIR    # the demo's run folder under DIR (default: Ultralytics' runs_dir)
    python -m tests.readme_numbers --write          # also regenerates the tables and the split sizes where they differ

It prints one row per item: the page, what it says, what the code or command gives, and whether they agree; the exit
code is 1 when any item disagrees. **Tolerance: none.** Every item below is a fact of the code, so it must agree
exactly:

- the supported Ultralytics range, wherever a page writes it, against pyproject.toml's requirement;
- the two releases ``make test-compat`` tests (docs/compatibility.md) against the Makefile's ``COMPAT_VERSIONS``;
- the digits sizes and the two dataset builders' signatures (docs/datasets.md) against the builders;
- the plugin argument table (README.md) and the hostile-input table (docs/robustness.md) against their generators.

README.md quotes no measured number. docs/calibration.md makes two claims about ``make demo``'s run, checked from its
``calibration/final.json`` (only when the demo runs: it trains 10 epochs): the model is under-confident (mean
confidence below top-1 accuracy) and temperature scaling removes most of its ECE (``ece_ts < ece / 2``). The demo's
wall time is shown beside docs/development.md's "about N min" (shown, never failed or rewritten: it depends on the
machine). Study numbers (compare reports, benchmarks) are not regenerated here: they come with their commands in
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import inspect
import json
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
DEMO_CLAIM = ("**under**-confident (mean confidence below top-1 accuracy), and temperature scaling removes most of its "
              "ECE")
DEMO_TIME_RE = re.compile(r"\| `make demo` \|[^|\n]*\| about (?P<minutes>[\d.]+) min")
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
    informational: bool = False  # shown, never failed or rewritten (wall times)


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
def run_demo(project: Path | None = None) -> tuple[Path, float]:
    """``make demo``'s command, from the repository root as make runs it: (run folder, wall seconds).

    ``project``: where the run folder goes (``demo.py --project``) instead of Ultralytics' ``runs_dir``."""
    start = time.perf_counter()
    extra = ["--project", str(project)] if project else []
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "demo.py"), *extra], cwd=ROOT, capture_output=True,
                          text=True)
    seconds = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"examples/demo.py failed:\n{proc.stderr[-3000:]}")
    found = re.search(r"Run folder: (.+)", proc.stdout)
    if not found:
        sys.exit(f"examples/demo.py printed no run folder:\n{proc.stdout[-2000:]}")
    return Path(found[1].strip()), seconds


def demo_items(pages_text: dict[str, str], run: Path, seconds: float | None) -> list[Item]:
    """docs/calibration.md's two claims against the run's final (best.pt) calibration, and the demo's wall time."""
    final = json.loads((run / "calibration" / "final.json").read_text())
    m = {**final["metrics"], "ece_ts": final["ece_ts"]}
    page = "docs/calibration.md"
    stated = DEMO_CLAIM in flat(pages_text.get(page, ""))
    under, most = m["confidence"] < m["accuracy"], m["ece_ts"] < m["ece"] / 2
    items = [
        Item("demo under-confident", page, "confidence < top-1" if stated else "(not found)",
             f"confidence {m['confidence']:.3f}, top-1 {m['accuracy']:.3f}", stated and under),
        Item("demo ECE after temperature scaling", page, "ece_ts < ece / 2" if stated else "(not found)",
             f"ece {m['ece']:.3f}, ece_ts {m['ece_ts']:.3f}", stated and most)]
    if seconds is not None:
        said = DEMO_TIME_RE.search(pages_text.get("docs/development.md", ""))
        items.append(Item("demo wall time (minutes)", "docs/development.md", said["minutes"] if said else "(not found)",
                          f"{seconds / 60:.1f}", True, informational=True))
    return items


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
    parser.add_argument("--demo-run", type=Path, help="a finished `make demo` run folder (skip training)")
    parser.add_argument("--project", type=Path, help="train the demo's run folder under this folder")
    parser.add_argument("--write", action="store_true", help="regenerate the tables and the split sizes in place")
    args = parser.parse_args()
    pages_text = texts()
    items, fixes = static_items(pages_text)
    if not args.no_demo:
        run, seconds = (args.demo_run, None) if args.demo_run else run_demo(args.project)
        print(f"demo run: {run}")
        items += demo_items(pages_text, run, seconds)
    print("| item | page | it says | the code or command gives | |\n|---|---|---|---|---|")
    for i in items:
        verdict = "(timing)" if i.informational else "ok" if i.ok else "DIFFERS"
        print(f"| {i.name} | {i.page} | {i.says} | {i.gives} | {verdict} |")
    bad = [i for i in items if not i.ok]
    if bad and args.write:
        new = rewrite(pages_text, items, fixes)
        changed = [page for page in new if new[page] != pages_text[page]]
        for page in changed:
            (ROOT / page).write_text(new[page], encoding="utf-8")
        print(f"\nrewrote {', '.join(changed) or 'nothing'}; still to fix by hand: "
              f"{', '.join(i.name for i in bad if i.name not in fixes and not i.name.startswith('digits ')) or '-'}")
        return 0
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
