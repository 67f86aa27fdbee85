"""Detection-family smoothing: every stock loss class, ε=0 against stock, ε>0 touching the cls term only."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from ultralytics.cfg import get_cfg
from ultralytics.nn.tasks import DetectionModel, OBBModel, PoseModel, SegmentationModel
from ultralytics.utils import DEFAULT_CFG
from ultralytics.utils import loss as stock_losses
from ultralytics.utils.loss import v8DetectionLoss, v8OBBLoss, v8PoseLoss, v8SegmentationLoss

from tests.helpers import device_params
from yolo_ls.core.losses import LabelSmoothingState, SmoothedBCEWithLogits, smooth_binary_targets
from yolo_ls.engine.compat import has_model_yaml
from yolo_ls.engine.inject import install_smoothing

# YOLO26 and its losses exist from ultralytics 8.4.0; YOLOv10's end-to-end criterion is E2EDetectLoss before that
E2ELoss = getattr(stock_losses, "E2ELoss", None)
PoseLoss26 = getattr(stock_losses, "PoseLoss26", None)
SegmentLoss26 = getattr(stock_losses, "SegmentLoss26", None)
E2E_V10 = E2ELoss or stock_losses.E2EDetectLoss

IMGSZ, B, NC = 64, 2, 3
DEVICES = device_params()  # "cpu", and "cuda" (marked cuda, skipped without a GPU)

# (yaml, model class, task, expected stock criterion class, expected inner v8DetectionLoss class)
CASES = [
    ("yolo11n.yaml", DetectionModel, "detect", v8DetectionLoss, v8DetectionLoss),
    ("yolov10n.yaml", DetectionModel, "detect", E2E_V10, v8DetectionLoss),
    ("yolo26n.yaml", DetectionModel, "detect", E2ELoss, v8DetectionLoss),
    ("yolo11n-seg.yaml", SegmentationModel, "segment", v8SegmentationLoss, v8SegmentationLoss),
    ("yolo26n-seg.yaml", SegmentationModel, "segment", E2ELoss, SegmentLoss26),
    ("yolo11n-pose.yaml", PoseModel, "pose", v8PoseLoss, v8PoseLoss),
    ("yolo26n-pose.yaml", PoseModel, "pose", E2ELoss, PoseLoss26),
    ("yolo11n-obb.yaml", OBBModel, "obb", v8OBBLoss, v8OBBLoss),
]
CASES = [
    pytest.param(*c, id=c[0], marks=pytest.mark.skipif(not has_model_yaml(c[0]), reason=f"no {c[0]} here"))
    for c in CASES
]
# The stock loss items before about 8.4.106: one tensor in the trainer's loss_names order
ITEM_NAMES = {
    3: ("box_loss", "cls_loss", "dfl_loss"),
    4: ("box_loss", "seg_loss", "cls_loss", "dfl_loss"),
    5: ("box_loss", "pose_loss", "kobj_loss", "cls_loss", "dfl_loss"),
}


def _batch(task: str, kpt_shape=(17, 3)) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    n = 5
    batch_idx = torch.tensor([0, 0, 0, 1, 1], dtype=torch.float32)
    cls = torch.randint(0, NC, (n, 1), generator=g).float()
    xy = 0.25 + 0.5 * torch.rand(n, 2, generator=g)
    wh = 0.15 + 0.25 * torch.rand(n, 2, generator=g)
    batch = {"img": torch.rand(B, 3, IMGSZ, IMGSZ, generator=g), "batch_idx": batch_idx, "cls": cls}
    batch["bboxes"] = torch.cat([xy, wh], 1)
    if task == "obb":
        batch["bboxes"] = torch.cat([xy, wh, 0.3 * torch.rand(n, 1, generator=g)], 1)
    if task == "segment":
        masks = torch.zeros(B, IMGSZ // 4, IMGSZ // 4)
        counters = [0] * B
        for i in range(n):
            b = int(batch_idx[i])
            counters[b] += 1
            cx, cy, w, h = (batch["bboxes"][i] * IMGSZ // 4).tolist()
            masks[b, int(cy - h / 2) : int(cy + h / 2), int(cx - w / 2) : int(cx + w / 2)] = counters[b]
        batch["masks"] = masks
        batch["sem_masks"] = torch.zeros(B, IMGSZ // 4, IMGSZ // 4)  # YOLO26 seg's semantic head
    if task == "pose":
        k = torch.rand(n, kpt_shape[0], 3, generator=g)
        k[..., :2] = xy[:, None] + (k[..., :2] - 0.5) * wh[:, None]
        k[..., 2] = (k[..., 2] > 0.3).float()
        batch["keypoints"] = k
    return batch


_MODELS: dict[str, tuple] = {}


def _model_and_preds(yaml: str, cls, device: str = "cpu"):
    if (yaml, device) not in _MODELS:
        torch.manual_seed(0)
        model = cls(yaml, nc=NC, verbose=False).to(device)
        model.args = get_cfg(DEFAULT_CFG)
        model.train()
        task = {DetectionModel: "detect", SegmentationModel: "segment", PoseModel: "pose", OBBModel: "obb"}[cls]
        batch = {k: v.to(device) for k, v in _batch(task, getattr(model, "kpt_shape", (17, 3))).items()}
        preds = model(batch["img"])
        _MODELS[yaml, device] = (model, batch, preds)
    return _MODELS[yaml, device]


def _loss(criterion, preds, batch):
    loss, items = criterion(preds, batch)
    if isinstance(items, torch.Tensor):  # either stock format: {"box_loss": ...} or the tensor of those values
        items = dict(zip(ITEM_NAMES[items.numel()], items))
    return loss.detach(), {k: v.detach().clone() for k, v in items.items()}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("yaml,cls,task,crit_cls,inner_cls", CASES)
def test_each_loss_class_eps0_is_stock_and_eps_changes_cls_only(yaml, cls, task, crit_cls, inner_cls, device):
    model, batch, preds = _model_and_preds(yaml, cls, device)
    stock = model.init_criterion()
    assert type(stock) is crit_cls
    stock_loss, stock_items = _loss(stock, preds, batch)

    for mode in ("fg", "all", "positive"):
        state = LabelSmoothingState(0.0, device)
        smoothed_model = copy.copy(model)  # a shallow copy: same weights, its own criterion attribute
        smoothed_model.criterion = None
        crit = install_smoothing(smoothed_model, state, task=task, mode=mode, num_classes=NC)
        assert type(crit) is crit_cls
        inner = [crit] if isinstance(crit, v8DetectionLoss) else [crit.one2many, crit.one2one]
        assert all(type(x) is inner_cls and isinstance(x.bce, SmoothedBCEWithLogits) for x in inner)

        loss0, items0 = _loss(crit, preds, batch)
        torch.testing.assert_close(loss0, stock_loss, rtol=1e-6, atol=1e-6)
        for k in stock_items:
            torch.testing.assert_close(items0[k], stock_items[k], rtol=1e-6, atol=1e-6)

        state.set_(0.1)
        loss1, items1 = _loss(crit, preds, batch)
        assert not torch.allclose(items1["cls_loss"], stock_items["cls_loss"]), f"{mode}: cls term unchanged"
        for k in stock_items:
            if k != "cls_loss":
                torch.testing.assert_close(items1[k], stock_items[k], rtol=0, atol=0, msg=f"{mode}: {k} changed")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["fg", "all", "positive"])
def test_smoothed_targets_inside_a_real_loss_call(mode, device):
    """Capture the assigner's targets and the BCE the loss really computed; check them against the hand formula."""
    model, batch, preds = _model_and_preds("yolo11n.yaml", DetectionModel, device)
    eps = 0.2
    m = copy.copy(model)
    m.criterion = None
    crit = install_smoothing(m, LabelSmoothingState(eps, device), task="detect", mode=mode, num_classes=NC)
    seen = {}
    crit.bce.register_forward_hook(lambda mod, inp, out: seen.update(pred=inp[0], target=inp[1], out=out))
    crit(preds, batch)
    t, pred, out = seen["target"], seen["pred"], seen["out"]
    background = t.sum(-1) == 0
    assert background.any() and (~background).any()
    if mode == "fg":
        expected = (1 - eps) * t + eps * t.sum(-1, keepdim=True) / NC
        assert expected[background].abs().max() == 0  # background targets stay exactly 0
        torch.testing.assert_close(expected.sum(-1), t.sum(-1))  # each anchor keeps its IoU-aware mass
    elif mode == "all":
        expected = t * (1 - eps) + eps / 2
    else:
        expected = t * (1 - eps)
        assert (expected[t == 0] == 0).all()  # no negative target changes
    torch.testing.assert_close(out, F.binary_cross_entropy_with_logits(pred, expected, reduction="none"))


def test_smooth_binary_targets_hand_computed():
    t = torch.tensor([[[0.0, 0.6, 0.0], [0.0, 0.0, 0.0]]])  # one fg anchor (mass 0.6), one background
    torch.testing.assert_close(
        smooth_binary_targets(t, 0.3, "fg"), torch.tensor([[[0.06, 0.42 + 0.06, 0.06], [0.0, 0.0, 0.0]]])
    )
    torch.testing.assert_close(smooth_binary_targets(t, 0.3, "all"), torch.tensor([[[0.15, 0.57, 0.15], [0.15] * 3]]))
    torch.testing.assert_close(smooth_binary_targets(t, 0.3, "positive"), torch.tensor([[[0.0, 0.42, 0.0], [0.0] * 3]]))
    with pytest.raises(ValueError, match="fg"):
        smooth_binary_targets(t, 0.3, "uniform")
