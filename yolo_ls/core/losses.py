"""Smoothed targets and losses: the math, as tensor functions and loss modules (no Ultralytics import).

Classification (``ls_mode``):
    - ``uniform``: t = (1-ε)·onehot + ε/K, identical to ``F.cross_entropy(label_smoothing=ε)``.
    - ``exclusive``: 1-ε on the true class and ε/(K-1) on each other class.
    - ``prior``: t = (1-ε)·onehot + ε·q for a class distribution q.

    - ``margin`` (MbLS, Liu et al. CVPR 2022): CE + ε·mean_{n,k} relu(max_j z_j - z_k - m), m = ``ls_margin``.
    - ``online`` (OLS, Zhang et al. TIP 2021): t = (1-ε)·onehot + ε·S[y], S learned per epoch (``core/online.py``).
    - ``matrix``: t = (1-ε)·onehot + ε·M[y] for a user-given row-stochastic K×K M (``ls_matrix``).
    - negative ε (Wei et al. ICML 2022, ``ls_negative=True``, uniform only): the same uniform formula with ε in
      [-1, 0); t still sums to 1, with negative entries off the true class.

    uniform, exclusive and prior are t = ε·b + a·onehot with a fixed vector b and a = 1 - ε·Σb.

Detection family (``ls_mode``), applied to the task-aligned assigner's soft ``target_scores`` t of shape (B, A, nc):
    - ``fg``: t' = (1-ε)·t + ε·s/nc with s = Σ_c t the anchor's own target mass; background anchors (s = 0) stay 0.
    - ``all``: t' = (1-ε)·t + ε/2 on every anchor and class (the YOLOv5/Keras binary squeeze).
    - ``positive``: t' = (1-ε)·t, one-sided: negatives are untouched.
    - ``matrix``: t' = (1-ε)·t + ε·s·M[c] with c = argmax_c t (the anchor's assigned class) and s = Σ_c t; background
      anchors (s = 0) stay exactly 0.

They are installed in Ultralytics' criteria by :func:`yolo_ls.engine.inject.install_smoothing`. ε is a 0-d tensor
held by :class:`LabelSmoothingState` on the training device.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from yolo_ls.core.modes import CLASSIFY_MODES, DETECT_MODES


class LabelSmoothingState:
    """The ε in effect, as a 0-d float32 tensor on the training device, updated in place.

    Shared by the training and EMA criteria; deep copies return the same object, so a copied model reads the live ε.
    Derived terms for the classification loss (:meth:`target_terms`) are kept current by :meth:`set_`.
    """

    def __init__(self, eps: float = 0.0, device: torch.device | str | None = None) -> None:
        self.eps = torch.tensor(float(eps), dtype=torch.float32, device=device)
        self._terms: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # (b, -ε·b, -(1 - ε·Σb))

    def set_(self, value: float) -> None:
        """Set ε in place (a device-side fill: no host sync, no new tensor)."""
        self.eps.fill_(float(value))
        self.refresh_()

    def refresh_(self) -> None:
        """Recompute the derived terms from ``eps`` (call it after writing ``eps`` by other means, e.g. a broadcast)."""
        for base, neg_w, neg_a in self._terms:
            torch.mul(base, self.eps, out=neg_w).neg_()  # -ε·b
            torch.sum(neg_w, dim=0, out=neg_a).neg_().sub_(1.0)  # ε·Σb - 1

    def target_terms(self, base: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(-ε·b, -(1 - ε·Σb))`` for a smoothing base b (registered on first use, then kept current by set_)."""
        for b, neg_w, neg_a in self._terms:
            if b is base:
                return neg_w, neg_a
        with torch.inference_mode(False):  # first use may be a validation: set_ must be able to update them later
            neg_w = torch.empty_like(base, dtype=torch.float32, device=self.eps.device)
            neg_a = torch.empty((), dtype=torch.float32, device=self.eps.device)
            self._terms.append((base, neg_w, neg_a))
            self.refresh_()
        return neg_w, neg_a

    def __deepcopy__(self, memo: dict) -> LabelSmoothingState:
        return self

    def __repr__(self) -> str:
        return f"LabelSmoothingState(eps={self.eps.item():.6g}, device={self.eps.device})"


# ----------------------------------------------------------------------------------------------- classification
def smoothing_base(
    num_classes: int, mode: str = "uniform", prior: Any = None, device: torch.device | str | None = None
) -> torch.Tensor:
    """The vector b of the smoothed target t = ε·b + (1 - ε·Σb)·onehot, shape (K,), float32.

    Args:
        num_classes (int): K.
        mode (str): ``uniform`` (b = 1/K), ``exclusive`` (b = 1/(K-1)) or ``prior`` (b = prior / Σ prior).
        prior (Any): Class weights for ``prior`` (any non-negative sequence or tensor with a positive sum).
        device (torch.device | str | None): Where to put b.
    """
    if mode == "uniform":
        return torch.full((num_classes,), 1.0 / num_classes, device=device)
    if mode == "exclusive":
        if num_classes < 2:
            raise ValueError("ls_mode='exclusive' needs at least 2 classes")
        return torch.full((num_classes,), 1.0 / (num_classes - 1), device=device)
    if mode == "prior":
        if prior is None:
            raise ValueError("ls_mode='prior' needs a class distribution (ls_prior)")
        q = torch.as_tensor(prior, dtype=torch.float64).flatten()
        if q.numel() != num_classes or not torch.isfinite(q).all() or (q < 0).any() or q.max() <= 0:
            raise ValueError(f"prior must hold {num_classes} non-negative weights with a positive sum, got {prior}")
        q = q / q.max()  # scaled into [0, 1] first: huge weights cannot overflow the sum
        return (q / q.sum()).to(device=device, dtype=torch.float32)
    raise ValueError(f"unknown classification smoothing mode '{mode}', expected one of {CLASSIFY_MODES}")


def smooth_targets(
    labels: torch.Tensor, num_classes: int, eps: float | torch.Tensor, mode: str = "uniform", prior: Any = None
) -> torch.Tensor:
    """Smoothed target distributions (N, K) for integer labels (N,): the reference form of the classification loss."""
    base = smoothing_base(num_classes, mode, prior, device=labels.device)
    eps = torch.as_tensor(eps, dtype=torch.float32, device=labels.device)
    onehot = F.one_hot(labels.long(), num_classes).float()
    return eps * base + (1.0 - eps * base.sum()) * onehot


class _SmoothedCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy against t = ε·b + a·onehot with the closed-form gradient (softmax(z) - t)·g/N.

    At ε=0 the loss equals stock cross-entropy. The backward reuses the saved log-softmax buffer in place, so a second
    backward through the same graph (``retain_graph=True``) is refused by autograd.
    """

    @staticmethod
    def forward(ctx, logits, labels, neg_w, neg_a):  # noqa: D102
        # neg_w = -ε·b (K,), neg_a = -(1 - ε·Σb): the true class's weight a, negated (Σt = 1)
        lsm = torch.log_softmax(logits.float(), dim=1)
        loss = torch.mv(lsm, neg_w).mean() - neg_a * F.nll_loss(lsm, labels)  # -mean Σ_k t_k·log p_k
        ctx.save_for_backward(lsm, labels, neg_w, neg_a)
        ctx.in_dtype = logits.dtype
        return loss

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        lsm, labels, neg_w, neg_a = ctx.saved_tensors
        scale = grad / lsm.shape[0]  # s = g/N
        g = lsm.exp_()  # softmax(z), in the forward's own buffer
        torch.addcmul(neg_w * scale, g, scale, out=g)  # softmax·s - ε·b·s on every row, in place
        g.scatter_add_(1, labels[:, None], (neg_a * scale).expand(labels.shape[0], 1))  # - a·s on the true class
        return g.to(ctx.in_dtype), None, None, None


def smoothed_cross_entropy(
    logits: torch.Tensor,
    labels: torch.Tensor,
    eps: float | torch.Tensor = 0.0,
    mode: str = "uniform",
    prior: Any = None,
    base: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean label-smoothed cross-entropy of logits (N, K) against integer labels (N,).

    Args:
        logits (torch.Tensor): Unnormalised scores (N, K), any float dtype; the loss is computed in float32.
        labels (torch.Tensor): Class indices (N,).
        eps (float | torch.Tensor): ε in [0, 1); a 0-d tensor on the logits' device avoids any host sync.
        mode (str): ``uniform``, ``exclusive`` or ``prior``.
        prior (Any): Class weights for ``prior``.
        base (torch.Tensor | None): A precomputed :func:`smoothing_base` (then ``mode``/``prior`` are ignored).
    """
    if base is None:
        base = smoothing_base(logits.shape[1], mode, prior, device=logits.device)
    eps = torch.as_tensor(eps, dtype=torch.float32, device=logits.device)
    w = eps * base
    return _SmoothedCrossEntropy.apply(logits, labels.long(), -w, w.sum() - 1.0)


def _items_as_dict(loss: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"loss": loss}


class SmoothedClassificationLoss:
    """Drop-in for Ultralytics' ``v8ClassificationLoss`` that smooths the targets with a shared ε.

    Args:
        state (LabelSmoothingState): Holds ε on the device.
        num_classes (int): K.
        mode (str): ``uniform``, ``exclusive`` or ``prior``.
        prior (Any): Class weights for ``prior``.
        loss_items: Turns the detached loss into the loss items Ultralytics expects
            (:func:`yolo_ls.engine.compat.classification_loss_items`).
    """

    def __init__(self, state: LabelSmoothingState, num_classes: int, mode: str = "uniform", prior: Any = None,
                 loss_items: Callable[[torch.Tensor], Any] = _items_as_dict):
        self.state = state
        self.mode = mode
        self.base = smoothing_base(num_classes, mode, prior, device=state.eps.device)
        self.loss_items = loss_items  # the installed stock loss's item format (a dict or the tensor itself)
        self.neg_w, self.neg_a = state.target_terms(self.base)  # -ε·b, -(1 - ε·Σb): kept current by state.set_

    def __deepcopy__(self, memo: dict) -> SmoothedClassificationLoss:
        """A copy sharing the state and its derived terms (``ModelEMA`` deep-copies the model and its criterion)."""
        return copy.copy(self)

    def __call__(self, preds: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Return (loss, detached loss items) as the installed ``v8ClassificationLoss`` does (a dict or a tensor)."""
        preds = preds[1] if isinstance(preds, (list, tuple)) else preds
        loss = _SmoothedCrossEntropy.apply(preds, batch["cls"].long(), self.neg_w, self.neg_a)
        return loss, self.loss_items(loss.detach())


# ------------------------------------------------------------------- margin, online and matrix (classification)
def class_matrix(matrix: Any, num_classes: int, device: torch.device | str | None = None) -> torch.Tensor:
    """A K×K class matrix as a float32 tensor with rows normalised to sum 1 (row y: where ε goes for class y).

    Raises:
        ValueError: For another shape, a negative or non-finite entry, or a row summing to 0.
    """
    m = torch.as_tensor(matrix, dtype=torch.float64)
    if m.shape != (num_classes, num_classes) or not torch.isfinite(m).all() or (m < 0).any():
        raise ValueError(f"ls_matrix must be a {num_classes}x{num_classes} matrix of non-negative finite weights")
    total = m.sum(1, keepdim=True)
    if (total <= 0).any():
        raise ValueError("every row of ls_matrix needs a positive sum")
    return (m / total).to(device=device, dtype=torch.float32)


def matrix_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, eps: float | torch.Tensor,
                         matrix: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy against t = (1-ε)·onehot + ε·M[y] for a row-stochastic M (K×K): ``ls_mode=matrix/online``.

    Computed as logsumexp(z) - (1-ε)·z_y - ε·(M[y]·z) (Σt = 1).
    """
    z = logits.float()
    eps = torch.as_tensor(eps, dtype=torch.float32, device=z.device)
    labels = labels.long()
    lse = torch.logsumexp(z, dim=1)
    z_y = z.gather(1, labels[:, None]).squeeze(1)
    spread = (matrix[labels] * z).sum(1)  # M[y]·z
    return (lse - (1.0 - eps) * z_y - eps * spread).mean()


def margin_penalty(logits: torch.Tensor, margin: float | torch.Tensor = 10.0) -> torch.Tensor:
    """The MbLS penalty mean_{n,k} relu(max_j z_nj - z_nk - m) (Liu et al., CVPR 2022), over all N×K entries."""
    z = logits.float()
    return F.relu(z.max(dim=1, keepdim=True).values - z - margin).mean()


def margin_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, eps: float | torch.Tensor,
                         margin: float | torch.Tensor = 10.0) -> torch.Tensor:
    """``ls_mode=margin``: CE(z, y) + λ·:func:`margin_penalty`, with λ = ε."""
    eps = torch.as_tensor(eps, dtype=torch.float32, device=logits.device)
    return F.cross_entropy(logits.float(), labels.long()) + eps * margin_penalty(logits, margin)


class MatrixClassificationLoss:
    """``ls_mode=matrix`` (fixed M) or ``online`` (M = the live OLS matrix S): t = (1-ε)·onehot + ε·M[y].

    Args:
        state (LabelSmoothingState): Holds ε on the device.
        matrix (torch.Tensor): Row-stochastic K×K on the device (for ``online``: ``OnlineSoftLabels.matrix``, which
            is updated in place, so the loss reads the current S).
        online (Any): For the training model's criterion with ``online``: the :class:`~.online.OnlineSoftLabels`
            fed with every training batch. None for the validator's (EMA) criterion and for ``matrix``.
    """

    def __init__(self, state: LabelSmoothingState, matrix: torch.Tensor, online: Any = None) -> None:
        self.state = state
        self.matrix = matrix
        self.online = online

    def __call__(self, preds: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Return (loss, {"loss": detached loss}) as ``v8ClassificationLoss`` does."""
        preds = preds[1] if isinstance(preds, (list, tuple)) else preds
        labels = batch["cls"].long()
        if self.online is not None:
            self.online.accumulate(preds, labels)
        loss = matrix_cross_entropy(preds, labels, self.state.eps, self.matrix)
        return loss, {"loss": loss.detach()}


class MarginClassificationLoss:
    """``ls_mode=margin`` (MbLS): CE + ε·mean(relu(max_j z_j - z_k - m)), ε on the device."""

    def __init__(self, state: LabelSmoothingState, margin: float = 10.0) -> None:
        self.state = state
        self.margin = float(margin)

    def __call__(self, preds: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Return (loss, {"loss": detached loss}) as ``v8ClassificationLoss`` does."""
        preds = preds[1] if isinstance(preds, (list, tuple)) else preds
        loss = margin_cross_entropy(preds, batch["cls"], self.state.eps, self.margin)
        return loss, {"loss": loss.detach()}


# ------------------------------------------------------------------------------------------------ detection
def smooth_binary_targets(
    target_scores: torch.Tensor, eps: float | torch.Tensor, mode: str = "fg", matrix: torch.Tensor | None = None
) -> torch.Tensor:
    """Smooth the detection class targets (B, A, nc) for a binary (sigmoid) classification term.

    Args:
        target_scores (torch.Tensor): The assigner's soft targets, zero on background anchors.
        eps (float | torch.Tensor): ε in [0, 1).
        mode (str): ``fg``, ``all``, ``positive`` or ``matrix`` (see the module docstring).
        matrix (torch.Tensor | None): For ``matrix``: the row-stochastic nc×nc M.
    """
    eps = torch.as_tensor(eps, device=target_scores.device).to(target_scores.dtype)
    if mode == "matrix":  # t + ε·(s·M[c] - t), c = argmax of the anchor's row, s its mass; background s = 0 stays 0
        if matrix is None:
            raise ValueError("smooth_binary_targets(mode='matrix') needs the matrix")
        mass = target_scores.sum(-1, keepdim=True)
        spread = matrix.to(target_scores.dtype)[target_scores.argmax(-1)] * mass
        return torch.lerp(target_scores, spread, eps)
    if mode == "fg":  # t·M with M = (1-ε)·I + (ε/nc)·J: one mat-mul, no reduction over the short class axis
        nc = target_scores.shape[-1]
        eye = torch.eye(nc, dtype=target_scores.dtype, device=target_scores.device)
        return target_scores @ torch.lerp(eye, torch.full_like(eye, 1.0 / nc), eps)
    if mode == "all":  # t + ε·(1/2 - t)
        return torch.lerp(target_scores, torch.full_like(target_scores[..., :1], 0.5).expand_as(target_scores), eps)
    if mode == "positive":
        return target_scores * (1.0 - eps)
    raise ValueError(f"unknown detection smoothing mode '{mode}', expected one of {DETECT_MODES}")


class SmoothedBCEWithLogits(nn.Module):
    """``nn.BCEWithLogitsLoss(reduction="none")`` whose targets are smoothed first with the shared ε."""

    def __init__(self, state: LabelSmoothingState, mode: str = "fg", matrix: torch.Tensor | None = None) -> None:
        super().__init__()
        if mode not in DETECT_MODES:
            raise ValueError(f"unknown detection smoothing mode '{mode}', expected one of {DETECT_MODES}")
        if (mode == "matrix") != (matrix is not None):
            raise ValueError("ls_mode='matrix' takes a matrix, and only it does")
        self.state = state
        self.mode = mode
        self.matrix = matrix

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:  # noqa: D102
        target = smooth_binary_targets(target, self.state.eps, self.mode, self.matrix)
        return F.binary_cross_entropy_with_logits(pred, target, reduction="none")
