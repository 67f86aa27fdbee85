"""Calibration error after temperature scaling, measured on held-out samples: ``ece_ts`` and ``d_ece_ts``.

The temperature is cross-fitted: the samples are split into folds (by image), each fold is scaled by the temperature
fitted on the other folds, and the pooled held-out predictions are scored. No sample is scored by a temperature that
saw it, so the figure is what temperature scaling gives on new images, not on the images it was fitted on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from yolo_ls.calibration.crossfit import assign_folds, cross_fit
from yolo_ls.calibration.metrics import binary_ece, ece, nll
from yolo_ls.calibration.scaling import fit_sigmoid_map, fit_softmax_map

__all__ = ("HELD_OUT_FOLDS", "box_logits", "held_out_box_temperature", "held_out_temperature")

HELD_OUT_FOLDS = 5  # folds of the cross-fit behind ece_ts / d_ece_ts


def box_logits(conf: Tensor, eps: float = 1e-7) -> Tensor:
    """The class logit behind each box confidence (a sigmoid score), in float64 on the CPU; confidences are clamped to
    ``[eps, 1 - eps]`` first, so a saturated score of exactly 0 or 1 gives a finite logit."""
    return torch.logit(conf.detach().double().cpu(), eps=eps)


def held_out_temperature(probs: Tensor, labels: Tensor, n_bins: int = 15, folds: int = HELD_OUT_FOLDS,
                         seed: int = 0) -> dict[str, float]:
    """``ece_ts``, ``nll_ts`` (held-out, cross-fitted by sample) and ``temperature`` (fitted on every sample).

    Args:
        probs: ``(N, K)`` softmax probabilities (their logs are the logits up to a per-row constant, which a
            temperature leaves alone).
        labels: ``(N,)`` labels.

    Returns:
        NaN ``ece_ts``/``nll_ts`` when there are fewer samples than folds, NaN everything for a single class (a
        softmax over one class is always 1: there is nothing to scale).
    """
    z = probs.detach().double().cpu().clamp_min(1e-12).log()
    y = labels.detach().long().cpu()
    out = {"temperature": math.nan, "ece_ts": math.nan, "nll_ts": math.nan}
    if z.ndim != 2 or z.shape[1] < 2 or not y.numel():
        return out
    out["temperature"] = 1.0 / float(fit_softmax_map(z, y).weight)
    if y.numel() < folds:
        return out
    res = cross_fit(assign_folds(range(y.numel()), folds, seed), lambda idx: fit_softmax_map(z[idx], y[idx]),
                    lambda m, idx: torch.softmax(m(z[idx]), 1), lambda p, idx: {})
    out.update(ece_ts=float(ece(res.out_of_fold, y, n_bins=n_bins)), nll_ts=float(nll(res.out_of_fold, y)))
    return out


def held_out_box_temperature(conf: Tensor, correct: Tensor, cls: Tensor, image: Sequence[int] | Tensor,
                             num_classes: int, n_bins: int = 15, folds: int = HELD_OUT_FOLDS,
                             seed: int = 0) -> dict[str, float]:
    """``d_ece_ts`` (held-out, cross-fitted by image) and ``d_temperature`` (fitted on every box) of detection boxes.

    Args:
        conf: ``(N,)`` box confidences (sigmoid scores); correct: ``(N,)`` matched at IoU 0.5; cls: ``(N,)`` class;
        image: ``(N,)`` the image each box is on (a fold holds whole images).

    Returns:
        NaN when fewer images than folds hold boxes, or when every box is correct (or every box wrong).
    """
    z, hit, k = box_logits(conf), correct.detach().bool().cpu(), cls.detach().long().cpu()
    out = {"d_temperature": math.nan, "d_ece_ts": math.nan}
    groups = image.tolist() if isinstance(image, Tensor) else list(image)
    if len(set(groups)) < folds or bool(hit.all()) or not bool(hit.any()):
        return out
    out["d_temperature"] = 1.0 / float(fit_sigmoid_map(z, hit, k, num_classes).weight)
    res = cross_fit(assign_folds(groups, folds, seed), lambda idx: fit_sigmoid_map(z[idx], hit[idx], k[idx],
                                                                                    num_classes),
                    lambda m, idx: torch.sigmoid(m.per_box(z[idx], k[idx])), lambda p, idx: {})
    out["d_ece_ts"] = float(binary_ece(res.out_of_fold, hit, n_bins=n_bins))
    return out
