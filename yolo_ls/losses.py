"""Smoothed targets and losses: the math, as tensor functions, plus the one place they enter Ultralytics' criteria.

Classification (``ls_mode``):
    - ``uniform``: t = (1-ε)·onehot + ε/K, identical to ``F.cross_entropy(label_smoothing=ε)``.
    - ``exclusive``: 1-ε on the true class and ε/(K-1) on each other class.
    - ``prior``: t = (1-ε)·onehot + ε·q for a class distribution q.

    All three are t = ε·b + a·onehot with a fixed vector b and a = 1 - ε·Σb, so the loss has the closed form
    ``logsumexp(z) - ε·(z·b) - a·z_y`` and the gradient ``softmax(z) - t``. :class:`_SmoothedCrossEntropy` computes both
    directly with public torch ops, which is cheaper than PyTorch's built-in smoothing.

Detection family (``ls_mode``), applied to the task-aligned assigner's soft ``target_scores`` t of shape (B, A, nc):
    - ``fg``: t' = (1-ε)·t + ε·s/nc with s = Σ_c t the anchor's own target mass. Background anchors (s = 0) stay at 0
      and the IoU-aware quality s is kept.
    - ``all``: t' = (1-ε)·t + ε/2 on every anchor and class: the YOLOv5/Keras binary squeeze. Lifts the score floor of
      every background anchor; kept as the classic variant.
    - ``positive``: t' = (1-ε)·t, one-sided: negatives are untouched.

The detection smoothing enters through ``v8DetectionLoss.bce``, the module every detection-family loss (v8 detect,
segment, pose, OBB and both branches of ``E2ELoss``) calls for its classification term and for nothing else, so the box
and DFL terms and ``target_scores_sum`` stay exactly stock.

ε is a 0-d tensor held by :class:`LabelSmoothingState` on the training device and read by the losses as a tensor: no
host sync, and torch.compile sees a tensor input rather than a Python constant, so changing ε does not recompile.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from yolo_ls.config import CLASSIFY_MODES, DETECT_MODES


class LabelSmoothingState:
    """The ε in effect, as a 0-d float32 tensor on the training device, updated in place.

    One state is shared by the training model's criterion and the EMA model's criterion (the validator's val loss).
    Deep copies return the same object: ε is run state like the learning rate, not a model parameter, so a copied
    model (``ModelEMA`` deep-copies the model) keeps reading the live value.
    """

    def __init__(self, eps: float = 0.0, device: torch.device | str | None = None) -> None:
        self.eps = torch.tensor(float(eps), dtype=torch.float32, device=device)

    def set_(self, value: float) -> None:
        """Set ε in place (a device-side fill: no host sync, no new tensor)."""
        self.eps.fill_(float(value))

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
        if q.numel() != num_classes or (q < 0).any() or q.sum() <= 0:
            raise ValueError(f"prior must hold {num_classes} non-negative weights with a positive sum, got {prior}")
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
    """Mean cross-entropy against t = ε·b + a·onehot with a closed-form gradient (softmax(z) - t)·g/N, public ops only.

    Forward: one fused ``log_softmax`` (as in stock cross-entropy), ``a·nll_loss`` for the true class (stock's own
    reduction, so ε=0 gives stock's loss bit for bit) and a mat-vec for the ε·b term. No N×K target matrix is built.
    Backward: because Σt = 1 the log-softmax backward ``go - softmax·Σgo`` collapses to ``softmax·s - t·s`` with
    s = g/N, computed as ``exp(lsm)·s - ε·b·s`` (one fused ``addcmul``) plus ``-a·s`` scattered onto the true class.
    At ε=0 that is stock's arithmetic exactly: ``fl(p·s) + (-s)`` on the true class and ``fl(p·s)`` elsewhere.
    """

    @staticmethod
    def forward(ctx, logits, labels, eps, base):  # noqa: D102
        lsm = torch.log_softmax(logits.float(), dim=1)
        w = eps * base  # ε·b, (K,)
        a = 1.0 - w.sum()  # weight of the true class, Σt = 1
        loss = a * F.nll_loss(lsm, labels) - torch.mv(lsm, w).mean()  # -mean Σ_k t_k·log p_k
        ctx.save_for_backward(lsm, labels, w, a)
        ctx.in_dtype = logits.dtype
        return loss

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        lsm, labels, w, a = ctx.saved_tensors
        scale = grad / lsm.shape[0]  # s = g/N
        g = lsm.exp()  # softmax
        torch.addcmul(-(w * scale), g, scale, out=g)  # softmax·s - ε·b·s on every row, in place
        g.scatter_add_(1, labels[:, None], (-a * scale).expand(labels.shape[0], 1))  # - a·s on the true class
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
    return _SmoothedCrossEntropy.apply(logits, labels.long(), eps, base)


class SmoothedClassificationLoss:
    """Drop-in for Ultralytics' ``v8ClassificationLoss`` that smooths the targets with a shared ε.

    Args:
        state (LabelSmoothingState): Holds ε on the device.
        num_classes (int): K.
        mode (str): ``uniform``, ``exclusive`` or ``prior``.
        prior (Any): Class weights for ``prior``.
    """

    def __init__(self, state: LabelSmoothingState, num_classes: int, mode: str = "uniform", prior: Any = None):
        self.state = state
        self.mode = mode
        self.base = smoothing_base(num_classes, mode, prior, device=state.eps.device)
        from yolo_ls.compat import classification_loss_items  # the stock item format (dict/tensor)

        self.loss_items = classification_loss_items()

    def __call__(self, preds: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Return (loss, detached loss items) as the installed ``v8ClassificationLoss`` does (a dict or a tensor)."""
        preds = preds[1] if isinstance(preds, (list, tuple)) else preds
        loss = _SmoothedCrossEntropy.apply(preds, batch["cls"].long(), self.state.eps, self.base)
        return loss, self.loss_items(loss.detach())


# ------------------------------------------------------------------------------------------------ detection
def smooth_binary_targets(target_scores: torch.Tensor, eps: float | torch.Tensor, mode: str = "fg") -> torch.Tensor:
    """Smooth the detection class targets (B, A, nc) for a binary (sigmoid) classification term.

    Args:
        target_scores (torch.Tensor): The assigner's soft targets, zero on background anchors.
        eps (float | torch.Tensor): ε in [0, 1).
        mode (str): ``fg``, ``all`` or ``positive`` (see the module docstring).
    """
    eps = torch.as_tensor(eps, device=target_scores.device).to(target_scores.dtype)
    if mode == "fg":  # t + ε·(s/nc - t) in one fused pass after the per-anchor sum
        mass = target_scores.sum(-1, keepdim=True) / target_scores.shape[-1]
        return torch.lerp(target_scores, mass.expand_as(target_scores), eps)
    if mode == "all":  # t + ε·(1/2 - t)
        return torch.lerp(target_scores, torch.full_like(target_scores[..., :1], 0.5).expand_as(target_scores), eps)
    if mode == "positive":
        return target_scores * (1.0 - eps)
    raise ValueError(f"unknown detection smoothing mode '{mode}', expected one of {DETECT_MODES}")


class SmoothedBCEWithLogits(nn.Module):
    """``nn.BCEWithLogitsLoss(reduction="none")`` whose targets are smoothed first with the shared ε."""

    def __init__(self, state: LabelSmoothingState, mode: str = "fg") -> None:
        super().__init__()
        if mode not in DETECT_MODES:
            raise ValueError(f"unknown detection smoothing mode '{mode}', expected one of {DETECT_MODES}")
        self.state = state
        self.mode = mode

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:  # noqa: D102
        target = smooth_binary_targets(target, self.state.eps, self.mode)
        return F.binary_cross_entropy_with_logits(pred, target, reduction="none")


# --------------------------------------------------------------------------------------------- injection point
def detection_losses(criterion: Any) -> list[Any]:
    """The ``v8DetectionLoss`` objects inside a detection-family criterion (itself, or E2E's two branches)."""
    from ultralytics.utils.loss import v8DetectionLoss

    if isinstance(criterion, v8DetectionLoss):
        return [criterion]
    branches = (getattr(criterion, b, None) for b in ("one2many", "one2one"))
    return [b for b in branches if isinstance(b, v8DetectionLoss)]


def install_smoothing(
    model: nn.Module, state: LabelSmoothingState, *, task: str, mode: str, num_classes: int, prior: Any = None
) -> Any:
    """Put label smoothing into the criterion a model uses for ``model.loss`` (training and the validator's val loss).

    Classification replaces the criterion with :class:`SmoothedClassificationLoss`. The detection family builds the
    model's stock criterion (``model.init_criterion()``, if not built yet) and swaps the ``bce`` module of each
    ``v8DetectionLoss`` inside it. Calling it again on the same model is harmless. Checkpoints never hold the
    criterion: Ultralytics strips it before saving.

    Returns:
        The installed criterion.
    """
    if task == "classify":
        model.criterion = SmoothedClassificationLoss(state, num_classes, mode, prior)
        return model.criterion
    criterion = getattr(model, "criterion", None) or model.init_criterion()
    losses = detection_losses(criterion)
    if not losses:
        raise TypeError(
            f"yolo-ls cannot place label smoothing in {type(criterion).__name__}: it supports the v8DetectionLoss "
            "family (detect, segment, pose, obb; v8-style and end-to-end heads)."
        )
    for loss in losses:
        loss.bce = SmoothedBCEWithLogits(state, mode)
    model.criterion = criterion
    return criterion
