"""Ultralytics callbacks: the ε schedule (``smoothing``) and per-epoch calibration (``calibration``)."""

from yolo_ls.engine.callbacks.calibration import CalibrationCallbacks, add_calibration_callbacks

__all__ = ("CalibrationCallbacks", "add_calibration_callbacks")
