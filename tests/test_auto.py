"""ls_schedule=auto: the controller on synthetic readings, its checkpoint round trip, and a tiny real training."""

from __future__ import annotations

import json
import math

import pytest

from tests.helpers import NO_FIGURES, TINY_CLS, results
from yolo_ls.core.args import PluginArgumentError, build_schedule_from_args, resolve_plugin_args
from yolo_ls.core.auto import AutoSchedule, auto_update, gain_factor
from yolo_ls.core.schedules import build_schedule

K10 = 10 / 9  # the uniform factor K/(K-1) at K = 10


def test_update_moves_eps_down_when_underconfident_and_up_when_overconfident():
    # K=10, uniform: ε += 0.5 · (confidence - accuracy) · 10/9
    assert auto_update(0.1, confidence=0.91, accuracy=0.98, factor=K10) == pytest.approx(0.1 - 0.5 * 0.07 * 10 / 9)
    assert auto_update(0.1, confidence=0.96, accuracy=0.93, factor=K10) == pytest.approx(0.1 + 0.5 * 0.03 * 10 / 9)
    assert auto_update(0.1, 0.9, 0.9, K10) == 0.1  # calibrated: ε stays


def test_update_stays_within_bounds_and_ignores_missing_readings():
    assert auto_update(0.02, confidence=0.5, accuracy=0.99, factor=K10) == 0.0
    assert auto_update(0.25, confidence=0.99, accuracy=0.5, factor=K10, eps_max=0.3) == 0.3
    assert auto_update(0.1, math.nan, 0.9, K10) == 0.1
    sched = AutoSchedule(0.1, eps_max=0.2, factor=K10)
    for conf, acc in [(0.99, 0.5)] * 5 + [(0.2, 0.99)] * 5:
        assert 0.0 <= sched.update(0, conf, acc) <= 0.2


def test_gain_factor_is_the_inverse_drop_of_each_modes_true_class_target():
    # Hand-derived: the true-class target is 1 - ε/factor for each mode.
    assert gain_factor("uniform", 10) == pytest.approx(10 / 9)
    assert gain_factor("fg", 4) == pytest.approx(4 / 3)
    assert gain_factor("exclusive", 2) == 1.0 and gain_factor("positive", 80) == 1.0
    assert gain_factor("all", 80) == 2.0
    assert gain_factor("uniform", 1) == 1.0
    # prior q = [0.5, 0.25, 0.25] with labels distributed as q: E[1 - q_y] = 1 - (0.25 + 0.0625 + 0.0625) = 0.625
    assert gain_factor("prior", 3, prior=[2, 1, 1]) == pytest.approx(1 / 0.625)
    # with a uniform training distribution instead: E[1 - q_y] = 1 - 1/3
    assert gain_factor("prior", 3, prior=[2, 1, 1], frequencies=[1, 1, 1]) == pytest.approx(1.5)


def _smoothed_top_target(mode: str, k: int, eps: float, prior=None) -> float:
    """The mean true-class target of each mode, written out from its definition (independent of gain_factor)."""
    if mode in ("uniform", "fg"):
        return 1 - eps + eps / k
    if mode in ("exclusive", "positive"):
        return 1 - eps
    if mode == "all":
        return 1 - eps / 2
    if mode in ("matrix", "online"):  # prior holds the matrix here; labels uniform
        return sum(1 - eps + eps * row[y] / sum(row) for y, row in enumerate(prior)) / k
    q = [p / sum(prior) for p in prior]
    return sum(qy * (1 - eps + eps * qy) for qy in q)


@pytest.mark.parametrize("mode,k,prior", [("uniform", 10, None), ("exclusive", 2, None), ("prior", 3, [2, 1, 1]),
                                          ("fg", 5, None), ("all", 80, None), ("positive", 80, None),
                                          ("matrix", 3, [[2, 1, 1], [1, 1, 2], [1, 1, 0]]),
                                          ("online", 3, [[0.8, 0.1, 0.1], [0.3, 0.6, 0.1], [0.2, 0.2, 0.6]])])
@pytest.mark.parametrize("gain", [0.05, 0.25, 0.5, 0.75, 1.0])
def test_idealised_model_converges_without_oscillation_for_every_mode_and_gain(mode, k, prior, gain):
    # An idealised model whose confidence equals its smoothed target and whose accuracy is fixed at 0.92: the fixed
    # point is the ε whose target confidence is 0.92. The error must shrink every epoch and never change sign.
    accuracy = 0.92
    matrix = prior if mode in ("matrix", "online") else None
    factor = gain_factor(mode, k, None if matrix else prior, matrix=matrix)
    sched = AutoSchedule(0.0, eps_max=0.99, gain=gain, factor=factor)
    fixed = min((e / 10000 for e in range(9900)), key=lambda e: abs(_smoothed_top_target(mode, k, e, prior) - accuracy))
    errors = []
    for epoch in range(300):
        errors.append(sched.current - fixed)
        sched.update(epoch, _smoothed_top_target(mode, k, sched.current, prior), accuracy)
    assert abs(sched.current - fixed) < 2e-3
    signs = {math.copysign(1, e) for e in errors if abs(e) > 2e-3}
    assert len(signs) <= 1, f"oscillates: {errors[:6]}"
    big = [abs(e) for e in errors if abs(e) > 2e-3]
    assert all(b <= a + 1e-12 for a, b in zip(big, big[1:]))


def test_state_round_trips_through_a_checkpoint_dict(tmp_path):
    a = AutoSchedule(0.1, factor=K10)
    for epoch, (conf, acc) in enumerate([(0.9, 0.95), (0.97, 0.9), (0.8, 0.85)]):
        a.update(epoch, conf, acc)
    path = tmp_path / "state.json"
    path.write_text(json.dumps(a.state_dict()))  # the checkpoint stores it as plain data
    b = AutoSchedule(0.1, factor=K10)
    b.load_state_dict(json.loads(path.read_text()))
    assert b(5.0) == a(5.0) == a.current and b.history == a.history
    assert b.update(3, 0.9, 0.8) == a.update(3, 0.9, 0.8)


def test_auto_arguments_are_validated():
    args = resolve_plugin_args({"ls_schedule": "auto", "label_smoothing": 0.1}, "classify")
    assert isinstance(build_schedule_from_args(args, 10), AutoSchedule)
    with pytest.raises(PluginArgumentError, match="ls_max"):
        build_schedule_from_args({**args, "label_smoothing": 0.4}, 10)
    with pytest.raises(ValueError, match="yolo_ls.core.auto"):
        build_schedule("auto", 0.1, 10)  # not a function of the epoch: schedules.py does not build it
    with pytest.raises(PluginArgumentError, match="calibration=True"):
        resolve_plugin_args({"ls_schedule": "auto", "calibration": False}, "classify")
    with pytest.raises(PluginArgumentError, match="train_holdout"):
        resolve_plugin_args({"ls_schedule": "auto", "ls_auto_split": "train_holdout"}, "detect")
    with pytest.raises(PluginArgumentError, match="ls_auto_holdout"):
        resolve_plugin_args({"ls_auto_holdout": 0.9}, "classify")
    with pytest.raises(PluginArgumentError, match="ls_auto_gain"):
        resolve_plugin_args({"ls_auto_gain": 1.5}, "classify")  # > 1 overshoots the fixed point


@pytest.mark.training
@pytest.mark.parametrize("split", ["val", "train_holdout"])
def test_auto_training_moves_eps_the_way_overconfidence_says(tmp_path, digits_root, split):
    from yolo_ls import YOLO

    model = YOLO("yolo11n-cls.yaml")
    model.train(**{**TINY_CLS, **NO_FIGURES, "data": str(digits_root), "project": str(tmp_path), "name": "auto",
                   "epochs": 3, "label_smoothing": 0.1, "ls_schedule": "auto", "ls_auto_split": split,
                   "ls_auto_gain": 1.0})
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
        holdout = model.trainer.ls_auto.holdout
        held, trained = len(holdout), len(model.trainer.train_loader.dataset)
        assert held == round(0.1 * (held + trained))  # a fixed 10% of train, no longer trained on
        files = {s[0] for s in holdout.dataset.samples}
        assert not files & {s[0] for s in model.trainer.train_loader.dataset.samples}
