"""Check, or rewrite, every number README.md quotes that a command of this repository produces.

    python -m tests.readme_numbers                  # runs `make demo`'s command (examples/demo.py, ~2 min on 2 cores)
    python -m tests.readme_numbers --demo-run DIR   # reads a finished demo run folder instead of training again
    python -m tests.readme_numbers --project DIR    # the demo's run folder under DIR (default: Ultralytics' runs_dir)
    python -m tests.readme_numbers --write          # also rewrites README.md where it differs (timing excepted)

It prints one row per quoted item: what README.md says, what the command gives, and whether they agree; the exit
code is 1 when any item disagrees. Covered: the demo's final calibration (confidence, top-1, ECE, ECE after
temperature scaling, from the run's ``calibration/final.json``) and its wall time (shown, never rewritten or failed:
it depends on the machine), the digits split sizes, the hostile-input table (``python -m tests.hostile_table``) and
the plugin argument table (``yolo_ls.config.markdown_table()``). Study numbers (compare reports, benchmarks) are not
regenerated here: they come with their commands in BENCHMARKS.md and the report sections that show them.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import ROOT

README = ROOT / "README.md"
DEMO_RE = re.compile(r"\(confidence (?P<confidence>[\d.]+) at top-1 (?P<accuracy>[\d.]+), ECE (?P<ece>[\d.]+); "
                     r"ECE (?P<ece_ts>[\d.]+) after temperature scaling\)")
DEMO_TIME_RE = re.compile(r"`make demo` finishes in about (?P<minutes>[\d.]+) minutes")
SPLIT_RE = re.compile(r"\((?P<train>[\d,]+) train / (?P<val>[\d,]+) val")
HOSTILE_START, HOSTILE_END = "<!-- hostile-table -->\n", "\n<!-- /hostile-table -->"
ARG_HEADER = "| argument | default | allowed | what it does |"


@dataclass
class Item:
    """One quoted item: where, what README.md says, what the command gives."""

    name: str
    readme: str
    measured: str
    informational: bool = False  # shown, never failed or rewritten (wall times)

    @property
    def ok(self) -> bool:
        return self.informational or self.readme == self.measured


def two_significant(value: float) -> str:
    """How README.md writes a metric: two significant digits (0.62, 0.035)."""
    return f"{value:#.2g}"


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


def demo_items(text: str, run: Path, seconds: float | None) -> list[Item]:
    """The demo sentence's four numbers against the run's final (best.pt) calibration, and the demo's wall time."""
    final = json.loads((run / "calibration" / "final.json").read_text())
    measured = {**final["metrics"], "ece_ts": final["ece_ts"]}
    quoted = DEMO_RE.search(text)
    if quoted is None:
        return [Item("demo sentence", "(not found)", "confidence/top-1/ECE/ECE after temperature scaling")]
    items = [Item(f"demo {key}", quoted[key], two_significant(measured[key])) for key in DEMO_RE.groupindex]
    said = DEMO_TIME_RE.search(text)
    if seconds is not None:
        items.append(Item("demo wall time (minutes)", said["minutes"] if said else "(not found)",
                          f"{seconds / 60:.1f}", informational=True))
    return items


def split_items(text: str) -> list[Item]:
    """The digits split sizes README.md states, against a fresh build of the embedded dataset."""
    from yolo_ls.datasets import digits

    with tempfile.TemporaryDirectory() as tmp:
        root = digits(Path(tmp) / "digits", imgsz=32)
        counts = {s: sum(1 for _ in (root / s).rglob("*.png")) for s in ("train", "val")}
    quoted = SPLIT_RE.search(text)
    return [Item(f"digits {s} images", quoted[s] if quoted else "(not found)", f"{counts[s]:,}") for s in counts]


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


def table_items(text: str) -> tuple[list[Item], dict[str, tuple[str, str]]]:
    """The two generated tables: equal or not (and, for --write, what to put where)."""
    from tests.test_hostile_inputs import markdown_table as hostile_table
    from yolo_ls.config import markdown_table as arg_table

    items, fixes = [], {}
    for name, section, fresh in (("hostile-input table", hostile_section(text), hostile_table()),
                                 ("plugin argument table", arg_section(text), arg_table())):
        rows = len(fresh.splitlines())
        if section is None:
            items.append(Item(name, "(not found)", f"{rows} lines"))
            continue
        same = section == fresh
        items.append(Item(name, "as generated" if same else f"differs ({len(section.splitlines())} lines)",
                          "as generated" if same else f"{rows} lines, regenerated"))
        if not same:
            fixes[name] = (section, fresh)
    return items, fixes


def rewrite(text: str, items: list[Item], fixes: dict[str, tuple[str, str]]) -> str:
    """README.md with every differing number and table replaced by the command's (wall times are left alone)."""
    for old, new in fixes.values():
        text = text.replace(old, new, 1)
    demo = {i.name.removeprefix("demo "): i.measured for i in items if i.name.startswith("demo ") and
            not i.informational}
    if set(demo) == set(DEMO_RE.groupindex):
        text = DEMO_RE.sub(f"(confidence {demo['confidence']} at top-1 {demo['accuracy']}, ECE {demo['ece']}; ECE "
                           f"{demo['ece_ts']} after temperature scaling)", text, count=1)
    split = {i.name.split()[1]: i.measured for i in items if i.name.startswith("digits ")}
    if len(split) == 2:
        text = SPLIT_RE.sub(f"({split['train']} train / {split['val']} val", text, count=1)
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo-run", type=Path, help="a finished `make demo` run folder (skip training)")
    parser.add_argument("--project", type=Path, help="train the demo's run folder under this folder")
    parser.add_argument("--write", action="store_true", help="rewrite README.md where it differs")
    args = parser.parse_args()
    text = README.read_text(encoding="utf-8")
    run, seconds = (args.demo_run, None) if args.demo_run else run_demo(args.project)
    items = demo_items(text, run, seconds) + split_items(text)
    tables, fixes = table_items(text)
    items += tables
    print(f"README.md against the commands (demo run: {run})\n")
    print("| item | README says | command gives | |\n|---|---|---|---|")
    for i in items:
        verdict = "(timing)" if i.informational else "ok" if i.ok else "DIFFERS"
        print(f"| {i.name} | {i.readme} | {i.measured} | {verdict} |")
    bad = [i for i in items if not i.ok]
    if bad and args.write:
        README.write_text(rewrite(text, items, fixes), encoding="utf-8")
        print(f"\nrewrote README.md: {', '.join(i.name for i in bad)}")
        return 0
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
