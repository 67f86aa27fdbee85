"""Tiny real detection-family trainings: v8 and YOLO26 heads, and segmentation, through yolo_ls.YOLO."""

from __future__ import annotations

import pytest
import yaml

from tests.helpers import NO_FIGURES, TINY_DET, results, yolo26_mark

pytestmark = pytest.mark.training


def _train(model: str, data, project, name: str, **kwargs):
    from yolo_ls import YOLO

    yolo = YOLO(model)
    yolo.train(**{**TINY_DET, **NO_FIGURES, "data": str(data), "project": str(project), "name": name, "exist_ok": True},
               **kwargs)
    return project / name, yolo


@pytest.mark.parametrize(
    "model,data_fixture,mode,shared",
    [
        ("yolo11n.yaml", "digits_det_yaml", "all", None),
        pytest.param("yolo26n.yaml", "digits_det_yaml", "fg", None, marks=yolo26_mark()),
        ("yolo11n-seg.yaml", "digits_seg_yaml", "fg", "shared_seg_run"),  # the ε=0.1 run of conftest
    ],
)
def test_detection_family_smoothing_changes_cls_loss(tmp_path, request, model, data_fixture, mode, shared):
    data = request.getfixturevalue(data_fixture)
    hard, _ = _train(model, data, tmp_path, "eps0", label_smoothing=0.0)
    if shared:  # the same settings, trained once for test_compat_training too
        soft, yolo = request.getfixturevalue(shared)
    else:
        soft, yolo = _train(model, data, tmp_path, "eps0.1", label_smoothing=0.1, ls_mode=mode)
    cls_hard = results(hard)["train/cls_loss"].iloc[-1]
    cls_soft = results(soft)["train/cls_loss"].iloc[-1]
    # fg keeps each anchor's target mass, so on a fresh model (near-equal class logits) its effect starts small
    assert cls_soft != cls_hard, "label_smoothing=0.1 did not change the logged cls_loss"
    if mode == "all":
        assert cls_soft - cls_hard > 0.05  # ε/2 on every background target: a large, visible jump
    args = yaml.safe_load((soft / "args.yaml").read_text())
    assert args["label_smoothing"] == 0.1 and args["ls_mode"] == mode
    assert results(soft)["label_smoothing"].tolist() == [0.1]
    # the trainer really installed smoothing in the model's and the EMA's criterion, sharing one ε
    from yolo_ls.core.losses import SmoothedBCEWithLogits
    from yolo_ls.engine.inject import detection_losses

    trainer = yolo.trainer
    for m in (trainer.model, trainer.ema.ema):
        for loss in detection_losses(m.criterion):
            assert isinstance(loss.bce, SmoothedBCEWithLogits) and loss.bce.state is trainer.ls_state
