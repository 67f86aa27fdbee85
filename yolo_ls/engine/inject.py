"""The one place smoothing enters Ultralytics' criteria: :func:`install_smoothing`.

The detection smoothing replaces ``v8DetectionLoss.bce``, the module every detection-family loss (v8 detect, segment,
pose, OBB and both branches of ``E2ELoss``) calls for its classification term and for nothing else, so the box and DFL
terms and ``target_scores_sum`` stay exactly stock.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from yolo_ls.core.losses import (
    LabelSmoothingState,
    MarginClassificationLoss,
    MatrixClassificationLoss,
    SmoothedBCEWithLogits,
    SmoothedClassificationLoss,
    class_matrix,
)
from yolo_ls.engine.compat import classification_loss_items


def detection_losses(criterion: Any) -> list[Any]:
    """The ``v8DetectionLoss`` objects inside a detection-family criterion (itself, or E2E's two branches)."""
    from ultralytics.utils.loss import v8DetectionLoss

    if isinstance(criterion, v8DetectionLoss):
        return [criterion]
    branches = (getattr(criterion, b, None) for b in ("one2many", "one2one"))
    return [b for b in branches if isinstance(b, v8DetectionLoss)]


def install_smoothing(
    model: nn.Module,
    state: LabelSmoothingState,
    *,
    task: str,
    mode: str,
    num_classes: int,
    prior: Any = None,
    matrix: Any = None,
    margin: float = 10.0,
    online: Any = None,
    accumulate: bool = False,
) -> Any:
    """Put label smoothing into the criterion a model uses for ``model.loss`` (training and the validator's val loss).

    Classification replaces the criterion with :class:`SmoothedClassificationLoss`. The detection family builds the
    model's stock criterion (``model.init_criterion()``, if not built yet) and swaps the ``bce`` module of each
    ``v8DetectionLoss`` inside it. Calling it again on the same model is harmless. Checkpoints never hold the
    criterion: Ultralytics strips it before saving.

    ``matrix`` (``ls_mode=matrix``: K×K, rows normalised here), ``margin`` (``ls_mode=margin``) and ``online``
    (``ls_mode=online``: the run's :class:`~yolo_ls.core.online.OnlineSoftLabels`; ``accumulate=True`` for the training
    model only, whose batches teach S) are read by their mode only.

    Returns:
        The installed criterion.
    """
    m = class_matrix(matrix, num_classes, device=state.eps.device) if mode == "matrix" else None
    if task == "classify":
        if mode == "margin":
            model.criterion = MarginClassificationLoss(state, margin)
        elif mode == "online":
            model.criterion = MatrixClassificationLoss(state, online.matrix, online if accumulate else None)
        elif mode == "matrix":
            model.criterion = MatrixClassificationLoss(state, m)
        else:
            model.criterion = SmoothedClassificationLoss(state, num_classes, mode, prior, classification_loss_items())
        return model.criterion
    criterion = getattr(model, "criterion", None) or model.init_criterion()
    losses = detection_losses(criterion)
    if not losses:
        raise TypeError(
            f"yolo-ls cannot place label smoothing in {type(criterion).__name__}: it supports the v8DetectionLoss "
            "family (detect, segment, pose, obb; v8-style and end-to-end heads)."
        )
    for loss in losses:
        loss.bce = SmoothedBCEWithLogits(state, mode, m)
    model.criterion = criterion
    return criterion
