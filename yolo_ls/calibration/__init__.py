"""Calibration metrics, streaming accumulators, temperature scaling and post-hoc calibration maps (no Ultralytics, no
plotting).

>>> import torch
>>> from yolo_ls.calibration import ece, ClassificationCalibration
>>> probs = torch.tensor([[0.9, 0.1], [0.6, 0.4]])
>>> labels = torch.tensor([0, 1])
>>> round(float(ece(probs, labels)), 4)  # bins of width 1/15: |1 - 0.9| / 2 + |0 - 0.6| / 2
0.35

The names are imported lazily, so ``yolo_ls.calibration.registry`` (pure data) loads without torch. The figures of
these numbers are drawn by :mod:`yolo_ls.plots`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from yolo_ls.calibration.accumulator import (
        CLASSIFICATION_METRICS,
        DETECTION_METRICS,
        ClassificationCalibration,
        DetectionCalibration,
    )
    from yolo_ls.calibration.crossfit import CrossFit, assign_folds, cross_fit
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
    from yolo_ls.calibration.scaling import (
        SIGMOID_METHODS,
        SOFTMAX_METHODS,
        LogitMap,
        check_fit_size,
        fit_sigmoid_map,
        fit_softmax_map,
    )
    from yolo_ls.calibration.temperature import apply_temperature, fit_temperature

_MOVED_PLOTS = ("plot_calibration_curves", "plot_reliability_diagram", "plot_reliability_overlay")

_METRICS = ("accuracy", "ace", "binary_ece", "binary_mce", "brier", "calibration_errors", "confidence", "cw_ece",
            "ece", "entropy", "mce", "nll", "overconfidence", "reliability_bins")
_LAZY = {
    **dict.fromkeys(("CLASSIFICATION_METRICS", "DETECTION_METRICS", "ClassificationCalibration",
                     "DetectionCalibration"), "yolo_ls.calibration.accumulator"),
    **dict.fromkeys(("CrossFit", "assign_folds", "cross_fit"), "yolo_ls.calibration.crossfit"),
    **dict.fromkeys(("box_iou", "match_predictions"), "yolo_ls.calibration.detection"),
    **dict.fromkeys(_METRICS, "yolo_ls.calibration.metrics"),
    **dict.fromkeys(("LogitMap", "SIGMOID_METHODS", "SOFTMAX_METHODS", "check_fit_size", "fit_sigmoid_map",
                     "fit_softmax_map"), "yolo_ls.calibration.scaling"),
    **dict.fromkeys(("apply_temperature", "fit_temperature"), "yolo_ls.calibration.temperature"),
}
_SUBMODULES = ("accumulator", "crossfit", "detection", "metrics", "registry", "scaling", "temperature")

__all__ = (
    "CLASSIFICATION_METRICS",
    "DETECTION_METRICS",
    "SIGMOID_METHODS",
    "SOFTMAX_METHODS",
    "ClassificationCalibration",
    "CrossFit",
    "DetectionCalibration",
    "LogitMap",
    "accuracy",
    "ace",
    "apply_temperature",
    "assign_folds",
    "binary_ece",
    "binary_mce",
    "box_iou",
    "brier",
    "calibration_errors",
    "check_fit_size",
    "confidence",
    "cross_fit",
    "cw_ece",
    "ece",
    "entropy",
    "fit_sigmoid_map",
    "fit_softmax_map",
    "fit_temperature",
    "match_predictions",
    "mce",
    "nll",
    "overconfidence",
    "reliability_bins",
)


def __getattr__(name: str) -> Any:
    """Import a public name (or submodule) on first use; an old ``yolo_ls.calibration.plot_*`` import is redirected."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _MOVED_PLOTS:
        raise AttributeError(f"{name} moved: use 'from yolo_ls.plots import {name}'")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted((*__all__, *_SUBMODULES))
