"""Pure, device-agnostic calibration metrics for classification and detection.

Every public function takes tensors on any device and returns a 0-d tensor on that device (no ``.item()``, no host
synchronisation), so they can run inside a validation loop. The formulas live once, in private helpers that the
streaming accumulators in :mod:`yolo_ls.calibration.accumulator` reuse (the torchmetrics functional/stateful split).

Conventions:
    * Inputs: ``probs`` is ``(N, K)`` probabilities, ``labels`` is ``(N,)`` integer class indices. Top-label metrics
      use ``conf, pred = probs.max(1)`` and ``correct = pred == labels`` (the same tie-breaking as torchmetrics).
    * Equal-width binning (ECE, MCE, classwise ECE, reliability diagrams, detection ECE): bins are half-open
      ``[e_k, e_{k+1})`` with ``e_k = k / n_bins`` correctly rounded to the confidence's own dtype, so a confidence
      equal to an inner edge goes to the bin on its right (as in torchmetrics) and a value such as ``0.2`` lands in the
      same bin whether it is float16, float32 or float64 (:func:`_bin_index`, the one rule used everywhere). A
      confidence of exactly ``1.0`` belongs to the last bin ``[1 - 1/n_bins, 1]``; torchmetrics instead gives it a
      degenerate extra bin, and its float32 ``linspace`` edges are a little off some ``k / n_bins``, so the results
      agree whenever no confidence is ``1.0`` or sits exactly on an edge, and differ (by design) otherwise.
    * ECE is ``sum_b |acc_sum_b - conf_sum_b| / N`` (= ``sum_b (n_b / N) |acc_b - conf_b|``); empty bins contribute
      nothing. MCE is the largest ``|acc_b - conf_b|`` over non-empty bins.
    * Adaptive ECE (``ace``): see :func:`ace`.
    * ``N == 0``: every metric returns NaN (a 0-d tensor), never a made-up ``0`` and never an error.
    * Sums are accumulated in float64 (float32 on MPS, which has no float64).
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
        ``(conf, correct)``: ``(N,)`` max probability in the dtype of ``probs`` (so it is binned with that dtype's
        edges; sums convert it) and ``(N,)`` bool ``argmax == label``.
    """
    if _cpu.usable(probs, labels):
        return _cpu.top_label(probs, labels)[:2]
    conf, pred = probs.max(dim=1)
    return conf, pred == labels.to(pred.device, torch.long)


def _bin_edges(n_bins: int, dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu") -> Tensor:
    """The ``n_bins + 1`` equal-width bin edges ``k / n_bins``, each correctly rounded to ``dtype``.

    ``arange / n_bins`` in float64 is one correctly rounded division per edge; rounding that once more to float32,
    float16 or bfloat16 is still the correctly rounded value for any ``n_bins < 2**28`` (a double rounding can only
    go wrong when the float64 value sits exactly on a midpoint of the narrower type, and ``k / n_bins`` is never that
    close to one). ``linspace`` in float32 is not: it puts some edges one ulp off, which moved confidences that are
    exactly ``0.2, 0.4, ...`` into the lower bin.
    """
    edges = torch.arange(n_bins + 1, dtype=torch.float64, device=device) / n_bins
    return edges.to(dtype)


def _bin_index(conf: Tensor, n_bins: int) -> Tensor:
    """Equal-width bin index of each confidence (any shape), clamped to ``[0, n_bins - 1]``: the one binning rule.

    Rule: ``conf`` is in bin ``k`` when ``e_k <= conf < e_{k+1}``, where ``e_k`` is ``k / n_bins`` correctly rounded to
    the dtype of ``conf`` (:func:`_bin_edges`). So a confidence equal to an inner edge goes to the bin on its right (the
    torchmetrics convention), ``1.0`` goes to the last bin, and a value such as ``0.2`` or ``0.7`` written in float16,
    float32 or float64 lands in the same bin in all three.

    It is computed without a search: ``r = round(conf * n_bins)`` is within one half of the true ``conf * n_bins``,
    so the only edge that can matter is ``e_r``, and the bin is ``r - (conf < e_r)``. ``e_r = r / n_bins`` is one
    correctly rounded division in float32/float64 (and rounded to the input's own precision for float16/bfloat16,
    which are binned in float32), so the comparison is exact.
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
    """Scatter-add count, confidence and correctness into ``size`` slots (``index_add_`` on device, no host sync).

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
    """Per-bin sums of 1-D confidences with the binning of :func:`_bin_index` (the one binning of this package).

    Args:
        conf: ``(N,)`` confidences.
        correct: ``(N,)`` bool or {0, 1}.
        n_bins: Number of equal-width bins.
        group: Optional ``(N,)`` long group id (e.g. predicted class).
        n_groups: Number of groups when ``group`` is given.
        weight: Optional ``(N,)`` {0, 1} mask.

    Returns:
        ``(count, conf_sum, acc_sum)``: each ``(n_bins,)`` without ``group``, else ``(n_groups, n_bins)``.
    """
    if group is None and weight is None and _cpu.usable(conf, correct):
        return _cpu.bin_sums(conf, correct, n_bins)
    index = _bin_index(conf, n_bins)
    if group is None:
        return _scatter_sums(index, conf, correct, n_bins, weight)
    index = index + group.to(index.device, torch.long) * n_bins
    sums = _scatter_sums(index, conf, correct, n_groups * n_bins, weight)
    return tuple(s.view(n_groups, n_bins) for s in sums)  # type: ignore[return-value]


# The (N, K) passes (classwise bins, sum p^2, sum p log p) run over row chunks of this many entries: cache-sized on the
# CPU; on other devices large enough for few kernels, small enough that the chunk's float64 copy stays small.
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
    """The sums over every entry of ``probs`` that the metrics need, in one pass over the matrix.

    Args:
        probs: ``(N, K)`` probabilities, any float dtype (binned in their own dtype; every sum is taken in the
            accumulation dtype, float64, one row chunk at a time: no float64 copy of the whole matrix).
        n_bins: Number of equal-width bins (for ``classwise``).
        classwise: ``"cw_conf"``: ``(K, n_bins)`` sums of ``probs[:, k]`` per class and bin (:func:`_bin_index`),
            from one scatter-add over the fused (class, bin) index. On the CPU, when ``K >= 4 * n_bins``, only the
            entries at or above the first inner edge are binned (a row holds at most ``n_bins`` of them, as it sums to
            1) and bin 0 is the column sum minus the other bins. Other devices take the dense path: no data-dependent
            shapes, no host synchronisation.
        squares: ``"squares"``: ``sum p^2`` (for the Brier score).
        entropy: ``"entropy"``: ``-sum p log p`` with ``0 log 0 = 0``, computed as ``p * log(max(p, tiny))`` in the
            accumulation dtype (``tiny`` its smallest normal number: exact for ``p = 0``).

    Returns:
        Dict with the requested keys, in the accumulation dtype.
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
        0-d tensor, ``sum_b (n_b / N) |acc_b - conf_b|``; NaN for ``N == 0``.
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
        0-d tensor, ``max_b |acc_b - conf_b|`` over non-empty bins; NaN for ``N == 0``.
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

    Convention: the top-label confidences are ranked ascending; a sample goes to bin ``floor(L * n_bins / N)``, where
    ``L`` is the number of samples with a strictly smaller confidence. Without ties ``L`` is the sample's 0-based rank,
    so bin sizes differ by at most one (when ``N < n_bins`` some bins are empty and contribute nothing); tied
    confidences share one ``L`` and so always share a bin, as value-based bins do in Mukhoti et al.'s AdaECE, and the
    result does not depend on the order of the samples. The score is then the ECE formula on those bins,
    ``sum_b (n_b / N) |acc_b - conf_b|``.

    Args:
        probs: ``(N, K)`` probabilities.
        labels: ``(N,)`` integer labels.
        n_bins: Number of equal-mass bins.

    Returns:
        0-d tensor; NaN for ``N == 0``.
    """
    _check_probs(probs, labels)
    _check_n_bins(n_bins)
    return _ace_from_top(*_top_label(probs, labels), n_bins)


def cw_ece(probs: Tensor, labels: Tensor, n_bins: int = 15) -> Tensor:
    """Classwise (marginal) ECE: for each class ``k`` bin ``probs[:, k]`` against ``labels == k``; mean over classes.

    Args:
        probs: ``(N, K)`` probabilities.
        labels: ``(N,)`` integer labels.
        n_bins: Number of equal-width bins over [0, 1] (same binning as :func:`ece`).

    Returns:
        0-d tensor, ``mean_k ECE_k``; NaN for ``N == 0``.
    """
    _check_probs(probs, labels)
    _check_n_bins(n_bins)
    conf_sums = _matrix_sums(probs, n_bins, squares=False, entropy=False)["cw_conf"]
    acc_sums = _classwise_acc_sums(_label_probs(probs, labels), labels, probs.shape[1], n_bins)
    return _cw_ece_from_sums(probs.shape[0], conf_sums, acc_sums)


def brier(probs: Tensor, labels: Tensor) -> Tensor:
    """Multiclass Brier score: mean over samples of ``sum_k (p_k - onehot_k)^2`` (range [0, 2]).

    Args:
        probs: ``(N, K)`` probabilities.
        labels: ``(N,)`` integer labels.

    Returns:
        0-d tensor; NaN for ``N == 0``.
    """
    _check_probs(probs, labels)
    squares = _matrix_sums(probs, 1, classwise=False, entropy=False)["squares"]
    return _mean(_brier_sum(squares, _label_probs(probs, labels), probs.shape[0]), probs.shape[0])


def nll(probs: Tensor, labels: Tensor, eps: float = 1e-12) -> Tensor:
    """Mean negative log-likelihood ``-log p_y`` with ``p_y`` clamped to ``eps``.

    Args:
        probs: ``(N, K)`` probabilities.
        labels: ``(N,)`` integer labels.
        eps: Lower clamp for ``p_y``.

    Returns:
        0-d tensor; NaN for ``N == 0``.
    """
    _check_probs(probs, labels)
    return _mean(_nll_sum(_label_probs(probs, labels), eps), probs.shape[0])


def entropy(probs: Tensor) -> Tensor:
    """Mean predictive entropy ``-sum_k p_k log p_k`` (natural log, nats).

    Args:
        probs: ``(N, K)`` probabilities.

    Returns:
        0-d tensor; NaN for ``N == 0``.
    """
    if probs.ndim != 2:
        raise ValueError(f"probs must be (N, K), got shape {tuple(probs.shape)}")
    return _mean(_matrix_sums(probs, 1, classwise=False, squares=False)["entropy"], probs.shape[0])


def accuracy(probs: Tensor, labels: Tensor) -> Tensor:
    """Top-1 accuracy.

    Args:
        probs: ``(N, K)`` probabilities.
        labels: ``(N,)`` integer labels.

    Returns:
        0-d tensor; NaN for ``N == 0``.
    """
    _check_probs(probs, labels)
    _, correct = _top_label(probs, labels)
    return _mean(correct.to(_sum_dtype(probs.device)).sum(), probs.shape[0])


def confidence(probs: Tensor) -> Tensor:
    """Mean top-1 probability.

    Args:
        probs: ``(N, K)`` probabilities.

    Returns:
        0-d tensor; NaN for ``N == 0``.
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
        0-d tensor; NaN for ``N == 0``.
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
        0-d tensor; NaN for ``N == 0``.
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
        0-d tensor; NaN for ``N == 0``.
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
