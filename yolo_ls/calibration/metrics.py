"""Calibration metrics for classification and detection, on any device.

Every public function returns a 0-d tensor on the input's device (no host synchronisation). The formulas live once,
in private helpers that :mod:`yolo_ls.calibration.accumulator` reuses.

Conventions:
    * ``probs`` is ``(N, K)`` probabilities, ``labels`` ``(N,)`` integer classes. Top-label metrics use
      ``conf, pred = probs.max(1)`` and ``correct = pred == labels`` (torchmetrics' tie-breaking).
    * Equal-width binning (:func:`_bin_index`, the one rule): ``conf`` is in bin ``k`` when ``e_k <= conf < e_{k+1}``,
      ``e_k = k / n_bins`` correctly rounded to ``conf``'s dtype; ``1.0`` is in the last bin. Agrees with torchmetrics
      unless a confidence is ``1.0`` or exactly on an edge.
    * ECE is ``sum_b |acc_sum_b - conf_sum_b| / N``; empty bins add nothing. MCE is the largest ``|acc_b - conf_b|``
      over non-empty bins.
    * ``N == 0``: every metric is NaN, never ``0`` and never an error. A wrong shape or ``n_bins`` (not a positive
      int) raises ``ValueError``; values are not checked (that would synchronise with the device).
    * Sums are taken in float64 (float32 on MPS).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from yolo_ls.calibration import _cpu

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


# ---------------------------------------------------------------- private helpers (shared with the accumulators)
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
    """``(conf, correct)``: the ``(N,)`` top-1 probability in ``probs``' dtype and ``(N,)`` bool ``argmax == label``."""
    if _cpu.usable(probs, labels):
        return _cpu.top_label(probs, labels)[:2]
    conf, pred = probs.max(dim=1)
    return conf, pred == labels.to(pred.device, torch.long)


def _bin_edges(n_bins: int, dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu") -> Tensor:
    """The ``n_bins + 1`` edges ``k / n_bins``, each correctly rounded to ``dtype`` (for ``n_bins < 2**28``)."""
    edges = torch.arange(n_bins + 1, dtype=torch.float64, device=device) / n_bins
    return edges.to(dtype)


def _bin_index(conf: Tensor, n_bins: int) -> Tensor:
    """Equal-width bin of each confidence (any shape): the one binning rule.

    ``conf`` is in bin ``k`` when ``e_k <= conf < e_{k+1}``, ``e_k`` being ``k / n_bins`` correctly rounded to
    ``conf``'s dtype (:func:`_bin_edges`); the result is clamped to ``[0, n_bins - 1]``, so ``1.0`` is in the last bin.
    Computed as ``r - (conf < e_r)`` with ``r = round(conf * n_bins)``, the only edge that can matter.
    """
    return _bin_float(conf, n_bins).to(torch.long)


def _bin_float(conf: Tensor, n_bins: int) -> Tensor:
    """:func:`_bin_index` as whole numbers in a float tensor (at least float32), for adding offsets before the cast."""
    src = conf.dtype
    x = _as_float(conf)
    r = torch.mul(x, n_bins).round_()
    if src in (torch.float32, torch.float64):
        edge = r / n_bins
    else:  # the edge in the input's precision, compared in float32 (exact: float16/bfloat16 values are float32 values)
        edge = (r.to(torch.float64) / n_bins).to(src).to(x.dtype)
    torch.lt(x, edge, out=edge)  # 1.0 where conf < e_r
    return r.sub_(edge).clamp_(0, n_bins - 1)


def _scatter_sums(
    index: Tensor, conf: Tensor, correct: Tensor, size: int, weight: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """``(count, conf_sum, acc_sum)``, each ``(size,)``, of ``(M,)`` conf/correct scattered to ``index`` slots.

    ``weight`` is an optional ``(M,)`` {0, 1} mask (a filter without a data-dependent shape). No host sync.
    """
    device = conf.device
    dtype = _sum_dtype(device)
    index = index.reshape(-1)
    if weight is None:  # (count, conf) per (correct, slot): two scatter-adds instead of three
        split = index + correct.reshape(-1).to(torch.long) * size
        ones = torch.ones(split.shape[0], dtype=dtype, device=device)
        out = torch.zeros(2, 2 * size, dtype=dtype, device=device)
        out[0].index_add_(0, split, ones)
        out[1].index_add_(0, split, conf.reshape(-1).to(dtype))
        count, conf_sum = out.view(2, 2, size).unbind(0)
        return count.sum(0), conf_sum.sum(0), count[1]
    ones = weight.reshape(-1).to(dtype)
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
    """``(count, conf_sum, acc_sum)`` per :func:`_bin_index` bin of ``(N,)`` conf/correct.

    Each is ``(n_bins,)``, or ``(n_groups, n_bins)`` with ``group`` (``(N,)`` long group id, e.g. predicted class).
    ``weight`` is an optional ``(N,)`` {0, 1} mask.
    """
    if group is None and weight is None and _cpu.usable(conf, correct):
        return _cpu.bin_sums(conf, correct, n_bins)
    index = _bin_index(conf, n_bins)
    if group is None:
        return _scatter_sums(index, conf, correct, n_bins, weight)
    index = index + group.to(index.device, torch.long) * n_bins
    sums = _scatter_sums(index, conf, correct, n_groups * n_bins, weight)
    return tuple(s.view(n_groups, n_bins) for s in sums)  # type: ignore[return-value]


# Row-chunk sizes of the (N, K) passes (entries): cache-sized on the CPU; elsewhere few kernels, small float64 copies.
_CHUNK_ENTRIES = 1 << 17
_DEVICE_CHUNK_ENTRIES = 1 << 24


def _row_chunks(probs: Tensor) -> list[Tensor]:
    """Row chunks of ``probs`` (views): ``_CHUNK_ENTRIES`` entries on the CPU, ``_DEVICE_CHUNK_ENTRIES`` elsewhere."""
    size = _CHUNK_ENTRIES if probs.device.type == "cpu" else _DEVICE_CHUNK_ENTRIES
    rows = max(1, size // max(probs.shape[1], 1))
    return list(probs.split(rows)) if probs.shape[0] > rows else [probs]


def _matrix_sums(
    probs: Tensor, n_bins: int, classwise: bool = True, squares: bool = True, entropy: bool = True
) -> dict[str, Tensor]:
    """The sums over every entry of ``(N, K)`` ``probs`` the metrics need, in one pass of row chunks.

    Entries are binned in their own dtype and summed in the accumulation dtype. Keys, each when asked for:
    ``cw_conf`` (``classwise``): ``(K, n_bins)`` sums of ``probs[:, k]`` per class and bin; ``squares``: ``sum p^2``;
    ``entropy``: ``-sum p log p`` with ``0 log 0 = 0`` (``p * log(max(p, tiny))``).
    """
    if _cpu.usable(probs):
        return _cpu.matrix_sums(probs, n_bins, classwise, squares, entropy)
    n, k = probs.shape
    device, dtype = probs.device, _sum_dtype(probs.device)
    zero = torch.zeros((), dtype=dtype, device=device)
    cw, sq, ent = torch.zeros(k * n_bins, dtype=dtype, device=device), zero.clone(), zero.clone()
    sparse = classwise and device.type == "cpu" and n_bins >= 2 and k >= 4 * n_bins
    if sparse:
        col = torch.zeros(k, dtype=dtype, device=device)
        first_edge = _bin_edges(n_bins, probs.dtype)[1].item()  # a Python float equal to e_1 in probs' dtype
    elif classwise:
        exact_float = k * n_bins < 2**24  # the fused index is exact in float32
        offset = torch.arange(k, device=device) * n_bins
        offset = offset.to(torch.float32 if probs.dtype != torch.float64 else probs.dtype) if exact_float else offset
    tiny = torch.finfo(dtype).tiny
    for raw in _row_chunks(probs):  # binned in its own dtype (edges rounded to it), summed in the accumulation dtype
        x = raw.to(dtype)  # a chunk, never the whole matrix
        if sparse:
            col += x.sum(0)
            rows, cls = torch.nonzero(raw >= first_edge, as_tuple=True)
            v = x[rows, cls]
            index = _bin_float(raw[rows, cls], n_bins).to(torch.long).add_(cls * n_bins)
        elif classwise:
            v = x.reshape(-1)
            b = _bin_float(raw, n_bins)
            index = (b.add_(offset) if exact_float else b.to(torch.long) + offset).to(torch.long).reshape(-1)
        if classwise:
            cw.index_add_(0, index, v)
        if squares:
            sq += torch.mul(x, x).sum()
        if entropy:
            ent -= x.clamp_min(tiny).log_().mul_(x).sum()
    out: dict[str, Tensor] = {}
    if classwise:
        cw = cw.view(k, n_bins)
        if sparse:
            cw[:, 0] = col - cw[:, 1:].sum(1)
        out["cw_conf"] = cw
    if squares:
        out["squares"] = sq
    if entropy:
        out["entropy"] = ent
    return out


def _label_probs(probs: Tensor, labels: Tensor) -> Tensor:
    """``p_y``: the probability of each sample's label, ``(N,)``."""
    return probs.gather(1, labels.to(probs.device, torch.long)[:, None]).squeeze(1)


def _classwise_acc_sums(p_y: Tensor, labels: Tensor, num_classes: int, n_bins: int) -> Tensor:
    """``(K, n_bins)`` counts of ``labels == k`` per class and bin of ``probs[:, k]``: only the label entries count."""
    if _cpu.usable(p_y, labels):
        return _cpu.classwise_acc_sums(p_y, labels, num_classes, n_bins)
    labels = labels.to(p_y.device, torch.long)
    index = _bin_index(p_y, n_bins) + labels * n_bins
    dtype = _sum_dtype(p_y.device)
    out = torch.zeros(num_classes * n_bins, dtype=dtype, device=p_y.device)  # index_add_: no host sync on a GPU
    ones = torch.ones(index.shape[0], dtype=dtype, device=p_y.device)
    return out.index_add_(0, index, ones).view(num_classes, n_bins)


def _brier_sum(squares: Tensor, p_y: Tensor, n: int) -> Tensor:
    """Sum over samples of ``sum_k (p_k - onehot_k)^2 = sum_k p_k^2 - 2 p_y + 1``, from ``sum p^2`` and ``p_y``."""
    return squares - 2 * p_y.to(squares.dtype).sum() + n


def _cw_ece_from_sums(n: int | Tensor, conf_sums: Tensor, acc_sums: Tensor) -> Tensor:
    """Classwise ECE from ``(K, n_bins)`` sums: every class bins all ``n`` samples, so ``mean_k sum_b |...| / n``."""
    return _mean((acc_sums - conf_sums).abs().sum(1).mean(), n)


def _ece_from_sums(count: Tensor, conf_sum: Tensor, acc_sum: Tensor) -> Tensor:
    """ECE over the last dim: ``sum_b |acc_sum_b - conf_sum_b| / N`` (NaN when ``N == 0``; empty bins add 0)."""
    return (acc_sum - conf_sum).abs().sum(-1) / count.sum(-1)


def _mce_from_sums(count: Tensor, conf_sum: Tensor, acc_sum: Tensor) -> Tensor:
    """MCE over the last dim: max over non-empty bins of ``|acc_b - conf_b|`` (NaN when every bin is empty)."""
    gap = (acc_sum - conf_sum).abs() / count.clamp_min(1)
    mce = gap.masked_fill(count == 0, 0).amax(-1)
    return mce.masked_fill(count.sum(-1) == 0, float("nan"))


def _mean(total: Tensor, n: int | Tensor) -> Tensor:
    """``total / n``; NaN when ``n == 0`` (an empty set has no mean)."""
    if isinstance(n, Tensor):
        return total / n
    return total / n if n else torch.full_like(total, float("nan"))


def _order_statistics(values: Tensor, ranks: list[int]) -> Tensor:
    """``sorted(values)[ranks]`` (0-based ranks) without sorting everything on the CPU (``numpy.partition``)."""
    if values.device.type == "cpu":
        part = np.partition(values.numpy(), ranks)
        return torch.from_numpy(part[ranks])
    return torch.sort(values).values[torch.tensor(ranks, device=values.device)]


def _ace_from_top(conf: Tensor, correct: Tensor, n_bins: int) -> Tensor:
    """Adaptive (equal-mass) ECE of top-label ``conf``/``correct``; convention documented in :func:`ace`."""
    n = conf.shape[0]
    if n == 0:
        return torch.full((), float("nan"), dtype=_sum_dtype(conf.device), device=conf.device)
    conf = _as_float(conf).contiguous()  # exact for float16/bfloat16, so ties stay ties
    # A sample whose value has L smaller values goes to bin floor(L * n_bins / n). Bin >= j  <=>  L >= ceil(j n / B)
    # =: r_j  <=>  the r_j-th smallest value (0-based rank r_j - 1) is < conf. So B - 1 order statistics are the
    # thresholds and the bin is the number of thresholds strictly below the value: tied values share a bin.
    if _cpu.usable(conf, correct):
        sums = _cpu.ace_sums(conf, correct, n_bins)
        if sums is not None:
            return _ece_from_sums(*sums)
    ranks = [-(-j * n // n_bins) - 1 for j in range(1, n_bins)]
    if ranks and conf.device.type == "cpu":
        thresholds = _order_statistics(conf, ranks).numpy()
        index = torch.from_numpy(np.searchsorted(thresholds, conf.numpy(), side="left"))  # #thresholds < conf
    elif ranks:
        thresholds = _order_statistics(conf, ranks)
        index = torch.bucketize(conf, thresholds, right=False)  # the number of thresholds strictly below conf
    else:
        index = torch.zeros(n, dtype=torch.long, device=conf.device)
    return _ece_from_sums(*_scatter_sums(index, conf, correct, n_bins))


def _nll_sum(p_y: Tensor, eps: float = 1e-12) -> Tensor:
    """Sum over samples of the negative log-likelihood ``-log(max(p_y, eps))``."""
    return -p_y.to(_sum_dtype(p_y.device)).clamp_min(eps).log().sum()


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


# ------------------------------------------------------------------------------------------------------ public API
def ece(probs: Tensor, labels: Tensor, n_bins: int = 15) -> Tensor:
    """Top-label expected calibration error, ``sum_b (n_b / N) |acc_b - conf_b|`` over ``n_bins`` equal-width bins.

    torchmetrics' ``norm="l1"``. ``probs`` ``(N, K)``, ``labels`` ``(N,)``; 0-d tensor, NaN for ``N == 0``.
    """
    _check_probs(probs, labels)
    _check_n_bins(n_bins)
    return _ece_from_sums(*_bin_sums(*_top_label(probs, labels), n_bins))


def mce(probs: Tensor, labels: Tensor, n_bins: int = 15) -> Tensor:
    """Top-label maximum calibration error, ``max_b |acc_b - conf_b|`` over non-empty equal-width bins.

    torchmetrics' ``norm="max"``. ``probs`` ``(N, K)``, ``labels`` ``(N,)``; 0-d tensor, NaN for ``N == 0``.
    """
    _check_probs(probs, labels)
    _check_n_bins(n_bins)
    return _mce_from_sums(*_bin_sums(*_top_label(probs, labels), n_bins))


def calibration_errors(probs: Tensor, labels: Tensor, n_bins: int = 15) -> dict[str, Tensor]:
    """``{"ece": ..., "mce": ...}`` from one binning pass: the values of :func:`ece` and :func:`mce`."""
    _check_probs(probs, labels)
    _check_n_bins(n_bins)
    sums = _bin_sums(*_top_label(probs, labels), n_bins)
    return {"ece": _ece_from_sums(*sums), "mce": _mce_from_sums(*sums)}


def ace(probs: Tensor, labels: Tensor, n_bins: int = 15) -> Tensor:
    """Top-label adaptive ECE (equal-mass bins, "AdaECE" of Mukhoti et al. 2020); NaN for ``N == 0``.

    A sample goes to bin ``floor(L * n_bins / N)``, ``L`` being the number of samples with a strictly smaller top-label
    confidence: bin sizes differ by at most one without ties, tied confidences share a bin, and the result does not
    depend on the sample order. The score is the ECE formula on those bins.
    """
    _check_probs(probs, labels)
    _check_n_bins(n_bins)
    return _ace_from_top(*_top_label(probs, labels), n_bins)


def cw_ece(probs: Tensor, labels: Tensor, n_bins: int = 15) -> Tensor:
    """Classwise (marginal) ECE: the ECE of ``probs[:, k]`` against ``labels == k``, averaged over classes ``k``.

    Same binning as :func:`ece`. ``probs`` ``(N, K)``, ``labels`` ``(N,)``; 0-d tensor, NaN for ``N == 0``.
    """
    _check_probs(probs, labels)
    _check_n_bins(n_bins)
    conf_sums = _matrix_sums(probs, n_bins, squares=False, entropy=False)["cw_conf"]
    acc_sums = _classwise_acc_sums(_label_probs(probs, labels), labels, probs.shape[1], n_bins)
    return _cw_ece_from_sums(probs.shape[0], conf_sums, acc_sums)


def brier(probs: Tensor, labels: Tensor) -> Tensor:
    """Multiclass Brier score: the mean of ``sum_k (p_k - onehot_k)^2`` (in [0, 2]); NaN for ``N == 0``."""
    _check_probs(probs, labels)
    squares = _matrix_sums(probs, 1, classwise=False, entropy=False)["squares"]
    return _mean(_brier_sum(squares, _label_probs(probs, labels), probs.shape[0]), probs.shape[0])


def nll(probs: Tensor, labels: Tensor, eps: float = 1e-12) -> Tensor:
    """Mean negative log-likelihood ``-log max(p_y, eps)``; NaN for ``N == 0``."""
    _check_probs(probs, labels)
    return _mean(_nll_sum(_label_probs(probs, labels), eps), probs.shape[0])


def entropy(probs: Tensor) -> Tensor:
    """Mean predictive entropy ``-sum_k p_k log p_k`` in nats (``0 log 0 = 0``); NaN for ``N == 0``."""
    if probs.ndim != 2:
        raise ValueError(f"probs must be (N, K), got shape {tuple(probs.shape)}")
    return _mean(_matrix_sums(probs, 1, classwise=False, squares=False)["entropy"], probs.shape[0])


def accuracy(probs: Tensor, labels: Tensor) -> Tensor:
    """Top-1 accuracy; NaN for ``N == 0``."""
    _check_probs(probs, labels)
    _, correct = _top_label(probs, labels)
    return _mean(correct.to(_sum_dtype(probs.device)).sum(), probs.shape[0])


def confidence(probs: Tensor) -> Tensor:
    """Mean top-1 probability; NaN for ``N == 0``."""
    if probs.ndim != 2:
        raise ValueError(f"probs must be (N, K), got shape {tuple(probs.shape)}")
    return _mean(probs.max(dim=1).values.to(_sum_dtype(probs.device)).sum(), probs.shape[0])


def overconfidence(probs: Tensor, labels: Tensor) -> Tensor:
    """Mean confidence minus accuracy (positive: overconfident); NaN for ``N == 0``."""
    return confidence(probs) - accuracy(probs, labels)


def binary_ece(conf: Tensor, correct: Tensor, n_bins: int = 15) -> Tensor:
    """ECE of ``(N,)`` confidences in [0, 1] against ``(N,)`` bool correctness (detection: TP at IoU 0.5).

    Equals torchmetrics' ``binary_calibration_error(conf, correct, n_bins, norm="l1")``; NaN for ``N == 0``.
    """
    _check_binary(conf, correct)
    _check_n_bins(n_bins)
    return _ece_from_sums(*_bin_sums(conf, correct, n_bins))


def binary_mce(conf: Tensor, correct: Tensor, n_bins: int = 15) -> Tensor:
    """MCE of ``(N,)`` confidences against ``(N,)`` bool correctness, over non-empty bins; NaN for ``N == 0``."""
    _check_binary(conf, correct)
    _check_n_bins(n_bins)
    return _mce_from_sums(*_bin_sums(conf, correct, n_bins))


def reliability_bins(conf: Tensor, correct: Tensor, n_bins: int = 15) -> dict[str, Any]:
    """Per-bin reliability data (a diagram's input), with the binning of :func:`ece`.

    Args:
        conf: ``(N,)`` confidences, with ``correct`` ``(N,)`` bool; or ``(N, K)`` probabilities, with ``correct``
            ``(N,)`` integer labels (reduced to the top label).
        correct: See ``conf``.
        n_bins: Number of equal-width bins over [0, 1].

    Returns:
        CPU values: ``edges`` ``(n_bins + 1,)`` float64, ``count`` ``(n_bins,)`` int64, per-bin mean ``confidence``
        and ``accuracy`` ``(n_bins,)`` float64 (NaN for empty bins), ``ece`` and ``mce`` floats, ``n`` int.
    """
    _check_n_bins(n_bins)
    if conf.ndim == 2:
        _check_probs(conf, correct)
        conf, correct = _top_label(conf, correct)
    _check_binary(conf, correct)
    return _bins_to_dict(*_bin_sums(conf, correct, n_bins))
