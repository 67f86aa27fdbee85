"""Train yolo11n from scratch on the embedded digits-det with foreground-only label smoothing (ls_mode=fg).

    python examples/train_detect.py [--epochs 30] [--project runs/examples]
"""

from __future__ import annotations

import argparse

import ultralytics

import yolo_ls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--project", default=None)
    a = ap.parse_args()
    # a stock ultralytics.YOLO with the plugin trainer: the other way in
    model = ultralytics.YOLO("yolo11n.yaml")
    model.train(trainer=yolo_ls.DetectionTrainer, data="digits-det", epochs=a.epochs, imgsz=128, batch=16,
                device="cpu", workers=0, seed=0, label_smoothing=0.05, ls_mode="fg", project=a.project,
                name="train_detect", exist_ok=True)
    print(f"run folder: {model.trainer.save_dir} (calibration.csv holds d_ece per epoch)")


if __name__ == "__main__":
    main()
