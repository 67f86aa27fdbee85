"""Streaming (batch-by-batch) calibration accumulators, torchmetrics style.

``update`` adds sums from the binning and per-sample terms of :mod:`yolo_ls.calibration.metrics`, ``compute`` applies
the same reductions with one host transfer, so accumulated results equal the one-shot functions on the concatenated
data. :class:`ClassificationCalibration` keeps O(K * n_bins) sums plus each sample's top-1 confidence and correctness
(for the adaptive ECE), never an N x K matrix. Under DDP, ``sync`` combines the processes' states so that every metric
equals what one process would compute on all the data.
"""

from __future__ import annotations

from typing import Any, Union

import numpy as np
import torch
from torch import Tensor

from yolo_ls.calibration import _cpu, registry
from yolo_ls.calibration.metrics import (
    _ace_from_top,
    _as_float,
    _bin_sums,
    _bins_to_dict,
    _brier_sum,
    _check_n_bins,
    _check_probs,
    _classwise_acc_sums,
    _cw_ece_from_sums,
    _ece_from_sums,
    _label_probs,
    _matrix_sums,
    _mce_from_sums,
    _mean,
    _nll_sum,
    _sum_dtype,
    _top_label,
)

__all__ = ("CLASSIFICATION_METRICS", "DETECTION_METRICS", "ClassificationCalibration", "DetectionCalibration")

#: The metrics of :meth:`ClassificationCalibration.compute`, in order (the ``calib/<name>`` columns of a training).
CLASSIFICATION_METRICS = registry.names("classify")
#: The detection calibration metrics logged per epoch; :meth:`DetectionCalibration.compute` adds ``d_count``.
DETECTION_METRICS = registry.names("detect")

DeviceLike = Union[str, torch.device, None]


class _SumState:
    """Shared plumbing: a dict of summable tensors on one device, lazily adopting the first input's device."""

    _sum_keys: tuple[str, ...] = ()

    def __init__(self, device: DeviceLike) -> None:
        self._fixed_device = device is not None
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.reset()

    def _shapes(self) -> dict[str, tuple[int, ...]]:
        raise NotImplementedError

    def reset(self) -> None:
        """Clear all accumulated state (keeps the device)."""
        dtype = _sum_dtype(self.device)
        self._state: dict[str, Tensor] = {
            k: torch.zeros(shape, dtype=dtype, device=self.device) for k, shape in self._shapes().items()
        }
        self._seen = False
        self._synced = False

    def _adopt(self, x: Tensor) -> None:
        """On the first update without an explicit device, move the (empty) state to the input's device."""
        if not self._fixed_device and not self._seen and x.device != self.device:
            self.device = x.device
            self.reset()
        self._seen = True

    def _add(self, key: str, value: Tensor) -> None:
        self._state[key] += value.to(self._state[key].dtype)

    def _flat_state(self) -> Tensor:
        return torch.cat([v.reshape(-1) for v in self._state.values()])

    def _load_flat_state(self, flat: Tensor) -> None:
        i = 0
        for k, v in self._state.items():
            self._state[k] = flat[i : i + v.numel()].view_as(v).clone()
            i += v.numel()

    def _begin_sync(self) -> bool:
        """Whether a process group is up (else ``sync`` is a no-op); refuses to add the other processes' data twice."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return False
        if getattr(self, "_synced", False):
            raise RuntimeError(f"{type(self).__name__}.sync() was already called; reset() before accumulating again")
        self._synced = True
        return True

    def _merge_sums(self, other: dict[str, Tensor]) -> None:
        for k, v in self._state.items():
            if k not in other:
                raise KeyError(f"state to merge lacks {k!r}")
            if other[k].shape != v.shape:
                raise ValueError(f"cannot merge {k!r}: shape {tuple(other[k].shape)} != {tuple(v.shape)}")
            self._add(k, other[k].to(self.device))
        self._seen = True


class ClassificationCalibration(_SumState):
    """Streaming calibration metrics for classification (top-label, classwise, proper scores).

    Args:
        num_classes: Number of classes ``K``.
        n_bins: Number of bins for ECE/MCE/ACE/classwise ECE.
        device: Device for the state; ``None`` adopts the device of the first ``update``.
        eps: Clamp for ``p_y`` in the NLL.

    Example:
        >>> cal = ClassificationCalibration(num_classes=10)
        >>> for probs, labels in batches:  # doctest: +SKIP
        ...     cal.update(probs, labels)
        >>> cal.compute()["ece"]  # doctest: +SKIP
    """

    KEYS = CLASSIFICATION_METRICS
    #: The per-sample vectors of this many samples are kept before their sums are taken in one go.
    FOLD_SAMPLES = 1 << 16
    #: On the CPU, batches of fewer entries (B * K) are staged and processed together once this many are held.
    STAGE_ENTRIES = 1 << 19

    def __init__(self, num_classes: int, n_bins: int = 15, device: DeviceLike = None, eps: float = 1e-12) -> None:
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
        _check_n_bins(n_bins)
        self.num_classes = num_classes
        self.n_bins = n_bins
        self.eps = eps
        super().__init__(device)

    def _shapes(self) -> dict[str, tuple[int, ...]]:
        k, b = self.num_classes, self.n_bins
        scalars = ("n", "brier", "nll", "entropy", "correct", "confidence")
        return {
            "bin_count": (b,),
            "bin_conf": (b,),
            "bin_acc": (b,),
            "cw_conf": (k, b),
            "cw_acc": (k, b),
            **{s: () for s in scalars},
        }

    def reset(self) -> None:
        """Clear all accumulated state (keeps the device)."""
        super().reset()
        self._pending: list[tuple[Tensor, Tensor, Tensor, Tensor]] = []  # (conf, correct, p_y, labels) per batch
        self._pending_n = 0
        self._top_conf: list[Tensor] = []
        self._top_correct: list[Tensor] = []
        self._stage: tuple[np.ndarray, np.ndarray] | None = None  # (probs, labels) staging arrays (CPU)
        self._stage_n = 0

    @torch.no_grad()
    def update(self, probs: Tensor, labels: Tensor) -> None:
        """Add a batch of ``(B, K)`` probabilities (any device and float dtype) and ``(B,)`` integer labels.

        No host synchronisation on a GPU. Raises ``ValueError`` on a wrong shape or class count.
        """
        _check_probs(probs, labels)
        if probs.shape[1] != self.num_classes:
            raise ValueError(f"expected {self.num_classes} classes, got probs of shape {tuple(probs.shape)}")
        self._adopt(probs)
        probs = probs.detach().to(self.device)
        labels = labels.detach().to(self.device, torch.long)
        if _cpu.usable(probs, labels) and probs.numel() < self.STAGE_ENTRIES:
            self._stage_batch(probs, labels)
        else:
            self._flush_stage()  # keeps the samples in their order
            self._add_batch(probs, labels)

    def _stage_batch(self, probs: Tensor, labels: Tensor) -> None:
        """Copy a small CPU batch into the staging buffers; process them once they hold ``STAGE_ENTRIES``."""
        a, y = probs.numpy(), labels.numpy()
        if self._stage is not None and self._stage[0].dtype != a.dtype:
            self._flush_stage()
            self._stage = None
        n = a.shape[0]
        if self._stage is None or self._stage_n + n > self._stage[0].shape[0]:
            self._flush_stage()
            rows = max(n, -(-self.STAGE_ENTRIES // self.num_classes))
            if self._stage is None or self._stage[0].shape[0] < rows:
                self._stage = (np.empty((rows, self.num_classes), a.dtype), np.empty(rows, np.int64))
        i = self._stage_n
        np.copyto(self._stage[0][i : i + n], a)
        np.copyto(self._stage[1][i : i + n], y)
        self._stage_n += n
        if self._stage_n * self.num_classes >= self.STAGE_ENTRIES:
            self._flush_stage()

    def _flush_stage(self) -> None:
        if self._stage_n:
            n, self._stage_n = self._stage_n, 0
            self._add_batch(torch.from_numpy(self._stage[0][:n]), torch.from_numpy(self._stage[1][:n]))

    def _add_batch(self, probs: Tensor, labels: Tensor) -> None:
        """The work of :meth:`update` on a batch already on the state's device."""
        if _cpu.usable(probs, labels) and probs.shape[1] <= _cpu.TRANSPOSE_MAX_K:  # one pass for the top label too
            (conf, correct, p_y), sums = _cpu.batch_sums(probs, labels, self.n_bins)
        else:
            if _cpu.usable(probs, labels):
                conf, correct, p_y = _cpu.top_label(probs, labels)
            else:
                (conf, correct), p_y = _top_label(probs, labels), _label_probs(probs, labels)
            sums = _matrix_sums(probs, self.n_bins)  # one pass over the (B, K) matrix for all three
        self._add("cw_conf", sums["cw_conf"])
        self._add("brier", sums["squares"])  # the per-sample rest of the Brier score is added by _fold
        self._add("entropy", sums["entropy"])
        self._pending.append((conf, correct, p_y, labels.clone()))  # the caller may reuse its labels tensor
        self._pending_n += probs.shape[0]
        if self._pending_n >= self.FOLD_SAMPLES:
            self._fold()

    def _fold(self) -> None:
        """Add the sums of the per-sample vectors kept since the last fold (once for many batches: few kernels)."""
        self._flush_stage()
        if not self._pending:
            return
        conf, correct, p_y, labels = (torch.cat(v) if len(self._pending) > 1 else v[0] for v in zip(*self._pending))
        self._pending, self._pending_n = [], 0
        zero = torch.zeros((), dtype=torch.float64, device=p_y.device)
        if _cpu.usable(conf, correct, p_y, labels):
            sums = _cpu.fold_sums(conf, correct, p_y, labels, self.num_classes, self.n_bins, self.eps)
            for key in ("bin_count", "bin_conf", "bin_acc", "cw_acc", "nll", "correct", "confidence"):
                self._add(key, sums[key])
            self._add("brier", _brier_sum(zero, sums["p_y"], p_y.shape[0]))
        else:
            for key, v in zip(("bin_count", "bin_conf", "bin_acc"), _bin_sums(conf, correct, self.n_bins)):
                self._add(key, v)
            self._add("cw_acc", _classwise_acc_sums(p_y, labels, self.num_classes, self.n_bins))
            self._add("brier", _brier_sum(zero, p_y, p_y.shape[0]))
            self._add("nll", _nll_sum(p_y, self.eps))
            self._add("correct", correct.sum())
            self._add("confidence", conf.sum(dtype=self._state["confidence"].dtype))
        self._state["n"] += conf.shape[0]
        self._top_conf.append(conf)
        self._top_correct.append(correct)

    def _top(self) -> tuple[Tensor, Tensor]:
        self._fold()
        if not self._top_conf:
            return torch.zeros(0, device=self.device), torch.zeros(0, dtype=torch.bool, device=self.device)
        if len(self._top_conf) > 1:  # concatenate once and keep the result (compute() may be called again)
            self._top_conf = [torch.cat(self._top_conf)]  # cat promotes mixed float dtypes
            self._top_correct = [torch.cat(self._top_correct)]
        return self._top_conf[0], self._top_correct[0]

    def compute_tensors(self) -> dict[str, Tensor]:
        """Like :meth:`compute` but returns 0-d tensors on the state's device (no host transfer)."""
        self._fold()
        s = self._state
        n = s["n"]
        acc = _mean(s["correct"], n)
        conf = _mean(s["confidence"], n)
        out = {
            "ece": _ece_from_sums(s["bin_count"], s["bin_conf"], s["bin_acc"]),
            "mce": _mce_from_sums(s["bin_count"], s["bin_conf"], s["bin_acc"]),
            "ace": _ace_from_top(*self._top(), self.n_bins).to(n.dtype),
            "cw_ece": _cw_ece_from_sums(n, s["cw_conf"], s["cw_acc"]),
            "brier": _mean(s["brier"], n),
            "nll": _mean(s["nll"], n),
            "accuracy": acc,
            "confidence": conf,
            "overconfidence": conf - acc,
            "entropy": _mean(s["entropy"], n),
        }
        return out

    def compute(self) -> dict[str, float]:
        """Compute all metrics (one host transfer).

        Returns:
            Dict with exactly the keys ``ece, mce, ace, cw_ece, brier, nll, accuracy, confidence, overconfidence,
            entropy`` (:data:`CLASSIFICATION_METRICS`); every value is NaN when nothing was accumulated.
        """
        t = self.compute_tensors()
        return dict(zip(self.KEYS, torch.stack([t[k] for k in self.KEYS]).tolist()))

    def bins(self) -> dict[str, Any]:
        """Top-label reliability data from the accumulated sums (same format as ``reliability_bins``)."""
        self._fold()
        s = self._state
        return _bins_to_dict(s["bin_count"], s["bin_conf"], s["bin_acc"])

    def state_dict(self) -> dict[str, Tensor]:
        """Summable state (clones) plus the top-1 ``top_conf``/``top_correct`` (for ACE), which concatenate instead."""
        top_conf, top_correct = self._top()
        return {**{k: v.clone() for k, v in self._state.items()}, "top_conf": top_conf, "top_correct": top_correct}

    def merge(self, other: ClassificationCalibration | dict[str, Tensor]) -> ClassificationCalibration:
        """Add another accumulator with the same ``num_classes``/``n_bins`` (or its state dict); returns ``self``."""
        state = other.state_dict() if isinstance(other, ClassificationCalibration) else other
        self._fold()
        self._merge_sums(state)
        self._top_conf.append(state["top_conf"].to(self.device))
        self._top_correct.append(state["top_correct"].to(self.device, torch.bool))
        return self

    @torch.no_grad()
    def sync(self, group: Any = None) -> ClassificationCalibration:
        """Combine the state of every process of ``group`` (None: the default), in place; returns ``self``.

        Afterwards every process holds the totals (sums all-reduced, top-1 values all-gathered). Call it once, after
        the last ``update``, on every process; a no-op when not distributed; ``RuntimeError`` on a second call.
        """
        if not self._begin_sync():
            return self
        import torch.distributed as dist

        self._fold()
        flat = self._flat_state()
        dist.all_reduce(flat, group=group)
        self._load_flat_state(flat)

        conf, correct = self._top()
        dtype = flat.dtype
        world = dist.get_world_size(group)
        length = torch.tensor([conf.shape[0]], device=self.device)
        lengths = [torch.zeros_like(length) for _ in range(world)]
        dist.all_gather(lengths, length, group=group)
        sizes = [int(x) for x in torch.cat(lengths).tolist()]
        mine = torch.zeros(2, max(sizes), dtype=dtype, device=self.device)
        mine[0, : conf.shape[0]] = conf.to(dtype)
        mine[1, : conf.shape[0]] = correct.to(dtype)
        parts = [torch.empty_like(mine) for _ in range(world)]
        dist.all_gather(parts, mine, group=group)
        self._top_conf = [torch.cat([p[0, :m] for p, m in zip(parts, sizes)]).to(conf.dtype)]
        self._top_correct = [torch.cat([p[1, :m] for p, m in zip(parts, sizes)]).bool()]
        return self


class DetectionCalibration(_SumState):
    """Streaming detection calibration: confidence of kept predictions vs. being a true positive.

    A prediction counts as correct when it is a TP at IoU 0.5 (Ultralytics ``correct[:, 0]``). Predictions with
    ``conf < conf_thres`` are ignored (masked, so no data-dependent shapes or host syncs).

    Args:
        num_classes: Number of classes (for per-class D-ECE).
        n_bins: Number of equal-width bins.
        conf_thres: Keep predictions with ``conf >= conf_thres``.
        device: Device for the state; ``None`` adopts the device of the first ``update``.
    """

    KEYS = (*DETECTION_METRICS, "d_count")

    def __init__(self, num_classes: int, n_bins: int = 15, conf_thres: float = 0.25, device: DeviceLike = None) -> None:
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
        _check_n_bins(n_bins)
        self.num_classes = num_classes
        self.n_bins = n_bins
        self.conf_thres = float(conf_thres)
        super().__init__(device)

    def _shapes(self) -> dict[str, tuple[int, ...]]:
        c, b = self.num_classes, self.n_bins
        return {
            "bin_count": (b,),
            "bin_conf": (b,),
            "bin_acc": (b,),
            "cls_count": (c, b),
            "cls_conf": (c, b),
            "cls_acc": (c, b),
        }

    @torch.no_grad()
    def update(self, conf: Tensor, correct: Tensor, pred_cls: Tensor) -> None:
        """Add a batch of predictions.

        Args:
            conf: ``(M,)`` prediction confidences.
            correct: ``(M,)`` bool TP flags, or ``(M, T)`` Ultralytics IoU-threshold matrix (column 0, IoU 0.5, used).
            pred_cls: ``(M,)`` predicted class indices in ``[0, num_classes)``.
        """
        if correct.ndim == 2:
            correct = correct[:, 0]
        conf, correct, pred_cls = conf.reshape(-1), correct.reshape(-1), pred_cls.reshape(-1)
        if not (conf.shape == correct.shape == pred_cls.shape):
            raise ValueError(
                "conf, correct, pred_cls must have the same length, got "
                f"{tuple(conf.shape)}, {tuple(correct.shape)}, {tuple(pred_cls.shape)}"
            )
        self._adopt(conf)
        conf = conf.detach().to(self.device)  # binned in its own dtype (edges rounded to it), like every confidence
        correct = correct.detach().to(self.device)
        pred_cls = pred_cls.detach().to(self.device, torch.long)
        keep = _as_float(conf) >= self.conf_thres
        for key, v in zip(("bin_count", "bin_conf", "bin_acc"), _bin_sums(conf, correct, self.n_bins, weight=keep)):
            self._add(key, v)
        sums = _bin_sums(conf, correct, self.n_bins, group=pred_cls, n_groups=self.num_classes, weight=keep)
        for key, v in zip(("cls_count", "cls_conf", "cls_acc"), sums):
            self._add(key, v)

    def compute_tensors(self) -> dict[str, Tensor]:
        """Like :meth:`compute` but returns 0-d tensors on the state's device (no host transfer)."""
        s = self._state
        n = s["bin_count"].sum()
        return {
            "d_ece": _ece_from_sums(s["bin_count"], s["bin_conf"], s["bin_acc"]),
            "d_mce": _mce_from_sums(s["bin_count"], s["bin_conf"], s["bin_acc"]),
            "d_accuracy": _mean(s["bin_acc"].sum(), n),
            "d_confidence": _mean(s["bin_conf"].sum(), n),
            "d_count": n,
        }

    def compute(self) -> dict[str, float]:
        """Compute detection calibration (one host transfer).

        Returns:
            Dict with ``d_ece``, ``d_mce``, ``d_accuracy`` (precision of kept predictions), ``d_confidence`` (their
            mean confidence) and ``d_count`` (number kept). When nothing was kept, ``d_count`` is 0 and the four
            metrics are NaN (there is nothing to measure, which is not a calibration error of 0).
        """
        t = self.compute_tensors()
        out = dict(zip(self.KEYS, torch.stack([t[k] for k in self.KEYS]).tolist()))
        out["d_count"] = int(round(out["d_count"]))
        return out

    @torch.no_grad()
    def sync(self, group: Any = None) -> DetectionCalibration:
        """Sum the state of every process of ``group`` (None: the default), in place; returns ``self``.

        Call it once, after the last ``update``, on every process; a no-op when not distributed.
        """
        if self._begin_sync():
            import torch.distributed as dist

            flat = self._flat_state()
            dist.all_reduce(flat, group=group)
            self._load_flat_state(flat)
        return self

    def per_class_d_ece(self) -> dict[int, float]:
        """D-ECE per predicted class (binning within each class); NaN for classes with no kept predictions."""
        s = self._state
        count = s["cls_count"]
        per = _ece_from_sums(count, s["cls_conf"], s["cls_acc"])
        per = per.masked_fill(count.sum(-1) == 0, float("nan"))
        return dict(enumerate(per.tolist()))

    def bins(self) -> dict[str, Any]:
        """Reliability data of the kept predictions (same format as ``reliability_bins``)."""
        s = self._state
        return _bins_to_dict(s["bin_count"], s["bin_conf"], s["bin_acc"])

    def state_dict(self) -> dict[str, Tensor]:
        """Summable state (clones); for DDP all-reduce (sum) every entry, or gather and :meth:`merge`."""
        return {k: v.clone() for k, v in self._state.items()}

    def merge(self, other: DetectionCalibration | dict[str, Tensor]) -> DetectionCalibration:
        """Add another accumulator with the same ``num_classes``/``n_bins`` (or its state dict); returns ``self``."""
        self._merge_sums(other.state_dict() if isinstance(other, DetectionCalibration) else other)
        return self
