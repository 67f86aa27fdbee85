"""ls_schedule=auto: the controller on synthetic readings, its checkpoint round trip, and a tiny real training."""

from __future__ import annotations

import json
import math

import pytest

from tests.helpers import TINY_CLS, results
from yolo_ls.config import PluginArgumentError, resolve_plugin_args
from yolo_ls.schedules import AutoSchedule, auto_update, build_schedule


def test_update_moves_eps_down_when_underconfident_and_up_when_overconfident():
    # K=10: ε += 0.5 · (confidence - accuracy) · 10/9
    assert auto_update(0.1, confidence=0.91, accuracy=0.98, num_classes=10) == pytest.approx(0.1 - 0.5 * 0.07 * 10 / 9)
    assert auto_update(0.1, confidence=0.96, accuracy=0.93, num_classes=10) == pytest.approx(0.1 + 0.5 * 0.03 * 10 / 9)
    assert auto_update(0.1, 0.9, 0.9, 10) == 0.1  # calibrated: ε stays


def test_update_stays_within_bounds_and_ignores_missing_readings():
    assert auto_update(0.02, confidence=0.5, accuracy=0.99, num_classes=10) == 0.0
    assert auto_update(0.25, confidence=0.99, accuracy=0.5, num_classes=10, eps_max=0.3) == 0.3
    assert auto_update(0.1, math.nan, 0.9, 10) == 0.1
    sched = AutoSchedule(0.1, 20, eps_max=0.2)
    for conf, acc in [(0.99, 0.5)] * 5 + [(0.2, 0.99)] * 5:
        assert 0.0 <= sched.update(0, conf, acc, 10) <= 0.2


def test_state_round_trips_through_a_checkpoint_dict(tmp_path):
    a = AutoSchedule(0.1, 10)
    for epoch, (conf, acc) in enumerate([(0.9, 0.95), (0.97, 0.9), (0.8, 0.85)]):
        a.update(epoch, conf, acc, 10)
    path = tmp_path / "state.json"
    path.write_text(json.dumps(a.state_dict()))  # the checkpoint stores it as plain data
    b = AutoSchedule(0.1, 10)
    b.load_state_dict(json.loads(path.read_text()))
    assert b(5.0) == a(5.0) == a.current and b.history == a.history
    assert b.update(3, 0.9, 0.8, 10) == a.update(3, 0.9, 0.8, 10)


def test_auto_arguments_are_validated():
    assert isinstance(build_schedule("auto", 0.1, 10, eps_max=0.3), AutoSchedule)
    with pytest.raises(ValueError, match="ls_max"):
        build_schedule("auto", 0.4, 10, eps_max=0.3)
    with pytest.raises(PluginArgumentError, match="calibration=True"):
        resolve_plugin_args({"ls_schedule": "auto", "calibration": False}, "classify")
    with pytest.raises(PluginArgumentError, match="train_holdout"):
        resolve_plugin_args({"ls_schedule": "auto", "ls_auto_split": "train_holdout"}, "detect")
    with pytest.raises(PluginArgumentError, match="ls_auto_holdout"):
        resolve_plugin_args({"ls_auto_holdout": 0.9}, "classify")


@pytest.mark.training
@pytest.mark.parametrize("split", ["val", "train_holdout"])
def test_auto_training_moves_eps_the_way_overconfidence_says(tmp_path, digits_root, split):
    from yolo_ls import YOLO

    model = YOLO("yolo11n-cls.yaml")
    model.train(**{**TINY_CLS, "data": str(digits_root), "project": str(tmp_path), "name": "auto", "epochs": 3,
                   "label_smoothing": 0.1, "ls_schedule": "auto", "ls_auto_split": split, "ls_auto_gain": 1.0})
    run = tmp_path / "auto"
    eps = results(run)["label_smoothing"].tolist()
    history = model.trainer.ls_schedule.history
    assert len(history) == 3
    assert eps == pytest.approx([h["eps"] for h in history], abs=1e-6)
    assert len(set(eps)) > 1, "ε never moved"
    for h in history:
        gap = h["confidence"] - h["accuracy"]
        step = h["next_eps"] - h["eps"]
        if h["next_eps"] in (0.0, 0.3):  # clipped at a bound
            continue
        assert math.copysign(1, step) == math.copysign(1, gap), h
    if split == "val":  # the readings are the logged calibration of the val split
        logged = results(run)["calib/overconfidence"].tolist()
        assert [h["confidence"] - h["accuracy"] for h in history] == pytest.approx(logged, abs=1e-4)
    else:
        held, trained = len(model.trainer.ls_holdout), len(model.trainer.train_loader.dataset)
        assert held == round(0.1 * (held + trained))  # a fixed 10% of train, no longer trained on
        files = {s[0] for s in model.trainer.ls_holdout.samples}
        assert not files & {s[0] for s in model.trainer.train_loader.dataset.samples}
