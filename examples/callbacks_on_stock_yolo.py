"""Calibration callbacks on a stock ultralytics.YOLO: no plugin trainer, no smoothing, the same calibration files.

    python examples/callbacks_on_stock_yolo.py [--epochs 10] [--project runs/examples]
"""

from __future__ import annotations

import argparse

from ultralytics import YOLO

from yolo_ls import add_calibration_callbacks
from yolo_ls.datasets import digits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--project", default=None)
    a = ap.parse_args()
    data = str(digits(imgsz=32))  # stock Ultralytics does not know the "digits" alias: pass the folder
    model = add_calibration_callbacks(YOLO("yolo11n-cls.yaml"), bins=15, plots="all")
    model.train(data=data, epochs=a.epochs, imgsz=32, batch=64, device="cpu", workers=0, seed=0,
                project=a.project, name="stock_callbacks", exist_ok=True)
    metrics = model.val(data=data, imgsz=32, batch=64, device="cpu", project=a.project, name="stock_val",
                        exist_ok=True)
    print("calibration of best.pt:", {k: round(v, 4) for k, v in metrics.calibration.items()})


if __name__ == "__main__":
    main()
