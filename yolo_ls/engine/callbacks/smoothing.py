"""Callbacks that move ε along its schedule and make it visible.

ε at any point is ``schedule(fractional epoch)``: a pure function of the epoch (and, with ``ls_per_iter=True``, of the
batch index inside the epoch), never of a counter carried across epochs, so ``resume=True`` continues exactly.
The value is written into the device-side :class:`~yolo_ls.core.losses.LabelSmoothingState` with an in-place fill.
"""

from __future__ import annotations

import math
from typing import Any

from yolo_ls.core.schedules import fractional_epoch


class AppliedEpsilon:
    """The ε values actually applied: the current epoch's mean (what results.csv logs) and a bounded trace for the plot.

    With ``ls_per_iter`` ε changes every step; the trace keeps at most ``max_points_per_epoch`` evenly spaced points
    per epoch, so its size does not grow with the number of steps.
    """

    def __init__(self, max_points_per_epoch: int = 50) -> None:
        self.max_points_per_epoch = int(max_points_per_epoch)
        self.points: list[tuple[float, float]] = []  # (fractional 0-based epoch, ε)
        self._epoch, self._sum, self._count = -1, 0.0, 0

    def start_epoch(self, epoch: int) -> None:
        """Begin the running mean of a new epoch."""
        self._epoch, self._sum, self._count = int(epoch), 0.0, 0

    def record(self, position: float, eps: float, index: int = 0, steps: int = 1) -> None:
        """ε applied at ``position`` (step ``index`` of ``steps`` in the epoch)."""
        self._sum += eps
        self._count += 1
        if index % max(1, math.ceil(steps / self.max_points_per_epoch)) == 0:
            self.points.append((position, eps))

    def epoch_mean(self, epoch: int, schedule: Any) -> float:
        """The ε logged for ``epoch``: the mean of the values applied in it, or the schedule's value if none was."""
        if self._epoch == int(epoch) and self._count:
            return self._sum / self._count
        return float(schedule(float(epoch)))

    def __len__(self) -> int:
        return len(self.points)


def _apply(trainer: Any, epoch: float, index: int = 0, steps: int = 1) -> None:
    eps = trainer.ls_schedule(epoch)
    trainer.ls_state.set_(eps)  # an in-place fill of the device tensor the losses read
    trainer.ls_applied.record(epoch, eps, index, steps)


def on_train_epoch_start(trainer: Any) -> None:
    """Set ε for the epoch (per-epoch mode); under DDP with ``ls_schedule=auto``, take rank 0's ε."""
    if getattr(trainer, "ls_state", None) is None:
        return
    trainer.ls_batch = 0
    trainer.ls_applied.start_epoch(trainer.epoch)
    if not trainer.args.ls_per_iter:
        _apply(trainer, float(trainer.epoch))
    if trainer.ls_auto is not None:
        trainer.ls_auto.sync(trainer)


def on_train_batch_start(trainer: Any) -> None:
    """Per-iteration mode: set ε from the fractional epoch ``epoch + batch / batches_per_epoch``."""
    if getattr(trainer, "ls_state", None) is None or not trainer.args.ls_per_iter:
        return
    nb = max(len(trainer.train_loader), 1)
    i = min(trainer.ls_batch, nb - 1)
    _apply(trainer, fractional_epoch(trainer.epoch, i, nb, True), i, nb)
    trainer.ls_batch += 1


def epoch_value(trainer: Any) -> float:
    """The ε logged for the trainer's current epoch (0 for a stock trainer, which does not smooth)."""
    if getattr(trainer, "ls_schedule", None) is None:
        return 0.0
    return trainer.ls_applied.epoch_mean(trainer.epoch, trainer.ls_schedule)


def on_train_end(trainer: Any) -> None:
    """Write ``label_smoothing.png``: the planned schedule against the values applied (read back from results.csv)."""
    if getattr(trainer, "ls_state", None) is None or not trainer.args.plots:
        return
    from yolo_ls.plots.figures import plot_smoothing_schedule

    nb = max(len(trainer.train_loader), 1) if trainer.args.ls_per_iter else 1
    plot_smoothing_schedule(
        trainer.ls_schedule.plan(points_per_epoch=min(nb, 50)),
        trainer.csv,
        trainer.save_dir / "label_smoothing.png",
        iterations=trainer.ls_applied.points if trainer.args.ls_per_iter else None,
        on_plot=trainer.on_plot,
    )


CALLBACKS = {
    "on_train_epoch_start": on_train_epoch_start,
    "on_train_batch_start": on_train_batch_start,
    "on_train_end": on_train_end,
}
