"""Streaming (batch-by-batch) calibration accumulators, torchmetrics style.

The accumulators keep per-bin / running sums on the model's device and reuse the private helpers of
:mod:`yolo_ls.calibration.metrics`, so each formula exists once: ``update`` adds sums from the same binning and
per-sample terms, ``compute`` applies the same ``_ece_from_sums``/``_mce_from_sums`` reductions and performs a single
host transfer. Accumulated results equal the one-shot functions on the concatenated data.

Memory: :class:`ClassificationCalibration` keeps O(K * n_bins) sums plus the N top-1 confidences and correctness
flags (two scalars per sample, needed only for the adaptive ECE); it never keeps an N x K matrix.
"""

from __future__ import annotations

from typing import Any, Union

import torch
from torch import Tensor

from yolo_ls.calibration.metrics import (
    _ace_from_top,
    _as_float,
    _bin_sums,
    _bins_to_dict,
    _brier_terms,
    _check_n_bins,
    _check_probs,
    _classwise_targets,
    _ece_from_sums,
    _entropy_terms,
    _mce_from_sums,
    _mean,
    _nll_terms,
    _sum_dtype,
    _top_label,
)

__all__ = ("ClassificationCalibration", "DetectionCalibration")

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

    def _adopt(self, x: Tensor) -> None:
        """On the first update without an explicit device, move the (empty) state to the input's device."""
        if not self._fixed_device and not self._seen and x.device != self.device:
            self.device = x.device
            self.reset()
        self._seen = True

    def _add(self, key: str, value: Tensor) -> None:
        self._state[key] += value.to(self._state[key].dtype)

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

    KEYS = ("ece", "mce", "ace", "cw_ece", "brier", "nll", "accuracy", "confidence", "overconfidence", "entropy")

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
            "cw_count": (k, b),
            "cw_conf": (k, b),
            "cw_acc": (k, b),
            **{s: () for s in scalars},
        }

    def reset(self) -> None:
        """Clear all accumulated state (keeps the device)."""
        super().reset()
        self._top_conf: list[Tensor] = []
        self._top_correct: list[Tensor] = []

    @torch.no_grad()
    def update(self, probs: Tensor, labels: Tensor) -> None:
        """Add a batch.

        Args:
            probs: ``(B, K)`` probabilities (any device; moved to the state's device).
            labels: ``(B,)`` integer labels.
        """
        _check_probs(probs, labels)
        if probs.shape[1] != self.num_classes:
            raise ValueError(f"expected {self.num_classes} classes, got probs of shape {tuple(probs.shape)}")
        self._adopt(probs)
        probs = probs.detach().to(self.device)
        labels = labels.detach().to(self.device, torch.long)

        conf, correct = _top_label(probs, labels)
        for key, v in zip(("bin_count", "bin_conf", "bin_acc"), _bin_sums(conf, correct, self.n_bins)):
            self._add(key, v)
        targets = _classwise_targets(labels, self.num_classes, self.device)  # batch-local (B, K), not kept
        for key, v in zip(("cw_count", "cw_conf", "cw_acc"), _bin_sums(probs, targets, self.n_bins)):
            self._add(key, v)
        self._add("brier", _brier_terms(probs, labels).sum())
        self._add("nll", _nll_terms(probs, labels, self.eps).sum())
        self._add("entropy", _entropy_terms(probs).sum())
        self._add("correct", correct.sum())
        self._add("confidence", conf.sum())
        self._state["n"] += probs.shape[0]
        self._top_conf.append(conf)
        self._top_correct.append(correct)

    def _top(self) -> tuple[Tensor, Tensor]:
        if not self._top_conf:
            return torch.zeros(0, device=self.device), torch.zeros(0, dtype=torch.bool, device=self.device)
        return torch.cat(self._top_conf), torch.cat(self._top_correct)  # cat promotes mixed float dtypes

    def compute_tensors(self) -> dict[str, Tensor]:
        """Like :meth:`compute` but returns 0-d tensors on the state's device (no host transfer)."""
        s = self._state
        n = s["n"]
        acc = _mean(s["correct"], n)
        conf = _mean(s["confidence"], n)
        out = {
            "ece": _ece_from_sums(s["bin_count"], s["bin_conf"], s["bin_acc"]),
            "mce": _mce_from_sums(s["bin_count"], s["bin_conf"], s["bin_acc"]),
            "ace": _ace_from_top(*self._top(), self.n_bins).to(n.dtype),
            "cw_ece": _ece_from_sums(s["cw_count"], s["cw_conf"], s["cw_acc"]).mean(),
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
            entropy`` (all 0.0 when nothing was accumulated).
        """
        t = self.compute_tensors()
        return dict(zip(self.KEYS, torch.stack([t[k] for k in self.KEYS]).tolist()))

    def bins(self) -> dict[str, Any]:
        """Top-label reliability data from the accumulated sums (same format as ``reliability_bins``)."""
        s = self._state
        return _bins_to_dict(s["bin_count"], s["bin_conf"], s["bin_acc"])

    def state_dict(self) -> dict[str, Tensor]:
        """Summable state (clones) plus the concatenated top-1 ``top_conf``/``top_correct`` (for ACE).

        For DDP: all-reduce (sum) every key except ``top_conf``/``top_correct``, which must be all-gathered and
        concatenated; or gather whole state dicts and :meth:`merge` them.
        """
        top_conf, top_correct = self._top()
        return {**{k: v.clone() for k, v in self._state.items()}, "top_conf": top_conf, "top_correct": top_correct}

    def merge(self, other: ClassificationCalibration | dict[str, Tensor]) -> ClassificationCalibration:
        """Add another accumulator (or its :meth:`state_dict`) into this one, in place.

        Args:
            other: An accumulator with the same ``num_classes``/``n_bins``, or its state dict.

        Returns:
            ``self``.
        """
        state = other.state_dict() if isinstance(other, ClassificationCalibration) else other
        self._merge_sums(state)
        self._top_conf.append(state["top_conf"].to(self.device))
        self._top_correct.append(state["top_correct"].to(self.device, torch.bool))
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

    KEYS = ("d_ece", "d_mce", "d_accuracy", "d_confidence", "d_count")

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
        conf = _as_float(conf.detach().to(self.device))
        correct = correct.detach().to(self.device)
        pred_cls = pred_cls.detach().to(self.device, torch.long)
        keep = conf >= self.conf_thres
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
            mean confidence) and ``d_count`` (number kept); all 0 when nothing was kept.
        """
        t = self.compute_tensors()
        out = dict(zip(self.KEYS, torch.stack([t[k] for k in self.KEYS]).tolist()))
        out["d_count"] = int(round(out["d_count"]))
        return out

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
        """Add another accumulator (or its :meth:`state_dict`) into this one, in place.

        Args:
            other: An accumulator with the same ``num_classes``/``n_bins``, or its state dict.

        Returns:
            ``self``.
        """
        self._merge_sums(other.state_dict() if isinstance(other, DetectionCalibration) else other)
        return self
