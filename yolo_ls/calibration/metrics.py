"""Pure, device-agnostic calibration metrics for classification and detection.

Every public function takes tensors on any device and returns a 0-d tensor on that device (no ``.item()``, no host
synchronisation), so they can run inside a validation loop. The formulas live once, in private helpers that the
streaming accumulators in :mod:`yolo_ls.calibration.accumulator` reuse (the torchmetrics functional/stateful split).

Conventions:
    * Inputs: ``probs`` is ``(N, K)`` probabilities, ``labels`` is ``(N,)`` integer class indices. Top-label metrics
      use ``conf, pred = probs.max(1)`` and ``correct = pred == labels`` (the same tie-breaking as torchmetrics).
    * Equal-width binning (ECE, MCE, classwise ECE, reliability diagrams): edges ``linspace(0, 1, n_bins + 1)`` in the
      confidence dtype, bins are half-open ``[e_i, e_{i+1})`` (``torch.bucketize(conf, edges, right=True) - 1``, as
      in torchmetrics), so a confidence equal to an inner edge goes to the bin on its right. The index is clamped to
      ``[0, n_bins - 1]``: a confidence of exactly ``1.0`` belongs to the last bin ``[1 - 1/n_bins, 1]``.
      torchmetrics instead gives ``conf == 1.0`` a degenerate extra bin; the results agree exactly whenever no
      confidence equals ``1.0`` and differ (by design) otherwise.
    * ECE is ``sum_b |acc_sum_b - conf_sum_b| / N`` (= ``sum_b (n_b / N) |acc_b - conf_b|``); empty bins contribute
      nothing. MCE is the largest ``|acc_b - conf_b|`` over non-empty bins.
    * Adaptive ECE (``ace``): see :func:`ace`.
    * ``N == 0``: every metric returns ``0`` (a 0-d tensor), never NaN and never an error.
    * Sums are accumulated in float64 (float32 on MPS, which has no float64).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = (
    "accuracy",
    "ace",
    "binary_ece",
    "binary_mce",
    "brier",
    "confidence",
    "cw_ece",
    "ece",
    "entropy",
    "mce",
    "nll",
    "overconfidence",
    "reliability_bins",
)


# ----------------------------------------------------------------------------------------------------------------------
# Private shared helpers (used by the functional API below and by the accumulators)
# ----------------------------------------------------------------------------------------------------------------------
def _sum_dtype(device: torch.device) -> torch.dtype:
    """Dtype used for accumulated sums: float64, except float32 on MPS (no float64 support)."""
    return torch.float32 if device.type == "mps" else torch.float64


def _as_float(x: Tensor) -> Tensor:
    """Return ``x`` as a float tensor of at least float32 precision (half/bfloat16/int/bool are upcast)."""
    if x.dtype in (torch.float32, torch.float64):
        return x
    return x.float()


def _check_probs(probs: Tensor, labels: Tensor) -> None:
    """Validate shapes (no value checks, which would synchronise with the device)."""
    if probs.ndim != 2:
        raise ValueError(f"probs must be (N, K), got shape {tuple(probs.shape)}")
    if labels.ndim != 1 or labels.shape[0] != probs.shape[0]:
        raise ValueError(f"labels must be (N,) with N={probs.shape[0]}, got shape {tuple(labels.shape)}")


def _check_binary(conf: Tensor, correct: Tensor) -> None:
    if conf.ndim != 1 or correct.shape != conf.shape:
        raise ValueError(f"conf and correct must both be (N,), got {tuple(conf.shape)} and {tuple(correct.shape)}")


def _check_n_bins(n_bins: int) -> None:
    if not isinstance(n_bins, int) or isinstance(n_bins, bool) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive int, got {n_bins!r}")


def _top_label(probs: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Top-label confidence and correctness.

    Args:
        probs: ``(N, K)`` probabilities.
        labels: ``(N,)`` integer labels.

    Returns:
        ``(conf, correct)``: ``(N,)`` max probability (float, at least float32) and ``(N,)`` bool ``argmax == label``.
    """
    conf, pred = probs.max(dim=1)
    return _as_float(conf), pred == labels.to(pred.device, torch.long)


def _bin_edges(n_bins: int, dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu") -> Tensor:
    """The ``n_bins + 1`` equal-width bin edges over [0, 1]."""
    return torch.linspace(0, 1, n_bins + 1, dtype=dtype, device=device)


def _bin_index(conf: Tensor, n_bins: int) -> Tensor:
    """Equal-width bin index of each confidence (any shape), torchmetrics convention, clamped to [0, n_bins - 1].

    Edges are ``linspace(0, 1, n_bins + 1)`` in the confidence dtype; ``bucketize(conf, edges, right=True) - 1`` puts a
    value equal to an inner edge into the bin on its right (half-open ``[e_i, e_{i+1})``); ``1.0`` goes to the last bin.
    """
    conf = _as_float(conf)
    edges = _bin_edges(n_bins, conf.dtype, conf.device)
    return (torch.bucketize(conf.contiguous(), edges, right=True) - 1).clamp_(0, n_bins - 1)


def _scatter_sums(
    index: Tensor, conf: Tensor, correct: Tensor, size: int, weight: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Scatter-add count, confidence and correctness into ``size`` slots (deterministic ``index_add_``, on device).

    Args:
        index: ``(M,)`` long slot index in ``[0, size)``.
        conf: ``(M,)`` confidences.
        correct: ``(M,)`` bool or {0, 1} correctness.
        size: Number of slots.
        weight: Optional ``(M,)`` {0, 1} mask / weight (used to filter without a data-dependent shape).

    Returns:
        ``(count, conf_sum, acc_sum)``, each ``(size,)`` in the accumulation dtype.
    """
    device = conf.device
    dtype = _sum_dtype(device)
    index = index.reshape(-1)
    ones = torch.ones(index.shape[0], dtype=dtype, device=device) if weight is None else weight.reshape(-1).to(dtype)
    out = torch.zeros(3, size, dtype=dtype, device=device)
    out[0].index_add_(0, index, ones)
    out[1].index_add_(0, index, conf.reshape(-1).to(dtype) * ones)
    out[2].index_add_(0, index, correct.reshape(-1).to(dtype) * ones)
    return out[0], out[1], out[2]


def _bin_sums(
    conf: Tensor,
    correct: Tensor,
    n_bins: int,
    group: Tensor | None = None,
    n_groups: int = 1,
    weight: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-bin sums with the equal-width binning of :func:`_bin_index` (the one binning of this package).

    Args:
        conf: ``(N,)`` confidences, or ``(N, K)`` for classwise binning (column ``k`` is group ``k``).
        correct: Same shape as ``conf``, bool or {0, 1}.
        n_bins: Number of equal-width bins.
        group: Optional ``(N,)`` long group id (e.g. predicted class) for 1-D ``conf``.
        n_groups: Number of groups when ``group`` is given.
        weight: Optional ``(N,)`` {0, 1} mask for 1-D ``conf``.

    Returns:
        ``(count, conf_sum, acc_sum)``: each ``(n_bins,)`` for ungrouped 1-D input, else ``(groups, n_bins)``.
    """
    index = _bin_index(conf, n_bins)
    if conf.ndim == 2:
        n_groups = conf.shape[1]
        index = index + torch.arange(n_groups, device=index.device) * n_bins
    elif group is not None:
        index = index + group.to(index.device, torch.long) * n_bins
    else:
        return _scatter_sums(index, conf, correct, n_bins, weight)
    sums = _scatter_sums(index, conf, correct, n_groups * n_bins, weight)
    return tuple(s.view(n_groups, n_bins) for s in sums)  # type: ignore[return-value]


def _ece_from_sums(count: Tensor, conf_sum: Tensor, acc_sum: Tensor) -> Tensor:
    """ECE over the last dim: ``sum_b |acc_sum_b - conf_sum_b| / N`` (0 when ``N == 0``; empty bins add 0)."""
    return (acc_sum - conf_sum).abs().sum(-1) / count.sum(-1).clamp_min(1)


def _mce_from_sums(count: Tensor, conf_sum: Tensor, acc_sum: Tensor) -> Tensor:
    """MCE over the last dim: max over non-empty bins of ``|acc_b - conf_b|`` (0 when every bin is empty)."""
    gap = (acc_sum - conf_sum).abs() / count.clamp_min(1)
    return gap.masked_fill(count == 0, 0).amax(-1)


def _mean(total: Tensor, n: int | Tensor) -> Tensor:
    """``total / n`` with ``n == 0`` giving 0."""
    if isinstance(n, Tensor):
        return total / n.clamp_min(1)
    return total / max(int(n), 1)


def _ace_from_top(conf: Tensor, correct: Tensor, n_bins: int) -> Tensor:
    """Adaptive (equal-mass) ECE of top-label ``conf``/``correct``; convention documented in :func:`ace`."""
    n = conf.shape[0]
    if n == 0:
        return torch.zeros((), dtype=_sum_dtype(conf.device), device=conf.device)
    order = torch.argsort(conf, stable=True)
    index = torch.arange(n, device=conf.device) * n_bins // n
    return _ece_from_sums(*_scatter_sums(index, conf[order], correct[order], n_bins))


def _brier_terms(probs: Tensor, labels: Tensor) -> Tensor:
    """Per-sample multiclass Brier score ``sum_k (p_k - onehot_k)^2``, shape ``(N,)``."""
    p = probs.to(_sum_dtype(probs.device))
    onehot = torch.nn.functional.one_hot(labels.to(p.device, torch.long), p.shape[1]).to(p.dtype)
    return (p - onehot).square().sum(1)


def _nll_terms(probs: Tensor, labels: Tensor, eps: float = 1e-12) -> Tensor:
    """Per-sample negative log-likelihood ``-log(max(p_y, eps))``, shape ``(N,)``."""
    p_y = probs.gather(1, labels.to(probs.device, torch.long)[:, None]).squeeze(1)
    return -p_y.to(_sum_dtype(probs.device)).clamp_min(eps).log()


def _entropy_terms(probs: Tensor) -> Tensor:
    """Per-sample predictive entropy ``-sum_k p_k log p_k`` (natural log, ``0 log 0 = 0``), shape ``(N,)``."""
    p = probs.to(_sum_dtype(probs.device))
    return -torch.special.xlogy(p, p).sum(1)


def _bins_to_dict(count: Tensor, conf_sum: Tensor, acc_sum: Tensor) -> dict[str, Any]:
    """Convert per-bin sums to CPU arrays for plotting (one host transfer)."""
    n_bins = count.shape[-1]
    ece_v = _ece_from_sums(count, conf_sum, acc_sum)
    mce_v = _mce_from_sums(count, conf_sum, acc_sum)
    host = torch.cat([torch.stack([count, conf_sum, acc_sum]).reshape(-1), ece_v[None], mce_v[None]]).cpu().numpy()
    c, s_conf, s_acc = host[: 3 * n_bins].reshape(3, n_bins)
    nonempty = c > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.where(nonempty, s_conf / c, np.nan)
        mean_acc = np.where(nonempty, s_acc / c, np.nan)
    return {
        "edges": _bin_edges(n_bins).numpy(),
        "count": np.rint(c).astype(np.int64),
        "confidence": mean_conf,
        "accuracy": mean_acc,
        "ece": float(host[-2]),
        "mce": float(host[-1]),
        "n": int(round(c.sum())),
    }


# ----------------------------------------------------------------------------------------------------------------------
# Public functional API
# ----------------------------------------------------------------------------------------------------------------------
def ece(probs: Tensor, labels: Tensor, n_bins: int = 15) -> Tensor:
    """Top-label expected calibration error with ``n_bins`` equal-width bins (torchmetrics ``norm="l1"``).

    Args:
        probs: ``(N, K)`` probabilities.
        labels: ``(N,)`` integer labels.
        n_bins: Number of equal-width bins over [0, 1].

    Returns:
        0-d tensor, ``sum_b (n_b / N) |acc_b - conf_b|``; 0 for ``N == 0``.
    """
    _check_probs(probs, labels)
    _check_n_bins(n_bins)
    return _ece_from_sums(*_bin_sums(*_top_label(probs, labels), n_bins))


def mce(probs: Tensor, labels: Tensor, n_bins: int = 15) -> Tensor:
    """Top-label maximum calibration error (torchmetrics ``norm="max"``), over non-empty bins only.

    Args:
        probs: ``(N, K)`` probabilities.
        labels: ``(N,)`` integer labels.
        n_bins: Number of equal-width bins over [0, 1].

    Returns:
        0-d tensor, ``max_b |acc_b - conf_b|`` over non-empty bins; 0 for ``N == 0``.
    """
    _check_probs(probs, labels)
    _check_n_bins(n_bins)
    return _mce_from_sums(*_bin_sums(*_top_label(probs, labels), n_bins))


def calibration_errors(probs: Tensor, labels: Tensor, n_bins: int = 15) -> dict[str, Tensor]:
    """Top-label ``ece`` and ``mce`` from one binning pass: the same values as :func:`ece` and :func:`mce`.

    Args:
        probs: ``(N, K)`` probabilities.
        labels: ``(N,)`` integer labels.
        n_bins: Number of equal-width bins over [0, 1].

    Returns:
        ``{"ece": 0-d tensor, "mce": 0-d tensor}``.
    """
    _check_probs(probs, labels)
    _check_n_bins(n_bins)
    sums = _bin_sums(*_top_label(probs, labels), n_bins)
    return {"ece": _ece_from_sums(*sums), "mce": _mce_from_sums(*sums)}


def ace(probs: Tensor, labels: Tensor, n_bins: int = 15) -> Tensor:
    """Top-label adaptive ECE (equal-mass bins, "AdaECE" of Mukhoti et al. 2020).

    Convention: the top-label confidences are sorted ascending (stable sort, so ties keep input order); the sample of
    rank ``r`` (0-based) goes to bin ``floor(r * n_bins / N)``, so bin sizes differ by at most one (when
    ``N < n_bins`` some bins are empty and contribute nothing). The score is then the ECE formula on those bins,
    ``sum_b (n_b / N) |acc_b - conf_b|``. Ties at a bin boundary may be split across two bins.

    Args:
        probs: ``(N, K)`` probabilities.
        labels: ``(N,)`` integer labels.
        n_bins: Number of equal-mass bins.

    Returns:
        0-d tensor; 0 for ``N == 0``.
    """
    _check_probs(probs, labels)
    _check_n_bins(n_bins)
    return _ace_from_top(*_top_label(probs, labels), n_bins)


def _classwise_targets(labels: Tensor, num_classes: int, device: torch.device) -> Tensor:
    """``(N, K)`` bool matrix ``labels[:, None] == k`` (batch-local only)."""
    return labels.to(device, torch.long)[:, None] == torch.arange(num_classes, device=device)


def cw_ece(probs: Tensor, labels: Tensor, n_bins: int = 15) -> Tensor:
    """Classwise (marginal) ECE: for each class ``k`` bin ``probs[:, k]`` against ``labels == k``; mean over classes.

    Args:
        probs: ``(N, K)`` probabilities.
        labels: ``(N,)`` integer labels.
        n_bins: Number of equal-width bins over [0, 1] (same binning as :func:`ece`).

    Returns:
        0-d tensor, ``mean_k ECE_k``; 0 for ``N == 0``.
    """
    _check_probs(probs, labels)
    _check_n_bins(n_bins)
    targets = _classwise_targets(labels, probs.shape[1], probs.device)
    return _ece_from_sums(*_bin_sums(probs, targets, n_bins)).mean()


def brier(probs: Tensor, labels: Tensor) -> Tensor:
    """Multiclass Brier score: mean over samples of ``sum_k (p_k - onehot_k)^2`` (range [0, 2]).

    Args:
        probs: ``(N, K)`` probabilities.
        labels: ``(N,)`` integer labels.

    Returns:
        0-d tensor; 0 for ``N == 0``.
    """
    _check_probs(probs, labels)
    return _mean(_brier_terms(probs, labels).sum(), probs.shape[0])


def nll(probs: Tensor, labels: Tensor, eps: float = 1e-12) -> Tensor:
    """Mean negative log-likelihood ``-log p_y`` with ``p_y`` clamped to ``eps``.

    Args:
        probs: ``(N, K)`` probabilities.
        labels: ``(N,)`` integer labels.
        eps: Lower clamp for ``p_y``.

    Returns:
        0-d tensor; 0 for ``N == 0``.
    """
    _check_probs(probs, labels)
    return _mean(_nll_terms(probs, labels, eps).sum(), probs.shape[0])


def entropy(probs: Tensor) -> Tensor:
    """Mean predictive entropy ``-sum_k p_k log p_k`` (natural log, nats).

    Args:
        probs: ``(N, K)`` probabilities.

    Returns:
        0-d tensor; 0 for ``N == 0``.
    """
    if probs.ndim != 2:
        raise ValueError(f"probs must be (N, K), got shape {tuple(probs.shape)}")
    return _mean(_entropy_terms(probs).sum(), probs.shape[0])


def accuracy(probs: Tensor, labels: Tensor) -> Tensor:
    """Top-1 accuracy.

    Args:
        probs: ``(N, K)`` probabilities.
        labels: ``(N,)`` integer labels.

    Returns:
        0-d tensor; 0 for ``N == 0``.
    """
    _check_probs(probs, labels)
    _, correct = _top_label(probs, labels)
    return _mean(correct.to(_sum_dtype(probs.device)).sum(), probs.shape[0])


def confidence(probs: Tensor) -> Tensor:
    """Mean top-1 probability.

    Args:
        probs: ``(N, K)`` probabilities.

    Returns:
        0-d tensor; 0 for ``N == 0``.
    """
    if probs.ndim != 2:
        raise ValueError(f"probs must be (N, K), got shape {tuple(probs.shape)}")
    return _mean(probs.max(dim=1).values.to(_sum_dtype(probs.device)).sum(), probs.shape[0])


def overconfidence(probs: Tensor, labels: Tensor) -> Tensor:
    """Mean confidence minus accuracy (positive = overconfident, negative = underconfident).

    Args:
        probs: ``(N, K)`` probabilities.
        labels: ``(N,)`` integer labels.

    Returns:
        0-d tensor; 0 for ``N == 0``.
    """
    return confidence(probs) - accuracy(probs, labels)


def binary_ece(conf: Tensor, correct: Tensor, n_bins: int = 15) -> Tensor:
    """ECE of per-prediction confidences against binary correctness (e.g. detection: TP at IoU 0.5).

    Equals torchmetrics ``binary_calibration_error(conf, correct, n_bins, norm="l1")``.

    Args:
        conf: ``(N,)`` confidences in [0, 1].
        correct: ``(N,)`` bool (or {0, 1}) correctness.
        n_bins: Number of equal-width bins over [0, 1].

    Returns:
        0-d tensor; 0 for ``N == 0``.
    """
    _check_binary(conf, correct)
    _check_n_bins(n_bins)
    return _ece_from_sums(*_bin_sums(conf, correct, n_bins))


def binary_mce(conf: Tensor, correct: Tensor, n_bins: int = 15) -> Tensor:
    """MCE of per-prediction confidences against binary correctness (non-empty bins only).

    Args:
        conf: ``(N,)`` confidences in [0, 1].
        correct: ``(N,)`` bool (or {0, 1}) correctness.
        n_bins: Number of equal-width bins over [0, 1].

    Returns:
        0-d tensor; 0 for ``N == 0``.
    """
    _check_binary(conf, correct)
    _check_n_bins(n_bins)
    return _mce_from_sums(*_bin_sums(conf, correct, n_bins))


def reliability_bins(conf: Tensor, correct: Tensor, n_bins: int = 15) -> dict[str, Any]:
    """Per-bin reliability data (the input of the reliability diagram), from the same binning as :func:`ece`.

    Args:
        conf: ``(N,)`` confidences and ``correct`` ``(N,)`` bool; or, for convenience, ``(N, K)`` probabilities with
            ``correct`` holding ``(N,)`` integer labels (the top-label reduction is applied).
        correct: See ``conf``.
        n_bins: Number of equal-width bins over [0, 1].

    Returns:
        Dict of CPU values: ``edges`` ``(n_bins + 1,)`` float64, ``count`` ``(n_bins,)`` int64, ``confidence`` and
        ``accuracy`` ``(n_bins,)`` float64 per-bin means (NaN for empty bins), ``ece`` and ``mce`` floats, ``n`` int.
    """
    _check_n_bins(n_bins)
    if conf.ndim == 2:
        _check_probs(conf, correct)
        conf, correct = _top_label(conf, correct)
    _check_binary(conf, correct)
    return _bins_to_dict(*_bin_sums(conf, correct, n_bins))
