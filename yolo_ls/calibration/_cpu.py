"""NumPy kernels for the CPU: the same rules as the torch helpers of :mod:`yolo_ls.calibration.metrics`, faster there.

On the CPU, torch runs the calibration passes with one small kernel per operation and per-call overhead that
dominates at val-set sizes (``max(dim=1)`` over 10 classes costs 25 ns a row; ``log`` is several times slower than
NumPy's vectorised one; ``nonzero`` over a mask is 10x NumPy's). These kernels compute exactly the same sums with
NumPy on float32/float64 CPU tensors (shared memory, no copies of the input); every other case (GPU, MPS, float16,
bfloat16) takes the torch path, which never synchronises with the device. ``tests/test_calibration_cpu.py`` checks that
both paths agree, on ties and on values that sit exactly on bin edges included.

The rules (documented on the torch side):

* binning, :func:`yolo_ls.calibration.metrics._bin_index`: ``r = round(x * n_bins)`` in ``x``'s dtype, then
  ``r - (x < r / n_bins)``, clamped to ``[0, n_bins - 1]``;
* top label, :func:`yolo_ls.calibration.metrics._top_label`: the first index of the largest probability (NumPy's
  ``argmax`` and torch's ``max`` both return the first);
* adaptive ECE, :func:`yolo_ls.calibration.metrics._ace_from_top`: the bin of a value is the number of the
  ``n_bins - 1`` rank thresholds strictly below it.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import Tensor

# The (N, K) passes run over row chunks of about this many entries, so each chunk's temporaries stay in the cache.
CHUNK_ENTRIES = 1 << 17
_FLOATS = (torch.float32, torch.float64)


def usable(*tensors: Tensor) -> bool:
    """Whether the NumPy kernels apply: every tensor on the CPU, the first one float32/float64, none needing grad."""
    return all(t.device.type == "cpu" and not t.requires_grad for t in tensors) and tensors[0].dtype in _FLOATS


def _np(t: Tensor) -> np.ndarray:
    return t.detach().numpy()


def bin_index(x: np.ndarray, n_bins: int) -> np.ndarray:
    """The binning rule on a float32/float64 array: whole-number bin indices in ``x``'s dtype (any shape)."""
    nb = x.dtype.type(n_bins)
    r = np.multiply(x, nb)
    np.rint(r, out=r)
    below = x < r / nb  # r / nb is e_r correctly rounded to x's dtype
    r -= below
    return np.clip(r, 0, n_bins - 1, out=r)


def top_label(probs: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(conf, correct, p_y)`` of ``(N, K)`` probabilities: top-1 probability, ``argmax == label`` and ``p[label]``.

    ``argmax`` over a short row is slow on the CPU (NumPy and torch both pay ~20 ns a row at K = 10), while ``amax``
    is not. So the row maxima are taken with ``amax``; when every row holds its maximum exactly once (one count over
    the whole batch says so), ``argmax == label`` is ``p[label] == max`` exactly. A batch with a tie at some row's
    maximum (or a NaN) takes ``argmax``, whose first-index rule torch's ``max`` shares.
    """
    a, y = _np(probs), _np(labels).astype(np.intp, copy=False)
    rows = np.arange(a.shape[0])
    p_y = a[rows, y]
    m = _np(probs.amax(1)) if a.shape[0] and a.shape[1] else a.max(1, initial=-np.inf)
    if np.count_nonzero(a == m[:, None]) == a.shape[0]:
        return torch.from_numpy(m), torch.from_numpy(p_y == m), torch.from_numpy(p_y)
    pred = a.argmax(1)
    return torch.from_numpy(a[rows, pred]), torch.from_numpy(pred == y), torch.from_numpy(p_y)


def bin_sums(conf: Tensor, correct: Tensor, n_bins: int) -> tuple[Tensor, Tensor, Tensor]:
    """``(count, conf_sum, acc_sum)`` per bin, float64, from one ``bincount`` per sum over (correct, bin)."""
    c = _np(conf)
    key = bin_index(c, n_bins).astype(np.intp)
    key += _np(correct).astype(np.intp) * n_bins
    count = np.bincount(key, minlength=2 * n_bins).astype(np.float64).reshape(2, n_bins)
    conf_sum = np.bincount(key, weights=c, minlength=2 * n_bins).reshape(2, n_bins)
    return (torch.from_numpy(count.sum(0)), torch.from_numpy(conf_sum.sum(0)), torch.from_numpy(count[1].copy()))


def classwise_acc_sums(p_y: Tensor, labels: Tensor, num_classes: int, n_bins: int) -> Tensor:
    """``(K, n_bins)`` counts of each label per class and bin of its own probability (float64)."""
    key = bin_index(_np(p_y), n_bins).astype(np.intp)
    key += _np(labels).astype(np.intp) * n_bins
    counts = np.bincount(key, minlength=num_classes * n_bins).astype(np.float64)
    return torch.from_numpy(counts.reshape(num_classes, n_bins))


def matrix_sums(probs: Tensor, n_bins: int, classwise: bool, squares: bool, entropy: bool) -> dict[str, Tensor]:
    """The (N, K) sums of :func:`yolo_ls.calibration.metrics._matrix_sums`, over row chunks, in float64.

    Classwise sums use one ``bincount`` over the fused (class, bin) index per chunk; when ``K >= 4 * n_bins`` only the
    entries at or above the first inner edge are binned (a row holds at most ``n_bins`` of them, as it sums to 1) and
    bin 0 of each class is its column sum minus its other bins.
    """
    a = _np(probs)
    n, k = a.shape
    dt = a.dtype.type
    cw = np.zeros(k * n_bins, dtype=np.float64)
    col = np.zeros(k, dtype=np.float64)
    sq = ent = 0.0
    sparse = n_bins >= 2 and k >= 4 * n_bins
    first_edge = dt(1) / dt(n_bins)
    rows = max(1, CHUNK_ENTRIES // max(k, 1))
    exact = k * n_bins < 2**24 or a.dtype == np.float64  # the fused index is exact in the input's float type
    if classwise and not sparse:  # (class, bin) offsets for a whole chunk: a flat add, no broadcast over short rows
        offset = _chunk_offsets(k, n_bins, min(rows, n), a.dtype if exact else np.dtype(np.intp))
    tiny = np.finfo(a.dtype).tiny
    for i in range(0, n, rows):
        x = a[i : i + rows]
        flat = x.reshape(-1)
        if classwise and sparse:
            col += x.sum(0, dtype=np.float64)
            where = np.flatnonzero(flat >= first_edge)
            v = flat[where]
            key = bin_index(v, n_bins).astype(np.intp) + (where % k) * n_bins
            cw += np.bincount(key, weights=v, minlength=k * n_bins)
        elif classwise:
            b = bin_index(flat, n_bins)
            if exact:
                b += offset[: b.shape[0]]
                key = b.astype(np.intp)
            else:
                key = b.astype(np.intp) + offset[: b.shape[0]]
            cw += np.bincount(key, weights=flat, minlength=k * n_bins)
        if squares:
            sq += float(np.dot(flat, flat))
        if entropy:
            ent -= float(np.dot(flat, np.log(np.maximum(flat, tiny))))
    out: dict[str, Tensor] = {}
    if classwise:
        cw = cw.reshape(k, n_bins)
        if sparse:
            cw[:, 0] = col - cw[:, 1:].sum(1)
        out["cw_conf"] = torch.from_numpy(cw)
    if squares:
        out["squares"] = torch.tensor(sq, dtype=torch.float64)
    if entropy:
        out["entropy"] = torch.tensor(ent, dtype=torch.float64)
    return out


@functools.lru_cache(maxsize=8)
def _chunk_offsets(k: int, n_bins: int, rows: int, dtype: np.dtype) -> np.ndarray:
    """``class * n_bins`` for every entry of a ``(rows, k)`` chunk, flat (cached: the same for every batch)."""
    out = np.tile(np.arange(k, dtype=dtype) * n_bins, rows)
    out.flags.writeable = False
    return out


def _bucket_shift(dtype: np.dtype) -> tuple[type, int]:
    """Integer view and shift giving about 2**15 value-ordered buckets over [0, 1]: 8 mantissa bits kept."""
    return (np.int32, 15) if dtype == np.float32 else (np.int64, 44)


def ace_index(conf: Tensor, n_bins: int) -> Tensor | None:
    """The adaptive-ECE bin of every confidence (``#`` rank thresholds strictly below it), or ``None`` to fall back.

    The ``n_bins - 1`` thresholds are order statistics, found without sorting everything: the bits of a non-negative
    float order like the float, so a ``bincount`` of the top bits is a value-ordered histogram; its cumulative counts
    name the bucket of each threshold, and only those buckets' values are sorted. A value outside them has a bucket
    strictly between thresholds, so its bin is the number of thresholds in lower buckets; a value inside one is compared
    with the thresholds themselves. Falls back (``None``) on negative values.
    """
    c = _np(conf)
    n = c.shape[0]
    itype, shift = _bucket_shift(c.dtype)
    bits = c.view(itype)
    if n == 0 or bits.min() < 0:  # a NaN has a positive bit pattern: it falls in a top bucket and its sum makes ACE NaN
        return None
    hi = (bits >> shift).astype(np.intp)
    counts = np.bincount(hi)
    cum = np.cumsum(counts)
    ranks = np.array([-(-j * n // n_bins) - 1 for j in range(1, n_bins)], dtype=np.int64)
    if ranks.size == 0:
        return torch.zeros(n, dtype=torch.long)
    t_bucket = np.searchsorted(cum, ranks, side="right")  # cum[h - 1] <= rank < cum[h]
    buckets = np.unique(t_bucket)
    member = np.zeros(counts.shape[0], dtype=bool)
    member[buckets] = True
    cand = np.flatnonzero(member[hi])
    values = np.sort(c[cand])
    # position of each threshold among the sorted candidates: its rank, minus the values in lower non-candidate buckets
    lower = cum[t_bucket] - counts[t_bucket]  # values in buckets below the threshold's
    cand_lower = np.searchsorted(buckets, t_bucket, side="left")
    cand_below = np.concatenate([[0], np.cumsum(counts[buckets])])[cand_lower]
    thresholds = values[ranks - lower + cand_below]
    base = np.searchsorted(t_bucket, np.arange(counts.shape[0]), side="left")  # thresholds in lower buckets
    index = base[hi]
    index[cand] = np.searchsorted(thresholds, c[cand], side="left")
    return torch.from_numpy(index.astype(np.int64, copy=False))


def index_sums(index: Tensor, conf: Tensor, correct: Tensor, size: int) -> tuple[Tensor, Tensor, Tensor]:
    """``(count, conf_sum, acc_sum)`` per slot of a given ``index`` (float64): a ``bincount`` over (correct, slot) and
    one weighted by the confidences."""
    key = _np(index).astype(np.intp, copy=False)
    count = np.bincount(key + _np(correct).astype(np.intp) * size, minlength=2 * size).astype(np.float64)
    conf_sum = np.bincount(key, weights=_np(conf), minlength=size)
    count = count.reshape(2, size)
    return torch.from_numpy(count.sum(0)), torch.from_numpy(conf_sum), torch.from_numpy(count[1].copy())
