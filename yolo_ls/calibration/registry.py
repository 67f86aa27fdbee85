"""The calibration metrics: one record per metric, the one place its name, task, key, direction and panel are written.

Pure data (no Ultralytics, no plotting). The accumulators' key tuples, the ``best_by``/``tune_objective`` choices, the
panels of ``calibration_curves.png`` and the compare report's "lower is better" all read from :data:`METRICS`.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ("KEY_PREFIX", "METRICS", "Metric", "by_name", "calib_key", "headline_keys", "names", "objectives", "panels",
           "ts_key")

#: Prefix of a metric's key in Ultralytics' metrics dict, results.csv and calibration.csv (``calib/ece``).
KEY_PREFIX = "calib/"


class Metric(NamedTuple):
    """One calibration metric.

    Attributes:
        name: The key in ``compute()``'s dict (``ece``).
        task: ``"classify"``, or ``"detect"`` for every box task (detect, segment, pose, obb).
        lower_is_better: An error to minimise; False for a level to read (accuracy, confidence, entropy).
        panel: The ``calibration_curves.png`` panel it is drawn in; metrics sharing a panel share a unit. None: not
            drawn.
        objective: Its place among the task's ``best_by``/``tune_objective`` choices after ``fitness`` (1 first);
            None: not an objective.
        headline: The metric a reliability diagram and the compare report are titled with (one per task).
    """

    name: str
    task: str
    lower_is_better: bool
    panel: str | None = None
    objective: int | None = None
    headline: bool = False

    @property
    def key(self) -> str:
        """``calib/<name>``."""
        return calib_key(self.name)


#: Every metric, in the order of ``ClassificationCalibration.compute()`` then ``DetectionCalibration.compute()``.
METRICS = (
    Metric("ece", "classify", True, "calibration error", objective=2, headline=True),
    Metric("mce", "classify", True, "maximum calibration error", objective=6),  # its own scale: one bin's gap
    Metric("ace", "classify", True, "calibration error", objective=4),
    Metric("cw_ece", "classify", True, "calibration error", objective=5),
    Metric("brier", "classify", True, "brier", objective=3),
    Metric("nll", "classify", True, "nll", objective=1),
    Metric("accuracy", "classify", False, "accuracy and confidence"),
    Metric("confidence", "classify", False, "accuracy and confidence"),
    Metric("overconfidence", "classify", False),
    Metric("entropy", "classify", False),
    Metric("d_ece", "detect", True, "detection calibration error", objective=1, headline=True),
    Metric("d_mce", "detect", True, "detection maximum calibration error", objective=2),
    Metric("d_accuracy", "detect", False, "detection precision and confidence"),
    Metric("d_confidence", "detect", False, "detection precision and confidence"),
)

_BY_NAME = {m.name: m for m in METRICS}


def _task(task: str) -> str:
    return "classify" if task == "classify" else "detect"


def calib_key(name: str) -> str:
    """The logged key of a metric name: ``ece`` -> ``calib/ece``."""
    return f"{KEY_PREFIX}{name}"


def by_name(name: str) -> Metric | None:
    """The record of a metric name, or None when ``name`` is not a calibration metric."""
    return _BY_NAME.get(name)


def names(task: str) -> tuple[str, ...]:
    """The metric names of a task (any task but ``classify`` reads as ``detect``), in compute order."""
    return tuple(m.name for m in METRICS if m.task == _task(task))


def objectives(task: str) -> tuple[str, ...]:
    """The calibration objectives of a task, in choice order (``fitness`` is not among them)."""
    chosen = [m for m in METRICS if m.task == _task(task) and m.objective is not None]
    return tuple(m.name for m in sorted(chosen, key=lambda m: m.objective))


def panels() -> tuple[tuple[str, ...], ...]:
    """The metric names of each ``calibration_curves.png`` panel, panels in order of their first metric."""
    groups: dict[str, list[str]] = {}
    for m in METRICS:
        if m.panel is not None:
            groups.setdefault(m.panel, []).append(m.name)
    return tuple(tuple(g) for g in groups.values())


def headline_keys() -> tuple[str, ...]:
    """The headline metric of each task (``ece``, ``d_ece``)."""
    return tuple(m.name for m in METRICS if m.headline)


def ts_key(task: str) -> str:
    """The held-out calibration error after temperature scaling (cross-fitted): ``ece_ts``, or ``d_ece_ts`` for
    detection boxes."""
    return "ece_ts" if _task(task) == "classify" else "d_ece_ts"
