"""The confidence threshold that reaches a target precision on detection boxes."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

__all__ = ("precision_at", "precision_threshold")


def precision_threshold(conf: Tensor, correct: Tensor, n_gt: int, target: float) -> dict[str, Any]:
    """The lowest threshold ``t`` at which the boxes with ``conf >= t`` reach ``precision >= target``.

    Among every threshold that reaches the target, the lowest keeps the most boxes (the highest recall). The
    precision of the boxes kept is their mean correctness, which on calibrated scores equals their mean confidence
    (reported as ``confidence``): it is above the threshold itself, so on a calibrated model the threshold for a
    precision of 0.9 sits below 0.9 and the kept boxes' mean confidence near 0.9.

    Args:
        conf: ``(N,)`` box confidences.
        correct: ``(N,)`` bool, the box matches a ground truth of its class.
        n_gt: Ground-truth boxes behind ``correct`` (the recall's denominator).
        target: Precision to reach, in ``(0, 1)``.

    Returns:
        ``{"threshold", "precision", "recall", "boxes", "confidence"}``; ``threshold`` is NaN (and the rest
        describe nothing) when no threshold reaches the target.
    """
    conf = conf.detach().double().cpu().reshape(-1)
    correct = correct.detach().cpu().reshape(-1).double()
    order = torch.argsort(conf, descending=True, stable=True)
    conf, correct = conf[order], correct[order]
    tp, conf_sum = correct.cumsum(0), conf.cumsum(0)
    kept = torch.arange(1, conf.numel() + 1, dtype=torch.float64)
    last = torch.ones(conf.numel(), dtype=torch.bool)  # a threshold keeps every box tied at its confidence
    if conf.numel() > 1:
        last[:-1] = conf[1:] != conf[:-1]
    ok = (tp / kept >= target) & last
    if not bool(ok.any()):
        return {"threshold": math.nan, "precision": math.nan, "recall": math.nan, "boxes": 0, "confidence": math.nan}
    i = int(torch.nonzero(ok).max())
    return {"threshold": float(conf[i]), "precision": float(tp[i] / kept[i]),
            "recall": float(tp[i] / n_gt) if n_gt > 0 else math.nan, "boxes": i + 1,
            "confidence": float(conf_sum[i] / kept[i])}


def precision_at(conf: Tensor, correct: Tensor, n_gt: int, threshold: float) -> dict[str, Any]:
    """Precision, recall, box count and mean confidence of the boxes with ``conf >= threshold`` (NaN when none)."""
    conf = conf.detach().double().cpu().reshape(-1)
    keep = conf >= threshold
    hits = correct.detach().cpu().reshape(-1)[keep]
    n = int(keep.sum())
    tp = float(hits.double().sum())
    return {"threshold": threshold, "precision": tp / n if n else math.nan,
            "recall": tp / n_gt if n_gt > 0 else math.nan, "boxes": n,
            "confidence": float(conf[keep].mean()) if n else math.nan}
