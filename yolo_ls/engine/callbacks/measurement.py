"""One validation's calibration: the streaming accumulator fed batch by batch, reduced across DDP ranks, and the
result (metrics, bins, per-class detection ECE, and for classification a temperature fit on the kept probabilities)."""

from __future__ import annotations

import math
from typing import Any

import torch

from yolo_ls.calibration import (
    CLASSIFICATION_METRICS,
    DETECTION_METRICS,
    ClassificationCalibration,
    DetectionCalibration,
)
from yolo_ls.calibration.heldout import held_out_box_temperature, held_out_temperature
from yolo_ls.calibration.registry import ts_key
from yolo_ls.engine.callbacks.validator_hooks import match_boxes


def metric_keys(task: str) -> tuple[str, ...]:
    """The calibration metric names logged for a task (without the ``calib/`` prefix)."""
    return CLASSIFICATION_METRICS if task == "classify" else DETECTION_METRICS


def in_words(task: str, metrics: dict[str, float], reason: str = "") -> str:
    """A validation's calibration for the console: ``ece 0.0410 (over-confident +0.030)  nll 0.290``, or why nothing
    was measured (``d_ece: nothing measured: ...``) and what to change."""
    key = "" if task == "classify" else "d_"
    value = metrics.get(f"{key}ece", math.nan)
    if not math.isfinite(value):
        hint = "" if task == "classify" else " (train longer, or lower calib_conf)"
        return f"{key}ece: nothing measured" + (f": {reason}{hint}" if reason else "")
    gap = metrics[f"{key}confidence"] - metrics[f"{key}accuracy"]
    text = f"{key}ece {value:.4f} ({'over' if gap > 0 else 'under'}-confident {gap:+.3f})"
    return text + (f"  nll {metrics['nll']:.3f}" if key == "" else "")


class Measurement:
    """The calibration of one validation.

    Args:
        task: The validator's task.
        bins: Equal-width confidence bins.
        conf: Detection confidence threshold (``calib_conf``).
        keep_probs: Keep the probabilities (classify) or scored boxes (detect) to measure the held-out calibration error
            after temperature scaling (final epoch, plain ``val()``).
    """

    def __init__(self, task: str, bins: int, conf: float, keep_probs: bool) -> None:
        self.task, self.bins, self.conf = task, bins, conf
        self.acc: ClassificationCalibration | DetectionCalibration | None = None
        self.probs: list[torch.Tensor] | None = [] if (task == "classify" and keep_probs) else None
        self.labels: list[torch.Tensor] = []
        self.kept: list[dict[str, torch.Tensor]] | None = None  # detection: the batch's predict-style boxes
        # detection, when kept: (conf, correct, cls, image) rows of every scored box
        self.boxes: list[torch.Tensor] | None = [] if (task != "classify" and keep_probs) else None
        self.images = 0

    def _accumulator(self, nc: int, device: Any) -> Any:
        if self.acc is None:
            self.acc = (ClassificationCalibration(nc, self.bins, device=device) if self.task == "classify"
                        else DetectionCalibration(nc, self.bins, self.conf, device=device))
        return self.acc

    def update_classify(self, preds: torch.Tensor, batch: dict[str, Any]) -> None:
        """Add a batch of softmax probabilities and its labels."""
        probs = preds.float()
        labels = batch["cls"].long()
        self._accumulator(probs.shape[1], probs.device).update(probs, labels)
        if self.probs is not None:
            self.probs.append(probs.detach())
            self.labels.append(labels.detach())

    def keep(self, boxes: list[dict[str, torch.Tensor]]) -> None:
        """The batch's predict-style boxes (from the validator's hooked ``postprocess``), scored by the next update."""
        self.kept = boxes

    def update_detect(self, validator: Any, batch: dict[str, Any]) -> None:
        """Score the batch's predict-style boxes (set by the validator's hooked ``postprocess``) against its labels."""
        kept, self.kept = self.kept, None
        if kept is None or len(kept) != len(batch["im_file"]):
            raise RuntimeError("yolo-ls calibration: the validator's update_metrics ran without its postprocess on the "
                               "same batch, so the detections to score are unknown")
        conf, correct, cls = match_boxes(validator, kept, batch)
        self._accumulator(len(validator.names), conf.device).update(conf, correct, cls)
        if self.boxes is not None:
            per_image = torch.tensor([k["conf"].shape[0] for k in kept], device=conf.device)
            image = torch.repeat_interleave(torch.arange(len(kept), device=conf.device) + self.images, per_image)
            self.boxes.append(torch.stack([conf.float(), correct.float(), cls.float(), image.float()], 1).detach())
        self.images += len(kept)

    def sync_ranks(self, validator: Any) -> None:
        """Under DDP, combine every rank's share so rank 0 measures the whole val set (a no-op outside DDP).

        The accumulator's sums are all-reduced; the kept probabilities are gathered to rank 0. A rank that saw no batch
        takes part with an empty accumulator built from the validator's class names.
        """
        import torch.distributed as dist
        from ultralytics.utils import RANK

        if RANK == -1 or not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
            return
        nc = len(validator.names)
        acc = self._accumulator(nc, getattr(validator, "device", None))
        acc.sync()
        if self.probs is not None:
            self.probs, self.labels = gather_rows(self.probs, self.labels, nc, acc.device)
        if self.boxes is not None:  # image ids made unique across ranks: local index * world + rank
            world, rank = dist.get_world_size(), dist.get_rank()
            rows = [b[:, :3] for b in self.boxes]
            ids = [b[:, 3] * world + rank for b in self.boxes]
            rows, ids = gather_rows(rows, ids, 3, acc.device)
            self.boxes = [torch.cat([rows[0], ids[0].float()[:, None]], 1)] if rows else []

    def result(self, validator: Any) -> dict[str, Any]:
        """The metrics (one host transfer), the bins behind the diagram, and ``ece_ts``/``nll_ts``/``temperature``
        when probabilities were kept. An empty split gives NaN metrics, never a perfect 0."""
        keys = metric_keys(self.task)
        empty = {"metrics": dict.fromkeys(keys, math.nan), "bins": None, "per_class": {}, ts_key(self.task): math.nan,
                 "training": validator.training}
        if self.acc is None or (self.task == "classify" and int(self.acc.bins()["count"].sum()) == 0):
            return empty
        metrics = self.acc.compute()
        if self.task != "classify" and int(self.acc.bins()["count"].sum()) == 0:
            metrics = dict.fromkeys(metrics, math.nan)  # no detection scored: nothing measured
        out = {**empty, "metrics": {k: metrics[k] for k in keys}, "bins": self.acc.bins()}
        if self.task != "classify":
            names = getattr(validator, "names", {}) or {}
            out["per_class"] = {names.get(c, str(c)): v for c, v in self.acc.per_class_d_ece().items()}
            if self.boxes:
                b = torch.cat(self.boxes).cpu()
                out.update(held_out_box_temperature(b[:, 0], b[:, 1] > 0.5, b[:, 2].long(), b[:, 3].long(),
                                                    len(names) or self.acc.num_classes, self.bins))
        elif self.probs:
            out.update(held_out_temperature(torch.cat(self.probs), torch.cat(self.labels), self.bins))
        self.probs = self.boxes = None
        return out


def gather_rows(probs: list[torch.Tensor], labels: list[torch.Tensor], nc: int, device: torch.device
                ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Every rank's (probabilities, labels), concatenated on rank 0 in rank order (empty lists on other ranks)."""
    import torch.distributed as dist

    p = torch.cat(probs).float() if probs else torch.zeros(0, nc, device=device)
    y = torch.cat(labels) if labels else torch.zeros(0, dtype=torch.long, device=device)
    mine = torch.cat([p.to(device), y.to(device, p.dtype)[:, None]], 1)  # labels < 2**24: exact
    world, rank = dist.get_world_size(), dist.get_rank()
    length = torch.tensor([mine.shape[0]], device=device)
    lengths = [torch.zeros_like(length) for _ in range(world)]
    dist.all_gather(lengths, length)
    sizes = [int(x) for x in torch.cat(lengths).tolist()]
    padded = torch.zeros(max(sizes), nc + 1, dtype=mine.dtype, device=device)
    padded[: mine.shape[0]] = mine
    parts = [torch.empty_like(padded) for _ in range(world)] if rank == 0 else None
    dist.gather(padded, parts, dst=0)
    if rank != 0:
        return [], []
    rows = torch.cat([part[:m] for part, m in zip(parts, sizes)])
    return [rows[:, :nc]], [rows[:, nc].long()]
