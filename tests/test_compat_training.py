"""One tiny real training per task family, the set ``make test-compat`` runs against each supported Ultralytics.

Each is one epoch at ε=0.1 through ``yolo_ls.YOLO`` and checks what a version difference would break: the plugin's
criterion installed in the model and its EMA, the stock loss-item format flowing into results.csv, ε logged, and the
calibration columns written with measured (finite) values or NaN, never a faked 0.
"""

from __future__ import annotations

import math

import pytest

from tests.helpers import TINY_CLS, TINY_DET, results

pytestmark = pytest.mark.training


# The classify, detect and segment runs are conftest's shared ones (the same settings, read by other tests too:
# detect with plots, calib_conf=0 and calib_plots=all, segment with its default ls_mode=fg given).
FAMILIES = [
    ("yolo11n-cls.yaml", "classify", "digits_root", "train/loss", "calib/ece", "shared_cls_run"),
    ("yolo11n.yaml", "detect", "digits_det_yaml", "train/cls_loss", "calib/d_ece", "shared_det_run"),
    ("yolo11n-seg.yaml", "segment", "digits_seg_yaml", "train/cls_loss", "calib/d_ece", "shared_seg_run"),
    ("yolo11n-pose.yaml", "pose", "digits_pose_yaml", "train/cls_loss", "calib/d_ece", None),
    ("yolo11n-obb.yaml", "obb", "digits_seg_yaml", "train/cls_loss", "calib/d_ece", None),
]


@pytest.mark.parametrize("model,task,data_fixture,loss_col,calib_col,shared", FAMILIES, ids=[f[1] for f in FAMILIES])
def test_one_tiny_training_per_family(tmp_path, monkeypatch, request, model, task, data_fixture, loss_col, calib_col,
                                      shared):
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "cfg"))
    from yolo_ls import YOLO
    from yolo_ls.core.losses import SmoothedBCEWithLogits, SmoothedClassificationLoss
    from yolo_ls.engine.inject import detection_losses

    if shared:
        run, yolo = request.getfixturevalue(shared)
    else:
        data = request.getfixturevalue(data_fixture)
        tiny = TINY_CLS if task == "classify" else TINY_DET
        yolo = YOLO(model, task=task)
        yolo.train(**tiny, data=str(data), project=str(tmp_path), name="run", exist_ok=True, label_smoothing=0.1)
        run = tmp_path / "run"
    assert yolo.task == task and yolo.trainer.args.model == model
    trainer = yolo.trainer
    for m in (trainer.model, trainer.ema.ema):
        if task == "classify":
            assert isinstance(m.criterion, SmoothedClassificationLoss) and m.criterion.state is trainer.ls_state
        else:
            losses = detection_losses(m.criterion)
            assert losses and all(isinstance(x.bce, SmoothedBCEWithLogits) for x in losses)
            assert all(x.bce.state is trainer.ls_state for x in losses)
    df = results(run)
    assert len(df) == 1 and df["label_smoothing"].tolist() == [0.1]
    assert math.isfinite(df[loss_col].iloc[0]) and df[loss_col].iloc[0] > 0
    value = df[calib_col].iloc[0]
    assert math.isnan(value) or 0 < value <= 1  # measured, or NaN when nothing was scored: never a faked 0
    if task == "classify":
        assert math.isfinite(value)  # a classifier always has confidences to measure
