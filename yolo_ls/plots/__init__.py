"""Presentation, kept apart from the metrics: every figure (``figures``), drawing off the training thread
(``background``) and redrawing a run folder from its files (``run_folder``)."""

from yolo_ls.plots.background import BackgroundPlots, background
from yolo_ls.plots.figures import (
    DPI,
    plot_calibration_curves,
    plot_compare_curves,
    plot_reliability_diagram,
    plot_reliability_overlay,
    plot_smoothing_schedule,
    plot_soft_labels,
)
from yolo_ls.plots.run_folder import RUN_FILES, is_run_folder, render_run

__all__ = (
    "DPI",
    "RUN_FILES",
    "BackgroundPlots",
    "background",
    "is_run_folder",
    "plot_calibration_curves",
    "plot_compare_curves",
    "plot_reliability_diagram",
    "plot_reliability_overlay",
    "plot_smoothing_schedule",
    "plot_soft_labels",
    "render_run",
)
