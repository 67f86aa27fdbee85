"""Train yolo11n-cls from scratch on the embedded digits with label smoothing (the drop-in YOLO).

    python examples/train_classify.py [--epochs 20] [--project runs/examples]
"""

from __future__ import annotations

import argparse

from yolo_ls import YOLO


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--project", default=None)
    a = ap.parse_args()
    model = YOLO("yolo11n-cls.yaml")
    model.train(data="digits", epochs=a.epochs, imgsz=32, batch=64, device="cpu", workers=0, seed=0,
                label_smoothing=0.1, ls_mode="uniform", project=a.project, name="train_classify", exist_ok=True)
    print(f"run folder: {model.trainer.save_dir}")
    print("calibration of best.pt:", {k: round(v, 4) for k, v in model.metrics.calibration.items()})


if __name__ == "__main__":
    main()
