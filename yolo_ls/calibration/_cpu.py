"""NumPy kernels for float32/float64 CPU tensors: the rules of :mod:`yolo_ls.calibration.metrics`, faster there.

Every other case (GPU, MPS, float16, bfloat16) takes the torch path. Both bin in the input's dtype and sum in float64,
so results do not depend on the CPU, the batching or the sample order (``bench/README.md`` says why the kernels look as
they do). The rules:

* binning, :func:`yolo_ls.calibration.metrics._bin_index`: ``r = round(x * n_bins)`` in ``x``'s dtype, then
  ``r - (x < r / n_bins)``, clamped to ``[0, n_bins - 1]``;
* top label, :func:`yolo_ls.calibration.metrics._top_label`: the first index of the largest probability;
* adaptive ECE, :func:`yolo_ls.calibration.metrics._ace_from_top`: the bin of a value is the number of the
  ``n_bins - 1`` rank thresholds strictly below it.
"""

from __future__ import annotations

import functools
import threading

import numpy as np
import torch
from torch import Tensor

# The (N, K) passes run over row chunks of about this many entries, so each chunk's temporaries stay in the cache.
CHUNK_ENTRIES = 1 << 17
# Scratch arrays up to this many entries are kept between calls (see _scratch); larger ones are allocated each time.
_SCRATCH_MAX = 1 << 20
# Batches of up to this many classes are processed transposed (a reduction over a short row is slow).
TRANSPOSE_MAX_K = 32
_FLOATS = (torch.float32, torch.float64)


def usable(*tensors: Tensor) -> bool:
    """Whether the NumPy kernels apply: every tensor on the CPU, the first one float32/float64, none needing grad."""
    return all(t.device.type == "cpu" and not t.requires_grad for t in tensors) and tensors[0].dtype in _FLOATS


def _np(t: Tensor) -> np.ndarray:
    return t.detach().numpy()


class _Scratch(threading.local):
    """Per-thread scratch arrays, reused across calls."""

    def __init__(self) -> None:
        self.arrays: dict[tuple[str, np.dtype], np.ndarray] = {}


_scratch_pool = _Scratch()


def _scratch(name: str, n: int, dtype: np.dtype | type) -> np.ndarray:
    """A scratch array of ``n`` entries (contents undefined); the same memory on the next call with this name."""
    key = (name, np.dtype(dtype))
    a = _scratch_pool.arrays.get(key)
    if a is None or a.shape[0] < n:
        a = np.empty(max(n, 1024), dtype=dtype)
        if n <= _SCRATCH_MAX:
            _scratch_pool.arrays[key] = a
    return a[:n]


def _scalar(x: float) -> Tensor:
    """A 0-d float64 tensor."""
    return torch.from_numpy(np.array(x, dtype=np.float64))


def _f64(x: np.ndarray, name: str) -> np.ndarray:
    """``x`` as float64 in a scratch array (``bincount``'s weights)."""
    if x.dtype == np.float64:
        return x
    out = _scratch(name, x.size, np.float64)
    np.copyto(out, x)
    return out


def bin_index(x: np.ndarray, n_bins: int, out: np.ndarray | None = None) -> np.ndarray:
    """The binning rule on a float32/float64 array: whole-number bin indices in ``x``'s dtype (any shape).

    Args:
        x: Values.
        n_bins: Number of equal-width bins.
        out: Optional array of ``x``'s shape and dtype for the result (else a scratch array is used for the
            temporaries and a new one returned).
    """
    nb = x.dtype.type(n_bins)
    r = np.multiply(x, nb, out=out)
    np.rint(r, out=r)
    edge = np.divide(r, nb, out=_scratch("bin_edge", r.size, r.dtype).reshape(r.shape))  # e_r rounded to x's dtype
    below = np.less(x, edge, out=_scratch("bin_below", r.size, np.bool_).reshape(r.shape))
    np.subtract(r, below, out=r)
    return np.clip(r, 0, n_bins - 1, out=r)


def _bin_key(x: np.ndarray, n_bins: int, offset: np.ndarray | None, name: str) -> np.ndarray:
    """``bin_index(x) + offset`` as an ``intp`` scratch array (for ``bincount``).

    float32 values take a shorter exact route when :func:`_float32_scale` finds one: ``trunc(x * s)`` in float64.
    """
    key = _scratch(name, x.size, np.intp)
    scale = _float32_scale(n_bins) if x.dtype == np.float32 else None
    if scale is not None:
        f = np.multiply(x, scale, out=_scratch(name + "_d", x.size, np.float64), dtype=np.float64)
        np.clip(f, 0, n_bins - 1, out=f)
        np.copyto(key, f, casting="unsafe")  # truncation: the bin
    else:
        np.copyto(key, bin_index(x, n_bins, out=_scratch(name + "_f", x.size, x.dtype)), casting="unsafe")
    if offset is not None:
        np.add(key, offset, out=key)
    return key


@functools.lru_cache(maxsize=32)
def _float32_scale(n_bins: int) -> float | None:
    """A float64 multiplier ``s`` with ``trunc(fl64(x * s)) == bin_index(x)`` for every float32 ``x`` in [0, 1).

    A float32 times ``n_bins`` is exact in float64, so ``trunc(x * n_bins)`` is the bin of the exact edges
    ``b / n_bins``. The rule uses the edges rounded to float32, ``d_b``; the two differ only at ``x == d_b`` when
    ``d_b`` was rounded down (no float32 lies strictly between ``d_b`` and ``b / n_bins``). Scaling ``n_bins`` up
    just enough to lift every such ``d_b`` to ``b`` fixes that. ``fl64(x * s)`` is non-decreasing in ``x``, so
    checking both sides of every edge (``d_b`` and the float32 just below it) proves the rule for all values; ``None``
    when no candidate passes (callers then use :func:`bin_index`). Values ``>= 1`` are clipped to the last bin.
    """
    edges = (np.arange(n_bins + 1, dtype=np.float64) / n_bins).astype(np.float32)
    below = np.nextafter(edges, np.float32(0))
    inner = np.arange(1, n_bins + 1)  # edge n_bins is 1.0: the float32 below it must stay in the last bin
    candidates = [float(n_bins)]
    down = inner[edges[inner].astype(np.float64) * n_bins < inner]
    if down.size:
        candidates.append(float(np.nextafter(np.max(down / edges[down].astype(np.float64)), np.inf)))
    for s in candidates:
        hi = np.trunc(np.multiply(edges[inner], s, dtype=np.float64))
        lo = np.trunc(np.multiply(below[inner], s, dtype=np.float64))
        if np.all(hi[:-1] == inner[:-1]) and np.all(lo == inner - 1):
            return s
    return None


def top_label(probs: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(conf, correct, p_y)`` of ``(N, K)`` probabilities: top-1 probability, ``argmax == label`` and ``p[label]``.

    When every row holds its maximum exactly once, ``argmax == label`` is ``p[label] == max``; a batch with a tie at
    some row's maximum (or a NaN) takes ``argmax``, whose first-index rule torch's ``max`` shares.
    """
    if probs.shape[1] <= TRANSPOSE_MAX_K:
        return batch_sums(probs, labels, 1, classwise=False, squares=False, entropy=False)[0]
    a, y = _np(probs), _np(labels).astype(np.intp, copy=False)
    rows = np.arange(a.shape[0])
    p_y = a[rows, y]
    m = _np(probs.amax(1)) if a.shape[0] and a.shape[1] else a.max(1, initial=-np.inf)
    if not _has_tie(a, m):
        return torch.from_numpy(m), torch.from_numpy(p_y == m), torch.from_numpy(p_y)
    return _argmax_top(a, y, p_y)


def _argmax_top(a: np.ndarray, y: np.ndarray, p_y: np.ndarray) -> tuple[Tensor, Tensor, Tensor]:
    """The tie-safe top label: first index of the maximum (``argmax``), as torch's ``max`` returns it."""
    pred = a.argmax(1)
    return torch.from_numpy(a[np.arange(a.shape[0]), pred]), torch.from_numpy(pred == y), torch.from_numpy(p_y)


def _has_tie(a: np.ndarray, m: np.ndarray) -> bool:
    """Whether some row of ``a`` holds its maximum ``m`` more than once, or not at all (a NaN)."""
    n, k = a.shape
    step = max(1, CHUNK_ENTRIES // max(k, 1))
    for i in range(0, n, step):
        x, mx = a[i : i + step], m[i : i + step, None]
        eq = np.equal(x, mx, out=_scratch("tie_eq", x.size, np.bool_).reshape(x.shape))
        if np.count_nonzero(eq) != x.shape[0]:
            return True
    return False


def bin_sums(conf: Tensor, correct: Tensor, n_bins: int) -> tuple[Tensor, Tensor, Tensor]:
    """``(count, conf_sum, acc_sum)`` per bin, float64, from one ``bincount`` per sum over (correct, bin)."""
    c, ok = _np(conf), _np(correct)
    count, conf_sum = _correct_bin_counts(c, ok, n_bins)
    return torch.from_numpy(count.sum(0)), torch.from_numpy(conf_sum.sum(0)), torch.from_numpy(count[1].copy())


def _correct_bin_counts(c: np.ndarray, ok: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """``(2, n_bins)`` counts and confidence sums per (correct, bin)."""
    key = _bin_key(c, n_bins, None, "top_key")
    np.add(key, np.multiply(ok, n_bins, out=_scratch("flag", ok.size, np.intp), casting="unsafe"), out=key)
    count = np.bincount(key, minlength=2 * n_bins).astype(np.float64).reshape(2, n_bins)
    conf_sum = np.bincount(key, weights=_f64(c, "w_top"), minlength=2 * n_bins).reshape(2, n_bins)
    return count, conf_sum


def classwise_acc_sums(p_y: Tensor, labels: Tensor, num_classes: int, n_bins: int) -> Tensor:
    """``(K, n_bins)`` counts of each label per class and bin of its own probability (float64)."""
    return torch.from_numpy(_label_bin_counts(_np(p_y), _np(labels), num_classes, n_bins))


def _label_bin_counts(p_y: np.ndarray, labels: np.ndarray, num_classes: int, n_bins: int) -> np.ndarray:
    offset = _scratch("label_off", labels.size, np.intp)
    np.multiply(labels, n_bins, out=offset, casting="unsafe")
    key = _bin_key(p_y, n_bins, offset, "label_key")
    return np.bincount(key, minlength=num_classes * n_bins).astype(np.float64).reshape(num_classes, n_bins)


def fold_sums(
    conf: Tensor, correct: Tensor, p_y: Tensor, labels: Tensor, num_classes: int, n_bins: int, eps: float
) -> dict[str, Tensor]:
    """The per-sample sums of the accumulator for many batches at once (float64 0-d or binned tensors).

    Keys: ``bin_count, bin_conf, bin_acc`` (top-label bins), ``cw_acc`` (classwise label counts), ``p_y`` (the sum of
    ``p_y``, Brier's per-sample term), ``nll`` (``-sum log max(p_y, eps)``), ``correct`` and ``confidence`` (taken
    from the binned sums: no extra pass).
    """
    c, ok, py, y = _np(conf), _np(correct), _np(p_y), _np(labels)
    count, conf_sum = _correct_bin_counts(c, ok, n_bins)
    logs = _scratch("nll", py.size, np.float64)
    np.copyto(logs, py)
    np.maximum(logs, eps, out=logs)
    np.log(logs, out=logs)
    t = torch.from_numpy
    return {
        "bin_count": t(count.sum(0)),
        "bin_conf": t(conf_sum.sum(0)),
        "bin_acc": t(count[1].copy()),
        "cw_acc": t(_label_bin_counts(py, y, num_classes, n_bins)),
        "p_y": _scalar(float(np.sum(py, dtype=np.float64))),
        "nll": _scalar(-float(np.sum(logs))),
        "correct": _scalar(float(count[1].sum())),
        "confidence": _scalar(float(conf_sum.sum())),
    }


def matrix_sums(probs: Tensor, n_bins: int, classwise: bool, squares: bool, entropy: bool) -> dict[str, Tensor]:
    """The (N, K) sums of :func:`yolo_ls.calibration.metrics._matrix_sums`, over row chunks, in float64.

    Classwise sums bin only the entries at or above the first inner edge; bin 0 of each class is its column sum minus
    its other bins.
    """
    if probs.shape[1] <= TRANSPOSE_MAX_K:
        return batch_sums(probs, None, n_bins, classwise, squares, entropy)[1]
    a = _np(probs)
    n, k = a.shape
    dt = a.dtype.type
    cw = np.zeros(k * n_bins, dtype=np.float64)
    col = np.zeros(k, dtype=np.float64)
    sq = ent = 0.0
    first_edge = dt(1) / dt(n_bins)
    rows = max(1, CHUNK_ENTRIES // max(k, 1))
    if classwise:
        offset = _chunk_offsets(k, n_bins, min(rows, n))
    for i in range(0, n, rows):
        x = a[i : i + rows]
        flat = x.reshape(-1)
        flat64 = _as_f64(flat, "chunk64")
        if classwise:
            col += np.add.reduce(flat64.reshape(x.shape), axis=0)
            where, v = _at_or_above(flat, first_edge)
            key = _bin_key(v, n_bins, offset[where], "cw_key")
            cw += np.bincount(key, weights=_f64(v, "w_cw"), minlength=k * n_bins)
        sq, ent = _add_dense_sums(flat64, squares, entropy, sq, ent)
    return _matrix_out(cw.reshape(k, n_bins) if classwise else None, col, sq if squares else None,
                       ent if entropy else None)


def batch_sums(
    probs: Tensor, labels: Tensor | None, n_bins: int, classwise: bool = True, squares: bool = True,
    entropy: bool = True,
) -> tuple[tuple[Tensor, Tensor, Tensor] | None, dict[str, Tensor]]:
    """The top label (with ``labels``) and the (N, K) sums of :func:`matrix_sums` in one pass, for K <= 32.

    Each row chunk is copied transposed, ``(K, rows)``, so every reduction runs over contiguous class rows and the
    binned entries come out grouped by class. Rules as in :func:`top_label` and :func:`matrix_sums`.

    Returns:
        ``((conf, correct, p_y) or None, sums)``.
    """
    a = _np(probs)
    n, k = a.shape
    y = None if labels is None else _np(labels).astype(np.intp, copy=False)
    dt = a.dtype.type
    col = np.zeros(k, dtype=np.float64)
    sq = ent = 0.0
    first_edge = dt(1) / dt(n_bins)
    step = max(1, CHUNK_ENTRIES // max(k, 1))
    conf, p_y, tie = np.empty(n, a.dtype), np.empty(n, a.dtype), False
    cw4 = np.zeros(4 * k * n_bins, dtype=np.float64)
    class_offset = np.arange(k, dtype=np.intp) * n_bins
    for i in range(0, n, step):
        x = a[i : i + step]
        r = x.shape[0]
        xt = _scratch("t_chunk", r * k, a.dtype).reshape(k, r)
        np.copyto(xt, x.T)
        flat = xt.reshape(-1)
        if y is not None and k:
            m = np.max(xt, axis=0, out=conf[i : i + r])
            eq = np.equal(xt, m, out=_scratch("tie_eq", r * k, np.bool_).reshape(k, r))
            tie = tie or np.count_nonzero(eq) != r
            at = np.multiply(y[i : i + r], r, out=_scratch("py_at", r, np.intp))
            np.add(at, _arange(r), out=at)  # the label's entry of each row in the transposed chunk
            np.take(flat, at, out=p_y[i : i + r])
        if not (classwise or squares or entropy):
            continue
        flat64 = _as_f64(flat, "chunk64")
        if classwise:
            col += flat64.reshape(k, r).sum(1)
            where, v = _at_or_above(flat, first_edge)
            counts = np.diff(np.searchsorted(where, _arange(k + 1) * r))  # entries per class row
            offset = np.repeat(class_offset, counts)  # class-grouped: runs of equal keys, which bincount adds
            np.add(offset, _lanes(k * n_bins, CHUNK_ENTRIES)[: v.size], out=offset)  # spread over 4 histogram copies
            key = _bin_key(v, n_bins, offset, "cw_key")
            cw4 += np.bincount(key, weights=_f64(v, "w_cw"), minlength=4 * k * n_bins)
        sq, ent = _add_dense_sums(flat64, squares, entropy, sq, ent)
    top = None
    if y is not None:
        if n == 0 or k == 0:
            conf = a.max(1, initial=-np.inf)
        if tie or (n and not k):
            top = _argmax_top(a, y, p_y)
        else:
            top = (torch.from_numpy(conf), torch.from_numpy(p_y == conf), torch.from_numpy(p_y))
    cw = cw4.reshape(4, k, n_bins).sum(0) if classwise else None
    return top, _matrix_out(cw, col, sq if squares else None, ent if entropy else None)


def _at_or_above(flat: np.ndarray, edge: np.floating) -> tuple[np.ndarray, np.ndarray]:
    """Positions and values of the entries ``>= edge`` (the classwise entries that need binning)."""
    where = np.flatnonzero(np.greater_equal(flat, edge, out=_scratch("cw_mask", flat.size, np.bool_)))
    return where, flat[where]


def _as_f64(x: np.ndarray, name: str) -> np.ndarray:
    """``x`` as float64, in a scratch array of its shape (``x`` itself when it is float64 already)."""
    if x.dtype == np.float64:
        return x
    out = _scratch(name, x.size, np.float64).reshape(x.shape)
    np.copyto(out, x)
    return out


def _add_dense_sums(flat64: np.ndarray, squares: bool, entropy: bool, sq: float, ent: float) -> tuple[float, float]:
    """``sq + sum p^2`` and ``ent - sum p log p`` over a float64 chunk (each only when asked for).

    ``0 log 0 = 0``: the log is taken of ``max(p, tiny)``, float64's smallest normal number. NumPy's own loops only
    (``einsum``, ``log``): no BLAS or OpenMP thread pool, whose threads stall on a busy machine.
    """
    if squares:
        sq += float(np.einsum("i,i->", flat64, flat64))
    if entropy:
        tiny = np.finfo(np.float64).tiny
        logs = _scratch("ent_log", flat64.size, np.float64)
        np.log(np.maximum(flat64, tiny, out=logs) if flat64.min() < tiny else flat64, out=logs)
        ent -= float(np.einsum("i,i->", flat64, logs))
    return sq, ent


def _matrix_out(cw: np.ndarray | None, col: np.ndarray, sq: float | None, ent: float | None) -> dict[str, Tensor]:
    """The ``cw_conf``/``squares``/``entropy`` dict of the requested sums; bin 0 of each class is its column sum minus
    its binned entries (``cw`` holds the bins of the entries at or above the first edge)."""
    out: dict[str, Tensor] = {}
    if cw is not None:
        cw[:, 0] = col - cw[:, 1:].sum(1)
        out["cw_conf"] = torch.from_numpy(cw)
    if sq is not None:
        out["squares"] = _scalar(sq)
    if ent is not None:
        out["entropy"] = _scalar(ent)
    return out


@functools.lru_cache(maxsize=8)
def _lanes(size: int, n: int) -> np.ndarray:
    """``(i % 4) * size`` for ``i < n``: which of four ``size``-slot histogram copies each key goes to."""
    out = (np.arange(n, dtype=np.intp) % 4) * size
    out.flags.writeable = False
    return out


@functools.lru_cache(maxsize=8)
def _arange(n: int) -> np.ndarray:
    """``arange(n)`` as ``intp``, cached and read-only."""
    out = np.arange(n, dtype=np.intp)
    out.flags.writeable = False
    return out


@functools.lru_cache(maxsize=8)
def _chunk_offsets(k: int, n_bins: int, rows: int) -> np.ndarray:
    """``class * n_bins`` for every entry of a ``(rows, k)`` chunk, flat (cached: the same for every batch)."""
    out = np.tile(np.arange(k, dtype=np.intp) * n_bins, rows)
    out.flags.writeable = False
    return out


def _bucket_shift(dtype: np.dtype) -> tuple[type, int]:
    """Integer view and shift giving about 2**15 value-ordered buckets over [0, 1]: 8 mantissa bits kept."""
    return (np.int32, 15) if dtype == np.float32 else (np.int64, 44)


def ace_sums(conf: Tensor, correct: Tensor, n_bins: int) -> tuple[Tensor, Tensor, Tensor] | None:
    """``(count, conf_sum, acc_sum)`` per adaptive-ECE bin (float64), or ``None`` to fall back (negative values).

    A value's bin is the number of the ``n_bins - 1`` rank thresholds strictly below it. The thresholds are found
    from a value-ordered histogram of the floats' top bits: only the buckets holding a threshold are sorted; every
    other bucket goes whole to one bin.
    """
    c, ok = _np(conf), _np(correct).astype(np.bool_, copy=False)
    n = c.shape[0]
    itype, shift = _bucket_shift(c.dtype)
    bits = c.view(itype)
    if n == 0 or bits.min() < 0:  # a NaN has a positive bit pattern: it falls in a top bucket and its sum makes ACE NaN
        return None
    key = np.right_shift(bits, shift, out=_scratch("ace_key", n, np.intp), dtype=np.intp)
    np.left_shift(key, 1, out=key)
    np.add(key, ok, out=key, casting="unsafe")  # (bucket, correct)
    pair_count = np.bincount(key)
    pair_conf = np.bincount(key, weights=_f64(c, "w_ace"))
    if pair_count.shape[0] % 2:
        pair_count, pair_conf = np.append(pair_count, 0), np.append(pair_conf, 0.0)
    pairs = pair_count.reshape(-1, 2)
    counts = pairs.sum(1)  # per bucket
    ranks = np.array([-(-j * n // n_bins) - 1 for j in range(1, n_bins)], dtype=np.int64)
    if ranks.size == 0:
        return _as_sums(np.array([n], float), np.array([c.sum(dtype=np.float64)]), np.array([float(ok.sum())]))
    cum = np.cumsum(counts)
    t_bucket = np.searchsorted(cum, ranks, side="right")  # cum[h - 1] <= rank < cum[h]
    buckets = np.unique(t_bucket)
    member = np.zeros(counts.shape[0], dtype=bool)
    member[buckets] = True
    cand = np.flatnonzero(np.repeat(member, 2)[key])  # key is (bucket, correct): no shift back
    values = np.sort(c[cand])
    # position of each threshold among the sorted candidates: its rank, minus the values in lower non-candidate buckets
    lower = cum[t_bucket] - counts[t_bucket]  # values in buckets below the threshold's
    cand_below = np.concatenate([[0], np.cumsum(counts[buckets])])[np.searchsorted(buckets, t_bucket, side="left")]
    thresholds = values[ranks - lower + cand_below]
    # whole buckets (not a threshold's): bin = the number of thresholds in lower buckets
    base = np.searchsorted(t_bucket, np.arange(counts.shape[0]), side="left")
    whole = ~member
    bucket_conf = pair_conf.reshape(-1, 2).sum(1)
    index = np.searchsorted(thresholds, c[cand], side="left")  # a threshold's bucket: value by value
    slot, v, b = base[whole], c[cand], n_bins
    count = np.bincount(slot, weights=counts[whole], minlength=b) + np.bincount(index, minlength=b)
    conf_sum = np.bincount(slot, weights=bucket_conf[whole], minlength=b) + np.bincount(index, weights=v, minlength=b)
    hits = np.bincount(index, weights=ok[cand], minlength=b)
    acc_sum = np.bincount(slot, weights=pairs[whole, 1], minlength=b) + hits
    return _as_sums(count, conf_sum, acc_sum)


def _as_sums(count: np.ndarray, conf_sum: np.ndarray, acc_sum: np.ndarray) -> tuple[Tensor, Tensor, Tensor]:
    return tuple(torch.from_numpy(np.asarray(v, dtype=np.float64)) for v in (count, conf_sum, acc_sum))  # type: ignore[return-value]
