"""`make demo`: what label smoothing changes, side by side: yolo11n-cls trained from scratch on the embedded digits
twice on the CPU, with hard targets (ε=0) and with label_smoothing=0.1, same seed and settings.

Builds the digits dataset locally (scikit-learn's handwritten digits, no network), trains the two runs and prints
their best.pt calibration next to each other (top-1, ECE, over- or under-confidence, NLL, ECE after temperature
scaling), then where the two run folders are. It writes only the dataset cache (Ultralytics' datasets_dir) and the
run folders (Ultralytics' runs_dir, or ``--project``), never a tracked file; tests/test_readme.py checks that.
``--update-docs`` (for maintainers) also copies the smoothed run's final reliability diagram to
docs/demo_reliability.png, the figure docs/calibration.md shows; ``python -m tests.readme_numbers`` checks what that
page says of these two runs.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

SMOOTHED = 0.1  # the smoothed run's ε; the baseline trains with ε=0 (hard targets)
RUNS = ((0.0, "hard targets"), (SMOOTHED, "label smoothing"))
# (row label, how the row is computed from calibration/final.json, decimals)
ROWS = (
    ("top-1 accuracy", lambda f: f["metrics"]["accuracy"], 3),
    ("ECE", lambda f: f["metrics"]["ece"], 3),
    ("confidence - top-1", lambda f: f["metrics"]["confidence"] - f["metrics"]["accuracy"], 3),
    ("NLL", lambda f: f["metrics"]["nll"], 3),
    ("ECE after temperature scaling", lambda f: f["ece_ts"], 3),
)


def run_name(eps: float) -> str:
    """The run folder's name for one ε: demo-digits-ls0 (hard targets), demo-digits-ls0.1."""
    return f"demo-digits-ls{eps:g}"


def train(eps: float, epochs: int, project: str | None, data: Path) -> Path:
    """One demo run (the same settings and seed for every ε); returns its run folder."""
    from yolo_ls import YOLO

    model = YOLO("yolo11n-cls.yaml")
    model.train(data=str(data), epochs=epochs, imgsz=32, batch=64, device="cpu", workers=0, seed=0,
                label_smoothing=eps, project=project, name=run_name(eps), exist_ok=True)
    return Path(model.trainer.save_dir).resolve()


def read_final(run: Path) -> dict:
    """A run's best.pt calibration: ``calibration/final.json``."""
    return json.loads((run / "calibration" / "final.json").read_text())


def rows(finals: dict[float, dict]) -> list[tuple[str, list[float]]]:
    """The side-by-side values: one (label, [value per ε in RUNS order]) per row."""
    return [(label, [float(get(finals[eps])) for eps, _ in RUNS]) for label, get, _ in ROWS]


def side_by_side(finals: dict[float, dict], epochs: int) -> str:
    """The console comparison of the two runs, and one line on what smoothing changed."""
    heads = [f"ε={eps:g} ({what})" for eps, what in RUNS]
    width = max(len(label) for label, _, _ in ROWS)
    lines = [f"yolo-ls demo: yolo11n-cls from scratch on the digits, {epochs} epochs, seed 0; best.pt on the val "
             "images", "  " + " " * width + "".join(f"  {h:>26}" for h in heads)]
    for (label, values), (_, _, decimals) in zip(rows(finals), ROWS):
        cells = []
        for v in values:
            word = (" (over)" if v > 0 else " (under)") if label.startswith("confidence") else ""
            cells.append(f"{v:+.{decimals}f}{word}" if word else f"{v:.{decimals}f}")
        lines.append(f"  {label:<{width}}" + "".join(f"  {c:>26}" for c in cells))
    changes = {label: values[1] - values[0] for label, values in rows(finals)}
    lines.append(f"What ε={SMOOTHED:g} changed here: top-1 {changes['top-1 accuracy']:+.3f}, "
                 f"ECE {changes['ECE']:+.3f}, confidence - top-1 {changes['confidence - top-1']:+.3f}, "
                 f"NLL {changes['NLL']:+.3f}. One seed: `yolo-ls compare` trains several and says which differences "
                 "exceed their spread.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--update-docs", action="store_true", help="copy the final diagram to docs/ (maintainers)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs of each run; docs/calibration.md describes 10")
    parser.add_argument("--project", default=None, help="parent of the run folders (default: Ultralytics' runs_dir)")
    args = parser.parse_args()
    from yolo_ls.datasets import digits

    data = digits(imgsz=32)
    runs = {eps: train(eps, args.epochs, args.project, data) for eps, _ in RUNS}
    if args.update_docs:  # docs/calibration.md shows the smoothed run's final reliability diagram
        docs = Path(__file__).resolve().parents[1] / "docs"
        shutil.copyfile(runs[SMOOTHED] / "calibration" / "reliability.png", docs / "demo_reliability.png")
        print(f"updated {docs / 'demo_reliability.png'}")
    print("\n" + side_by_side({eps: read_final(run) for eps, run in runs.items()}, args.epochs))
    print("\nyolo-ls demo finished.")
    for eps, what in RUNS:
        print(f"Run folder (ε={eps:g}, {what}): {runs[eps]}")
    print("  results.csv (label_smoothing and calib/* columns), calibration.csv, calibration/*.png, weights/best.pt")


if __name__ == "__main__":
    main()
