"""Hooks on a validator's own methods, and the detection boxes calibration scores.

Detection calibration scores what ``predict(conf=calib_conf)`` keeps: single-label NMS over the validator's own raw
outputs (no second forward pass), matched greedily to the batch's ground truth at IoU 0.5.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

WRAPPED = "__wrapped_calibration__"


def wrap(validator: Any, name: str, make: Callable[[Callable], Callable]) -> None:
    """Replace ``validator.<name>`` with ``make(original)``. The original is kept on the wrapper, so wrapping again
    (the same validator at the next epoch) wraps the original, never the previous wrapper."""
    current = getattr(validator, name)
    orig = getattr(current, WRAPPED, current)
    fn = make(orig)
    setattr(fn, WRAPPED, orig)
    setattr(validator, name, fn)


def before(step: Callable[..., Any]) -> Callable[[Callable], Callable]:
    """A wrapper for :func:`wrap` that runs ``step(*args)`` first, then the validator's own method."""

    def make(orig: Callable) -> Callable:
        def fn(*args: Any) -> Any:
            step(*args)
            return orig(*args)

        return fn

    return make


def predict_style_boxes(validator: Any, preds: Any, conf: float) -> list[dict[str, torch.Tensor]]:
    """The boxes ``predict(conf=conf)`` keeps from a batch's raw outputs, in the validator's image space.

    The same call as ``DetectionPredictor.postprocess``: one class per box, the validator's ``iou``, ``max_det`` and
    ``agnostic_nms``; end-to-end heads only filter their output, rotated NMS for OBB; segmentation drops boxes with an
    empty mask, as ``SegmentationPredictor`` does.
    """
    from ultralytics.utils import nms

    args, task = validator.args, validator.args.task
    raw = preds
    while isinstance(raw, (list, tuple)):  # (y, raw dict); segment: ((y, proto), raw dict)
        raw = raw[0]
    out = nms.non_max_suppression(
        raw, conf, args.iou, agnostic=bool(args.single_cls or args.agnostic_nms), multi_label=False,
        max_det=args.max_det, nc=0 if task == "detect" else len(validator.names),
        end2end=bool(getattr(validator, "end2end", False)), rotated=task == "obb",
    )
    proto = None
    if task == "segment":
        from yolo_ls.engine.compat import segment_proto  # the output layout differs between releases

        proto = segment_proto(preds)
    kept = []
    for i, x in enumerate(out):
        if proto is not None and x.shape[0]:
            from ultralytics.utils import ops

            shape = [4 * s for s in proto.shape[2:]]  # the input size, as the segment validator derives it
            x = x[ops.process_mask(proto[i], x[:, 6:], x[:, :4], shape, upsample=True).amax((-2, -1)) > 0]
        boxes = torch.cat([x[:, :4], x[:, 6:7]], 1) if task == "obb" else x[:, :4]  # OBB: xywh + angle (last)
        kept.append(validator._prepare_pred({"bboxes": boxes, "conf": x[:, 4], "cls": x[:, 5]}))
    return kept


def match_boxes(validator: Any, kept: list[dict[str, torch.Tensor]], batch: dict[str, Any]
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(conf, correct, cls)`` of a batch's kept boxes: correct when matched to a ground truth of its class at IoU 0.5
    (greedy, by confidence)."""
    from ultralytics.models.yolo.detect import DetectionValidator
    from ultralytics.utils.metrics import batch_probiou

    from yolo_ls.calibration.detection import box_iou, match_predictions

    obb = validator.args.task == "obb"
    # ground truth in the space the validator matches in; the base detect scaling skips segment/pose extras
    prepare = validator._prepare_batch if obb else DetectionValidator._prepare_batch.__get__(validator)
    conf, correct, cls = [], [], []
    for si, pred in enumerate(kept):
        gt = prepare(si, batch)
        if gt["cls"].shape[0] and pred["cls"].shape[0]:
            iou = batch_probiou(gt["bboxes"], pred["bboxes"]) if obb else box_iou(gt["bboxes"], pred["bboxes"])
        else:
            iou = torch.zeros((gt["cls"].shape[0], pred["cls"].shape[0]), device=pred["conf"].device)
        correct.append(match_predictions(iou, pred["cls"], gt["cls"], pred["conf"]))
        conf.append(pred["conf"].float())
        cls.append(pred["cls"].long())
    conf_t = torch.cat(conf)
    return conf_t, torch.cat(correct).to(conf_t.device), torch.cat(cls).to(conf_t.device)
