"""Calibration metrics, streaming accumulators and temperature scaling (no Ultralytics, no plotting).

>>> import torch
>>> from yolo_ls.calibration import ece, ClassificationCalibration
>>> probs = torch.tensor([[0.9, 0.1], [0.6, 0.4]])
>>> labels = torch.tensor([0, 1])
>>> round(float(ece(probs, labels)), 4)  # bins of width 1/15: |1 - 0.9| / 2 + |0 - 0.6| / 2
0.35

The figures of these numbers are drawn by :mod:`yolo_ls.plots`.
"""

from __future__ import annotations

from typing import Any

from yolo_ls.calibration.accumulator import (
    CLASSIFICATION_METRICS,
    DETECTION_METRICS,
    ClassificationCalibration,
    DetectionCalibration,
)
from yolo_ls.calibration.detection import box_iou, match_predictions
from yolo_ls.calibration.metrics import (
    accuracy,
    ace,
    binary_ece,
    binary_mce,
    brier,
    calibration_errors,
    confidence,
    cw_ece,
    ece,
    entropy,
    mce,
    nll,
    overconfidence,
    reliability_bins,
)
from yolo_ls.calibration.temperature import apply_temperature, fit_temperature

_MOVED_PLOTS = ("plot_calibration_curves", "plot_reliability_diagram", "plot_reliability_overlay")

__all__ = (
    "CLASSIFICATION_METRICS",
    "DETECTION_METRICS",
    "ClassificationCalibration",
    "DetectionCalibration",
    "accuracy",
    "ace",
    "apply_temperature",
    "binary_ece",
    "binary_mce",
    "box_iou",
    "brier",
    "calibration_errors",
    "confidence",
    "cw_ece",
    "ece",
    "entropy",
    "fit_temperature",
    "match_predictions",
    "mce",
    "nll",
    "overconfidence",
    "reliability_bins",
)


def __getattr__(name: str) -> Any:
    """Plotting lives in :mod:`yolo_ls.plots`; an old ``yolo_ls.calibration.plot_*`` import is told so."""
    if name in _MOVED_PLOTS:
        raise AttributeError(f"{name} moved: use 'from yolo_ls.plots import {name}'")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
