"""Calibration metrics, streaming accumulators, temperature scaling and plots (no Ultralytics dependency).

>>> import torch
>>> from yolo_ls.calibration import ece, ClassificationCalibration
>>> probs = torch.tensor([[0.9, 0.1], [0.6, 0.4]])
>>> labels = torch.tensor([0, 1])
>>> round(float(ece(probs, labels)), 4)  # bins of width 1/15: |1 - 0.9| / 2 + |0 - 0.6| / 2
0.35

The plot functions (``plot_reliability_diagram``, ``plot_reliability_overlay``, ``plot_calibration_curves``) live
in :mod:`yolo_ls.plots` and are re-exported here lazily, so importing the metrics does not import matplotlib.
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

_LAZY_PLOTS = ("plot_calibration_curves", "plot_reliability_diagram", "plot_reliability_overlay")

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
    *_LAZY_PLOTS,
)


def __getattr__(name: str) -> Any:
    """Import the matplotlib-based plot functions on first access."""
    if name in _LAZY_PLOTS:
        from yolo_ls import plots

        return getattr(plots, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
