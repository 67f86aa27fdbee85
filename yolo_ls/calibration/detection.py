"""Which detections count as correct: the IoU-0.5 greedy match used by detection calibration (pure tensors).

A kept prediction is correct when it has the right class and an IoU of at least ``iou_thres`` (0.5) with a ground-truth
box that no earlier prediction has claimed. Predictions are taken in descending confidence order, and each claims the
unclaimed same-class ground-truth box it overlaps most. This matches column 0 (IoU 0.5) of Ultralytics'
``BaseValidator.match_predictions`` (greedy mode).

>>> import torch
>>> gt = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
>>> pred = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 0.0, 10.0, 10.0]])
>>> match_predictions(box_iou(gt, pred), torch.tensor([0, 0]), torch.tensor([0]), torch.tensor([0.6, 0.9])).tolist()
[False, True]
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ("box_iou", "match_predictions")


def box_iou(boxes1: Tensor, boxes2: Tensor, eps: float = 1e-7) -> Tensor:
    """Pairwise IoU of axis-aligned ``(x1, y1, x2, y2)`` boxes.

    Args:
        boxes1: ``(N, 4)`` boxes.
        boxes2: ``(M, 4)`` boxes.
        eps: Added to the union so empty boxes give 0 instead of NaN.

    Returns:
        ``(N, M)`` IoU matrix (float32 or the inputs' wider float dtype).
    """
    a, b = boxes1.float()[:, None, :], boxes2.float()[None, :, :]
    wh = (torch.minimum(a[..., 2:], b[..., 2:]) - torch.maximum(a[..., :2], b[..., :2])).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    area1 = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area2 = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / (area1 + area2 - inter + eps)


def match_predictions(
    iou: Tensor, pred_cls: Tensor, gt_cls: Tensor, conf: Tensor | None = None, iou_thres: float = 0.5
) -> Tensor:
    """Flag each prediction as a true positive at ``iou_thres`` (greedy, one ground-truth box per prediction).

    Args:
        iou: ``(G, P)`` IoU between ground-truth boxes (rows) and predictions (columns), any IoU (box, rotated, mask).
        pred_cls: ``(P,)`` predicted classes.
        gt_cls: ``(G,)`` ground-truth classes.
        conf: ``(P,)`` confidences; predictions are matched in descending order of it (ties keep the given order).
            ``None`` matches in the given order (Ultralytics passes NMS output, already sorted).
        iou_thres: Smallest IoU that counts as a match.

    Returns:
        ``(P,)`` bool tensor on ``iou``'s device: True where the prediction claimed a ground-truth box of its class.
    """
    n_gt, n_pred = iou.shape
    if pred_cls.shape != (n_pred,) or gt_cls.shape != (n_gt,) or (conf is not None and conf.shape != (n_pred,)):
        raise ValueError(
            f"iou (G, P) = {tuple(iou.shape)} needs pred_cls (P,), gt_cls (G,) and conf (P,); got "
            f"{tuple(pred_cls.shape)}, {tuple(gt_cls.shape)}, {None if conf is None else tuple(conf.shape)}"
        )
    correct = torch.zeros(n_pred, dtype=torch.bool)
    if n_gt and n_pred:
        same = gt_cls.detach().cpu().long()[:, None] == pred_cls.detach().cpu().long()[None, :]
        cand = iou.detach().cpu().float() * same  # wrong-class pairs can never match
        if conf is None:
            order = torch.arange(n_pred)
        else:
            order = torch.sort(conf.detach().cpu(), descending=True, stable=True)[1]
        order = order[(cand[:, order] >= iou_thres).any(0)]  # only predictions that can match at all
        claimed = torch.zeros(n_gt, dtype=torch.bool)
        for j in order.tolist():
            available = cand[:, j].masked_fill(claimed, 0.0)
            k = int(available.argmax())  # first index on ties, like numpy's argmax in Ultralytics
            if available[k] >= iou_thres:
                correct[j] = True
                claimed[k] = True
    return correct.to(iou.device)
