"""`make demo`: train yolo11n-cls from scratch on the embedded digits with label smoothing, on the CPU.

Builds the digits dataset locally (scikit-learn's handwritten digits, no network), trains a few epochs with
label_smoothing=0.1 and prints where the run folder is. It writes only the dataset cache (Ultralytics' datasets_dir)
and the run folder (Ultralytics' runs_dir, or ``--project``), never a tracked file; tests/test_readme.py checks that.
``--update-docs`` (for maintainers) also copies the final reliability diagram to docs/demo_reliability.png, the
figure docs/calibration.md shows; ``python -m tests.readme_numbers`` checks what that page says of this run.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from yolo_ls import YOLO
from yolo_ls.datasets import digits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--update-docs", action="store_true", help="copy the final diagram to docs/ (maintainers)")
    parser.add_argument("--epochs", type=int, default=10, help="docs/calibration.md describes the default, 10")
    parser.add_argument("--project", default=None, help="parent of the run folder (default: Ultralytics' runs_dir)")
    args = parser.parse_args()
    data = digits(imgsz=32)
    model = YOLO("yolo11n-cls.yaml")
    model.train(data=str(data), epochs=args.epochs, imgsz=32, batch=64, device="cpu", workers=0, seed=0,
                label_smoothing=0.1, project=args.project, name="demo-digits-ls0.1", exist_ok=True)
    run = Path(model.trainer.save_dir)
    if args.update_docs:  # docs/calibration.md shows the demo's final reliability diagram
        docs = Path(__file__).resolve().parents[1] / "docs"
        shutil.copyfile(run / "calibration" / "reliability.png", docs / "demo_reliability.png")
        print(f"updated {docs / 'demo_reliability.png'}")
    print(f"\nyolo-ls demo finished. Run folder: {run.resolve()}")
    print("  results.csv (label_smoothing and calib/* columns), calibration.csv, calibration/*.png, weights/best.pt")


if __name__ == "__main__":
    main()
