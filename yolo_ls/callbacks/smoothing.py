"""Callbacks that move ε along its schedule and make it visible.

ε at any point is ``schedule(fractional epoch)``: a pure function of the epoch (and, with ``ls_per_iter=True``, of the
batch index inside the epoch), never of a counter carried across epochs, so ``resume=True`` continues exactly.
The value is written into the device-side :class:`~yolo_ls.losses.LabelSmoothingState` with an in-place fill.
"""

from __future__ import annotations

from typing import Any

from yolo_ls.schedules import fractional_epoch


def _apply(trainer: Any, epoch: float) -> None:
    eps = trainer.ls_schedule(epoch)
    trainer.ls_state.set_(eps)
    trainer.ls_applied.append((epoch, eps))


def on_train_epoch_start(trainer: Any) -> None:
    """Set ε for the epoch (per-epoch mode) and start the epoch's batch count (per-iteration mode)."""
    if trainer.ls_state is None:
        return
    trainer.ls_batch = 0
    trainer.ls_epoch_values = []
    if not trainer.args.ls_per_iter:
        _apply(trainer, float(trainer.epoch))
        trainer.ls_epoch_values.append(trainer.ls_applied[-1][1])
    if trainer.args.ls_schedule == "auto" and getattr(trainer, "world_size", 0) > 1:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():  # rank 0 measured calibration: every rank uses its ε
            dist.broadcast(trainer.ls_state.eps, 0)
            trainer.ls_schedule.current = float(trainer.ls_state.eps)


def on_train_batch_start(trainer: Any) -> None:
    """Per-iteration mode: set ε from the fractional epoch ``epoch + batch / batches_per_epoch``."""
    if trainer.ls_state is None or not trainer.args.ls_per_iter:
        return
    nb = max(len(trainer.train_loader), 1)
    _apply(trainer, fractional_epoch(trainer.epoch, min(trainer.ls_batch, nb - 1), nb, True))
    trainer.ls_epoch_values.append(trainer.ls_applied[-1][1])
    trainer.ls_batch += 1


def epoch_value(trainer: Any) -> float:
    """The ε logged for the current epoch: its value, or with ``ls_per_iter`` the mean of the values applied."""
    values = getattr(trainer, "ls_epoch_values", None) or [trainer.ls_schedule(float(trainer.epoch))]
    return float(sum(values) / len(values))


def on_train_end(trainer: Any) -> None:
    """Write ``label_smoothing.png``: the planned schedule against the values applied (read back from results.csv)."""
    if trainer.ls_state is None or not trainer.args.plots:
        return
    from yolo_ls.plots import plot_smoothing_schedule

    nb = max(len(trainer.train_loader), 1) if trainer.args.ls_per_iter else 1
    plot_smoothing_schedule(
        trainer.ls_schedule.plan(points_per_epoch=min(nb, 50)),
        trainer.csv,
        trainer.save_dir / "label_smoothing.png",
        iterations=trainer.ls_applied if trainer.args.ls_per_iter else None,
        on_plot=trainer.on_plot,
    )


CALLBACKS = {
    "on_train_epoch_start": on_train_epoch_start,
    "on_train_batch_start": on_train_batch_start,
    "on_train_end": on_train_end,
}
