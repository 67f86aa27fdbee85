"""Detection calibration scores what ``predict()`` returns: the matching function, and the callbacks inside real
validators (v8 NMS head, YOLO26 end-to-end head, segment, OBB) checked against predict-style references."""

from __future__ import annotations

import math
import types
import zlib

import pytest
import torch

from tests.helpers import results, yolo26_mark
from yolo_ls.calibration.detection import box_iou, match_predictions
from yolo_ls.engine.compat import has_model_yaml

OUTPUTS_84 = has_model_yaml("yolo26n.yaml")  # 8.4's eval-output layout (segment: ((y, proto), raw)) came with YOLO26

# ------------------------------------------------------------------------------------------ independent references


def _iou_ref(gt: list[list[float]], pred: list[list[float]]) -> list[list[float]]:
    """IoU of xyxy boxes, one pair at a time in plain Python (rows: ground truth, columns: predictions)."""
    out = []
    for g in gt:
        row = []
        for p in pred:
            iw = max(0.0, min(g[2], p[2]) - max(g[0], p[0]))
            ih = max(0.0, min(g[3], p[3]) - max(g[1], p[1]))
            inter = iw * ih
            union = (g[2] - g[0]) * (g[3] - g[1]) + (p[2] - p[0]) * (p[3] - p[1]) - inter
            row.append(inter / union if union > 0 else 0.0)
        out.append(row)
    return out


def _greedy_ref(iou: list[list[float]], pred_cls: list[int], gt_cls: list[int], conf: list[float]) -> list[bool]:
    """Highest confidence first; each prediction takes its best-overlapping free ground truth of its class."""
    correct, taken = [False] * len(pred_cls), set()
    for j in sorted(range(len(pred_cls)), key=lambda i: -conf[i]):
        best, best_k = 0.0, None
        for k in range(len(gt_cls)):
            if k not in taken and gt_cls[k] == pred_cls[j] and iou[k][j] > best:
                best, best_k = iou[k][j], k
        if best_k is not None and best >= 0.5:
            correct[j] = True
            taken.add(best_k)
    return correct


# ------------------------------------------------------------------------------------------------- pure functions


def test_box_iou_hand_values():
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    pred = torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 0.0, 15.0, 10.0], [20.0, 20.0, 30.0, 30.0], [0, 0, 10, 5.0]])
    # identical; half overlap 50 / 150; disjoint; contained 50 / 100
    assert box_iou(gt, pred)[0].tolist() == pytest.approx([1.0, 1 / 3, 0.0, 0.5], abs=1e-6)


def test_box_iou_matches_torchvision():
    import torchvision

    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(7, 4, generator=g) * 50, torch.rand(9, 4, generator=g) * 50
    a[:, 2:] += a[:, :2]
    b[:, 2:] += b[:, :2]
    assert torch.allclose(box_iou(a, b), torchvision.ops.box_iou(a, b), atol=1e-5)


def test_match_highest_confidence_claims_the_box():
    """Two predictions on one GT box: only the more confident is correct, even when it overlaps less."""
    iou = torch.tensor([[0.9, 0.6]])
    got = match_predictions(iou, torch.tensor([0, 0]), torch.tensor([0]), torch.tensor([0.5, 0.8]))
    assert got.tolist() == [False, True]


def test_match_wrong_class_and_threshold():
    # pred 0: right box, wrong class; pred 1: right class, IoU just under 0.5; pred 2: IoU exactly 0.5
    iou = torch.tensor([[0.95, 0.49, 0.0], [0.0, 0.0, 0.5]])
    got = match_predictions(iou, torch.tensor([1, 0, 2]), torch.tensor([0, 2]), torch.tensor([0.9, 0.8, 0.7]))
    assert got.tolist() == [False, False, True]


def test_match_takes_the_best_free_box_and_moves_on():
    """pred A (conf .9) overlaps g0 .8 and g1 .6: takes g0; pred B (conf .7) overlaps g0 .9, g1 .55: g0 is taken,
    so B takes g1; pred C (conf .6) finds nothing free."""
    iou = torch.tensor([[0.8, 0.9, 0.7], [0.6, 0.55, 0.3]])
    got = match_predictions(iou, torch.tensor([3, 3, 3]), torch.tensor([3, 3]), torch.tensor([0.9, 0.7, 0.6]))
    assert got.tolist() == [True, True, False]
    # without conf the given order is the matching order: C first takes g0, then A takes g1, B finds g1 taken
    got = match_predictions(iou[:, [2, 0, 1]], torch.tensor([3, 3, 3]), torch.tensor([3, 3]))
    assert got.tolist() == [True, True, False]


def test_match_empty_inputs():
    assert match_predictions(torch.zeros(0, 3), torch.tensor([0, 1, 2]), torch.zeros(0), None).tolist() == [False] * 3
    assert match_predictions(torch.zeros(2, 0), torch.zeros(0), torch.tensor([0, 1])).shape == (0,)
    with pytest.raises(ValueError, match="pred_cls"):
        match_predictions(torch.zeros(2, 3), torch.zeros(2), torch.zeros(2))


def test_match_equals_ultralytics_match_predictions_column0():
    """Random scenes: the same flags as Ultralytics' own greedy matcher at IoU 0.5 (its input sorted by conf)."""
    from ultralytics.models.yolo.detect import DetectionValidator

    validator = DetectionValidator()
    g = torch.Generator().manual_seed(1)
    for _ in range(200):
        n_gt, n_pred = int(torch.randint(0, 6, (1,), generator=g)), int(torch.randint(0, 12, (1,), generator=g))
        gt = torch.rand(n_gt, 4, generator=g) * 20
        gt[:, 2:] += gt[:, :2] + 5
        pred = gt[torch.randint(0, max(n_gt, 1), (n_pred,), generator=g)] if n_gt else torch.rand(n_pred, 4) * 20
        pred = pred + torch.randn(n_pred, 4, generator=g) * 2
        pred_cls, gt_cls = torch.randint(0, 3, (n_pred,), generator=g), torch.randint(0, 3, (n_gt,), generator=g)
        conf = torch.rand(n_pred, generator=g)
        order = conf.argsort(descending=True)
        iou = box_iou(gt, pred)
        ours = match_predictions(iou, pred_cls, gt_cls, conf)
        ref = _greedy_ref(_iou_ref(gt.tolist(), pred.tolist()), pred_cls.tolist(), gt_cls.tolist(), conf.tolist())
        assert ours.tolist() == ref
        if n_gt and n_pred:
            theirs = validator.match_predictions(pred_cls[order], gt_cls, iou[:, order])[:, 0]
            assert ours[order].tolist() == theirs.tolist()


# ------------------------------------------------------------------ callbacks in real validators, fake model outputs


class _Spy:
    """Records what the callbacks feed to ``DetectionCalibration.update``."""

    def __init__(self, monkeypatch):
        import yolo_ls.engine.callbacks.measurement as cal

        self.calls: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        spy = self

        class Recording(cal.DetectionCalibration):
            def update(self, conf, correct, pred_cls):
                spy.calls.append((conf.clone(), correct.clone(), pred_cls.clone()))
                return super().update(conf, correct, pred_cls)

        monkeypatch.setattr(cal, "DetectionCalibration", Recording)

    def scored(self, conf_thres: float) -> list[tuple[float, bool, int]]:
        rows = [(c, bool(k), int(p)) for conf, ok, cls in self.calls for c, k, p in zip(conf.tolist(), ok, cls)]
        return sorted(r for r in rows if r[0] >= conf_thres)


def _fake_outputs(model, img: torch.Tensor, batch: dict | None, task: str, end2end: bool) -> tuple:
    """Raw head outputs made from the batch's ground truth: boxes jittered from tight to far off, a true-class score
    and competing class scores (so multi-label NMS keeps the same box twice), plus background boxes. Deterministic
    per batch, so the validator's pass and the test's own predict() on the same tensor see the same outputs."""
    nc, (b, _, h, w) = len(model.names), img.shape
    seed = zlib.crc32("|".join(batch["im_file"]).encode()) if batch is not None else 0
    g = torch.Generator().manual_seed(seed)
    n_per_gt, n_bg, jitter = 6, 12, torch.tensor([0.0, 0.04, 0.1, 0.2, 0.35, 0.6])
    n_gt = torch.bincount(batch["batch_idx"].long(), minlength=b) if batch is not None else torch.zeros(b)
    anchors = int(n_gt.max()) * n_per_gt + n_bg
    xywh = torch.zeros(b, anchors, 4)
    scores = torch.rand(b, anchors, nc, generator=g) * 0.05
    angle = torch.zeros(b, anchors, 1)
    for si in range(b):
        if batch is not None:
            idx = batch["batch_idx"] == si
            boxes = batch["bboxes"][idx][:, :4] * torch.tensor([w, h, w, h])
            cls = batch["cls"][idx].view(-1).long()
            for k, (box, c) in enumerate(zip(boxes, cls)):
                sl = slice(k * n_per_gt, (k + 1) * n_per_gt)
                xywh[si, sl] = box + torch.randn(n_per_gt, 4, generator=g) * jitter[:, None] * box[2:].repeat(2)
                xywh[si, sl, 2:] = xywh[si, sl, 2:].abs() + 1
                scores[si, sl, c] = torch.rand(n_per_gt, generator=g) * 0.8 + 0.15
                other = torch.randint(0, nc, (n_per_gt,), generator=g)
                scores[si, sl].scatter_(1, other[:, None], torch.rand(n_per_gt, 1, generator=g) * 0.7 + 0.1)
                angle[si, sl, 0] = torch.randn(n_per_gt, generator=g) * 0.1
        bg = slice(anchors - n_bg, anchors)
        xywh[si, bg] = torch.rand(n_bg, 4, generator=g) * torch.tensor([w, h, w / 2, h / 2]) + 2
        scores[si, torch.arange(anchors - n_bg, anchors), torch.randint(0, nc, (n_bg,), generator=g)] = (
            torch.rand(n_bg, generator=g) * 0.6)
    if end2end:  # YOLO26 one-to-one head: top-k over (anchor, class), xyxy rows
        from ultralytics.utils.ops import xywh2xyxy

        k = min(300, anchors * nc)
        top, index = scores.flatten(1).topk(k, dim=1)
        boxes = torch.gather(xywh2xyxy(xywh), 1, (index // nc)[..., None].expand(-1, -1, 4))
        return torch.cat([boxes, top[..., None], (index % nc)[..., None].float()], -1), {}
    # segment: flat prototypes and random coefficients, so about half the masks are empty (predict() drops those)
    coef = torch.randn(b, anchors, 32, generator=g)
    extra = {"obb": [angle], "segment": [coef], "pose": [torch.rand(b, anchors, 17 * 3, generator=g) * 64]}
    parts = [xywh, scores, *extra.get(task, [])]
    y = torch.cat(parts, -1).permute(0, 2, 1).contiguous()
    if task == "segment":
        proto = torch.ones(b, 32, h // 4, w // 4)
        return ((y, proto), {}) if OUTPUTS_84 else (y, (None, coef, proto))  # the release's own layout
    return y, {}


def _install_fake_head(yolo, task: str, stash: dict) -> None:
    def forward(self, img, *args, **kwargs):
        batch = stash.get("batch")
        batch = batch if batch is not None and len(batch["im_file"]) == img.shape[0] else None
        return _fake_outputs(self, img, batch, task, bool(getattr(self, "end2end", False)))

    yolo.model.forward = types.MethodType(forward, yolo.model)  # deep copies (predict) rebind it to the copy


def _reference(yolo, batches: list[dict], task: str, conf: float, end2end: bool, multi_label: bool = False):
    """Ultralytics' NMS called as predict() calls it, on the same outputs; IoU and greedy match written here."""
    from ultralytics.utils.metrics import batch_probiou
    from ultralytics.utils.nms import non_max_suppression
    from ultralytics.utils.ops import process_mask

    rows = []
    for batch in batches:
        fake = _fake_outputs(yolo.model, batch["img"], batch, task, end2end)
        if task == "segment":  # the prototypes, in the layout _fake_outputs wrote for this release
            y, proto = fake[0] if OUTPUTS_84 else (fake[0], fake[1][2])
        else:
            y, proto = fake[0], None
        out = non_max_suppression(y, conf, 0.7, multi_label=multi_label, max_det=300,
                                  nc=0 if task == "detect" else len(yolo.model.names), end2end=end2end,
                                  rotated=task == "obb")
        h, w = h_w = batch["img"].shape[2:]
        for si, x in enumerate(out):
            if proto is not None and len(x):  # what SegmentationPredictor keeps: boxes with a non-empty mask
                x = x[process_mask(proto[si], x[:, 6:], x[:, :4], h_w, upsample=True).amax((-2, -1)) > 0]
            idx = batch["batch_idx"] == si
            gt_cls = batch["cls"][idx].view(-1).long().tolist()
            gt = batch["bboxes"][idx]
            if task == "obb":  # rotated IoU: the validator's own probiou on the validator's own scaling
                gtp = gt.clone()
                gtp[:, :4] *= torch.tensor([w, h, w, h])
                iou = batch_probiou(gtp, torch.cat([x[:, :4], x[:, 6:7]], 1)).tolist() if len(gt_cls) else []
            else:
                cx, cy, bw, bh = (gt[:, i] for i in range(4))
                gt_xyxy = torch.stack([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h], 1)
                iou = _iou_ref(gt_xyxy.tolist(), x[:, :4].tolist())
            correct = _greedy_ref(iou, x[:, 5].long().tolist(), gt_cls, x[:, 4].tolist())
            rows += [(c, k, int(p)) for c, k, p in zip(x[:, 4].tolist(), correct, x[:, 5].tolist())]
    return sorted(rows)


@pytest.mark.parametrize(
    "model_yaml,task,data_fixture,nms_free",
    [
        ("yolo11n.yaml", "detect", "digits_det_yaml", None),
        # nms=False: the one-to-one (end-to-end) head; default: YOLO26's one-to-many head with NMS
        pytest.param("yolo26n.yaml", "detect", "digits_det_yaml", False, marks=yolo26_mark()),
        pytest.param("yolo26n.yaml", "detect", "digits_det_yaml", None, marks=yolo26_mark()),
        ("yolo11n-seg.yaml", "segment", "digits_seg_yaml", None),
        ("yolo11n-obb.yaml", "obb", "digits_seg_yaml", None),
        ("yolo11n-pose.yaml", "pose", "digits_pose_yaml", None),
    ],
)
def test_scored_set_is_what_predict_keeps(tmp_path, monkeypatch, request, model_yaml, task, data_fixture, nms_free):
    """Through a real validator: the (confidence, correct, class) triples fed to the accumulator equal
    (1) Ultralytics' single-label NMS at calib_conf with a hand-written IoU/greedy match, and (2) what model.predict()
    returns on the very same preprocessed tensors; and they are fewer than the validator's multi-label set."""
    from ultralytics import YOLO

    from yolo_ls.engine.callbacks import add_calibration_callbacks

    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "cfg"))
    data = request.getfixturevalue(data_fixture)
    calib_conf = 0.3
    spy = _Spy(monkeypatch)
    yolo = add_calibration_callbacks(YOLO(model_yaml, task=task), conf=calib_conf, plots="off")
    stash, batches = {}, []

    def on_val_start(validator):
        orig = validator.preprocess

        def preprocess(batch):
            batch = orig(batch)
            stash["batch"] = batch
            batches.append({k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in batch.items()})
            return batch

        validator.preprocess = preprocess

    yolo.add_callback("on_val_start", on_val_start)
    _install_fake_head(yolo, task, stash)
    if task == "pose" and not hasattr(yolo.model, "kpt_shape"):  # before 8.4 only the head holds it; predict() needs it
        yolo.model.kpt_shape = yolo.model.model[-1].kpt_shape
    kw = {} if nms_free is None else {"nms": nms_free}
    metrics = yolo.val(data=str(data), imgsz=64, batch=8, device="cpu", workers=0, plots=False, verbose=False,
                       project=str(tmp_path), name="val", **kw)
    end2end = nms_free is False
    assert batches and batches[0]["img"].shape[2] == 96  # rect val batches: a 64 px image enters as 96 px
    scored = spy.scored(calib_conf)
    assert len(scored) == sum(c.shape[0] for c, _, _ in spy.calls)  # nothing below calib_conf is even fed
    ref = _reference(yolo, batches, task, calib_conf, end2end)
    assert len(scored) == len(ref) > 20
    assert [c for c, _, _ in scored] == pytest.approx([c for c, _, _ in ref], abs=1e-6)
    assert [(k, p) for _, k, p in scored] == [(k, p) for _, k, p in ref]
    assert 0 < sum(k for _, k, _ in scored) < len(scored)  # true and false positives both present
    if not end2end:  # the validator's multi-label set keeps second-class duplicates that predict() never returns
        assert len(_reference(yolo, batches, task, calib_conf, end2end, multi_label=True)) > len(ref)
    # predict() itself on the same preprocessed tensors keeps the same (confidence, class) set
    got = []
    for batch in batches:
        stash["batch"] = batch
        for r in yolo.predict(batch["img"], conf=calib_conf, verbose=False, device="cpu", **kw):
            boxes = r.obb if task == "obb" else r.boxes
            got += list(zip(boxes.conf.tolist(), boxes.cls.long().tolist()))
    got.sort()
    assert [c for c, _ in got] == pytest.approx([c for c, _, _ in ref], abs=1e-6)
    assert [p for _, p in got] == [p for _, _, p in ref]
    # the logged metrics are those of exactly this set
    from yolo_ls.calibration import binary_ece

    conf_t = torch.tensor([c for c, _, _ in ref])
    ok_t = torch.tensor([k for _, k, _ in ref])
    assert metrics.calibration["d_ece"] == pytest.approx(float(binary_ece(conf_t, ok_t, 15)), abs=1e-6)
    assert metrics.calibration["d_accuracy"] == pytest.approx(float(ok_t.float().mean()), abs=1e-6)


def test_nothing_above_calib_conf_reports_nan_not_zero(tmp_path, monkeypatch, digits_det_yaml):
    from ultralytics import YOLO

    from yolo_ls.engine.callbacks import add_calibration_callbacks

    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "cfg"))
    stash: dict = {}
    yolo = add_calibration_callbacks(YOLO("yolo11n.yaml"), conf=0.99, plots="off")

    def on_val_start(validator):
        orig = validator.preprocess
        validator.preprocess = lambda batch: stash.__setitem__("batch", orig(batch)) or stash["batch"]

    yolo.add_callback("on_val_start", on_val_start)
    _install_fake_head(yolo, "detect", stash)  # every score is at most 0.95
    metrics = yolo.val(data=str(digits_det_yaml), imgsz=64, batch=8, device="cpu", workers=0, plots=False,
                       verbose=False, project=str(tmp_path), name="val")
    assert all(math.isnan(v) for v in metrics.calibration.values()), metrics.calibration
    assert metrics.calibration_bins["count"].sum() == 0


@pytest.mark.training
def test_training_with_nothing_scored_writes_nan(shared_det_nothing_scored_run):
    """1 epoch from scratch with calib_conf=0.999: no prediction is that confident; every d_* is NaN, in
    calibration.csv, results.csv (written by Ultralytics as 'nan') and trainer.metrics, never 0. (The run is in
    conftest: test_plots_training checks its "nothing measured" diagrams.)"""
    import pandas as pd

    run, yolo, _ = shared_det_nothing_scored_run
    df = pd.read_csv(run / "calibration.csv")
    for k in ("d_ece", "d_mce", "d_accuracy", "d_confidence"):
        assert df[k].isna().all(), (k, df[k].tolist())
        assert results(run)[f"calib/{k}"].isna().all(), k
        assert math.isnan(yolo.trainer.metrics[f"calib/{k}"]), k
    per_class = [c for c in df.columns if c.startswith("d_ece/")]
    assert per_class and df[per_class].isna().all().all()
