"""yolo-ls: label smoothing that reaches the loss in Ultralytics YOLO.

>>> from yolo_ls import YOLO
>>> YOLO("yolo11n-cls.yaml").train(data="digits", epochs=3, imgsz=32, label_smoothing=0.1)

The public names are imported lazily, so ``import yolo_ls.calibration`` or ``yolo_ls.losses`` does not load the
Ultralytics trainers.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "YOLO": "yolo_ls.model",
    "ClassificationTrainer": "yolo_ls.trainers",
    "DetectionTrainer": "yolo_ls.trainers",
    "SegmentationTrainer": "yolo_ls.trainers",
    "PoseTrainer": "yolo_ls.trainers",
    "OBBTrainer": "yolo_ls.trainers",
}

__all__ = ("__version__", *_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        importlib.import_module("yolo_ls.compat")  # the version guard speaks before a missing Ultralytics symbol
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'yolo_ls' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(__all__)
