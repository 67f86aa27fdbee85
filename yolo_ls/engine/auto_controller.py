"""The trainer's handle on ``ls_schedule=auto``: where the calibration reading comes from (the val calibration or a
train holdout), one step per epoch, and the DDP sync of ε. The rule itself is :mod:`yolo_ls.core.auto`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from yolo_ls.core.args import ARG_TABLE, PluginArgumentError
from yolo_ls.core.auto import AutoSchedule, gain_factor


def val_reading(trainer: Any) -> tuple[float, float] | None:
    """(confidence, accuracy) of this epoch's validation, from the trainer's calibration callbacks."""
    calib = getattr(trainer, "ls_calibration", None)
    result = calib.last if calib is not None else None
    if result is None:  # no validation this epoch (val=False): nothing measured
        return None
    m = result["metrics"]
    key = "" if trainer.args.task == "classify" else "d_"
    return m[f"{key}confidence"], m[f"{key}accuracy"]


class TrainHoldout:
    """``ls_auto_split=train_holdout``: a fixed, seeded fraction of the train images, scored after every epoch.

    Built from the trainer's train dataset (its samples are removed from training) and read with the same
    :class:`~yolo_ls.calibration.ClassificationCalibration` accumulator the val calibration uses.
    """

    def __init__(self, trainer: Any) -> None:
        import copy

        import numpy as np
        from ultralytics.utils import LOGGER

        ds = trainer.train_loader.dataset
        if getattr(ds, "cache_ram", False):
            raise PluginArgumentError("'ls_auto_split=train_holdout' cannot be combined with cache=ram; use cache=disk")
        order = np.random.default_rng(trainer.args.seed).permutation(len(ds.samples))
        n = max(1, round(trainer.args.ls_auto_holdout * len(ds.samples)))
        self.dataset = copy.copy(ds)
        self.dataset.samples = [ds.samples[i] for i in sorted(order[:n])]
        self.dataset.torch_transforms = trainer.test_loader.dataset.torch_transforms  # no augmentation
        ds.samples = [ds.samples[i] for i in sorted(order[n:])]
        LOGGER.info(f"yolo-ls: ls_auto_split=train_holdout: {n} train images held out to steer ε, {len(ds)} trained on")

    def __len__(self) -> int:
        return len(self.dataset)

    def __call__(self, trainer: Any) -> tuple[float, float]:
        """Mean top-1 confidence and accuracy of the EMA model on the held-out images."""
        import torch
        from torch.utils.data import DataLoader

        from yolo_ls.calibration import ClassificationCalibration

        model = trainer.ema.ema
        was_training = model.training
        model.eval()
        acc = ClassificationCalibration(int(trainer.data["nc"]), int(trainer.args.calib_bins), device=trainer.device)
        loader = DataLoader(self.dataset, batch_size=max(int(trainer.batch_size), 1), shuffle=False, num_workers=0)
        with torch.inference_mode():
            for batch in loader:
                out = model(batch["img"].to(trainer.device).float())
                probs = out[0] if isinstance(out, (list, tuple)) else out
                acc.update(probs.float(), batch["cls"].to(trainer.device).long())
        model.train(was_training)
        m = acc.compute()
        return m["confidence"], m["accuracy"]


# ------------------------------------------------------------------------------------------- the controller
class AutoController:
    """The trainer's handle on ``ls_schedule=auto``: one call per epoch, plus set-up and the DDP sync.

    Args:
        schedule: The run's :class:`AutoSchedule` (``trainer.ls_schedule``).
        split: ``ls_auto_split``: ``val`` or ``train_holdout``.
    """

    def __init__(self, schedule: AutoSchedule, split: str = "val") -> None:
        self.schedule = schedule
        self.split = ARG_TABLE["ls_auto_split"](split)
        self.holdout: TrainHoldout | None = None

    def setup(self, trainer: Any, mode: str, num_classes: int, prior: Sequence[float] | None = None,
              frequencies: Sequence[float] | None = None, matrix: Sequence[Sequence[float]] | None = None) -> None:
        """Once the data is built: the mode's gain factor, and the train holdout if that split steers ε."""
        self.schedule.factor = gain_factor(mode, num_classes, prior, frequencies, matrix)
        if self.split == "train_holdout":
            self.holdout = TrainHoldout(trainer)

    def step(self, trainer: Any) -> float | None:
        """After the epoch's validation: read calibration, set the next epoch's ε. Returns it (None: no reading).

        The trainer's one line per epoch reports it; the reading itself is in ``schedule.history`` (and the
        checkpoint)."""
        reading = self.holdout(trainer) if self.holdout is not None else val_reading(trainer)
        if reading is None:
            return None
        return self.schedule.update(trainer.epoch, *reading)

    def sync(self, trainer: Any) -> None:
        """Under DDP, every rank takes rank 0's ε (rank 0 measured it) at the start of an epoch."""
        if getattr(trainer, "world_size", 1) <= 1 or trainer.ls_state is None:
            return
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.broadcast(trainer.ls_state.eps, 0)
            trainer.ls_state.refresh_()  # the loss terms derived from ε
            self.schedule.current = float(trainer.ls_state.eps)
