"""A custom ε schedule: any function fn(epoch, epochs) -> ε, here smooth for the first half then decay to 0.

    python examples/custom_schedule.py [--epochs 20] [--project runs/examples]

Per-iteration updates (ls_per_iter=True) call it with fractional epochs. A module-level function (not a lambda) is
re-imported by name on resume=True.
"""

from __future__ import annotations

import argparse
import math

from yolo_ls import YOLO


def half_then_cosine(epoch: float, epochs: int) -> float:
    """0.15 for the first half of training, then a cosine decay to 0."""
    half = epochs / 2
    if epoch < half:
        return 0.15
    return 0.15 * 0.5 * (1 + math.cos(math.pi * min((epoch - half) / max(half, 1e-9), 1.0)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--project", default=None)
    a = ap.parse_args()
    model = YOLO("yolo11n-cls.yaml")
    model.train(data="digits", epochs=a.epochs, imgsz=32, batch=64, device="cpu", workers=0, seed=0,
                label_smoothing=0.15, ls_schedule=half_then_cosine, ls_per_iter=True, project=a.project,
                name="custom_schedule", exist_ok=True)
    print(f"run folder: {model.trainer.save_dir} (label_smoothing.png shows planned vs applied ε)")


if __name__ == "__main__":
    main()
