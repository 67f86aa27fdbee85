"""Tests for yolo_ls.core.schedules: hand-computed values, warmup, purity, validation."""

from __future__ import annotations

import ast
import math
import random
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yolo_ls.core.schedules import (
    SCHEDULES,
    CallableSchedule,
    ConstantSchedule,
    CosineSchedule,
    ExpSchedule,
    LinearSchedule,
    SmoothingSchedule,
    StepSchedule,
    TwoStageSchedule,
    build_schedule,
    fractional_epoch,
)

TOL = 1e-12
SCHEDULES_FILE = str(Path(__file__).resolve().parents[1] / "yolo_ls" / "core" / "schedules.py")


def values(s: SmoothingSchedule, epochs) -> list[float]:
    return [s(e) for e in epochs]


# --- hand-computed values ------------------------------------------------------------------------------------------


def test_constant():
    s = build_schedule("constant", 0.1, 5)
    assert isinstance(s, ConstantSchedule)
    assert values(s, [0, 1, 2.5, 4, 10]) == [0.1] * 5


def test_linear_hand_values():
    s = build_schedule("linear", 0.2, 4, final=0.0)
    assert isinstance(s, LinearSchedule)
    assert values(s, range(4)) == pytest.approx([0.2, 0.2 * 2 / 3, 0.2 / 3, 0.0], abs=TOL)
    # exact endpoints, then holds final past the end
    assert s(0) == 0.2
    assert s(3) == 0.0
    assert s(7.5) == 0.0


def test_linear_ramp_up_and_midpoint():
    s = build_schedule("linear", 0.0, 5, final=0.2)  # span 4
    assert s(2) == pytest.approx(0.1, abs=TOL)
    assert s(1.5) == pytest.approx(0.075, abs=TOL)
    assert s(4) == 0.2


def test_cosine_hand_values():
    s = build_schedule("cosine", 0.2, 5, final=0.0)  # span 4
    assert isinstance(s, CosineSchedule)
    assert s(0) == 0.2
    assert s(2) == pytest.approx(0.1, abs=TOL)  # midpoint: half way
    assert s(1) == pytest.approx(0.2 * 0.5 * (1 + math.cos(math.pi / 4)), abs=TOL)  # 0.170710678...
    assert s(1) == pytest.approx(0.17071067811865476, abs=TOL)
    assert s(4) == 0.0
    assert s(100) == 0.0


def test_cosine_final_nonzero():
    s = build_schedule("cosine", 0.3, 3, final=0.1)  # span 2
    assert values(s, [0, 1, 2]) == pytest.approx([0.3, 0.2, 0.1], abs=TOL)


def test_step_hand_values():
    s = build_schedule("step", 0.2, 6, step_size=2, gamma=0.5)
    assert isinstance(s, StepSchedule)
    assert values(s, range(6)) == pytest.approx([0.2, 0.2, 0.1, 0.1, 0.05, 0.05], abs=TOL)
    assert s(1.99) == pytest.approx(0.2, abs=TOL)
    assert s(2.0) == pytest.approx(0.1, abs=TOL)


def test_exp_hand_values():
    s = build_schedule("exp", 0.2, 5, gamma=0.5, final=0.0)
    assert isinstance(s, ExpSchedule)
    assert values(s, range(4)) == pytest.approx([0.2, 0.1, 0.05, 0.025], abs=TOL)
    assert s(0.5) == pytest.approx(0.2 / math.sqrt(2), abs=TOL)
    s2 = build_schedule("exp", 0.3, 5, gamma=0.5, final=0.1)
    assert values(s2, range(3)) == pytest.approx([0.3, 0.2, 0.15], abs=TOL)
    assert values(build_schedule("exp", 0.3, 5, gamma=1.0), range(5)) == [0.3] * 5


def test_two_stage_hand_values():
    s = build_schedule("two_stage", 0.1, 5, off_epoch=2)
    assert isinstance(s, TwoStageSchedule)
    assert values(s, range(5)) == [0.1, 0.1, 0.0, 0.0, 0.0]
    assert s(1.99) == 0.1
    assert s(2.0) == 0.0


def test_two_stage_off_epoch_3_means_epochs_0_1_2_smoothed():
    s = TwoStageSchedule(0.1, 10, off_epoch=3)
    assert [e for e in range(10) if s(e) > 0] == [0, 1, 2]


def test_case_insensitive_name():
    assert isinstance(build_schedule(" Cosine ", 0.1, 3), CosineSchedule)


# --- warmup --------------------------------------------------------------------------------------------------------


def test_warmup_constant():
    s = build_schedule("constant", 0.1, 10, warmup_epochs=2)
    assert s(0) == 0.0
    assert s(1) == pytest.approx(0.05, abs=TOL)
    assert s(0.5) == pytest.approx(0.025, abs=TOL)
    assert s(2) == 0.1
    assert s(9) == 0.1


def test_warmup_linear_schedule_starts_after_warmup():
    # warmup 0->0.1 over epochs [0, 2); then linear 0.1 -> 0 over span (6-1)-2 = 3 epochs: epochs 2, 3, 4, 5
    s = build_schedule("linear", 0.1, 6, final=0.0, warmup_epochs=2)
    assert values(s, range(6)) == pytest.approx([0.0, 0.05, 0.1, 0.1 * 2 / 3, 0.1 / 3, 0.0], abs=TOL)
    assert s(5) == 0.0


def test_warmup_cosine():
    s = build_schedule("cosine", 0.1, 7, final=0.0, warmup_epochs=2)  # span 4: epochs 2..6
    assert s(1) == pytest.approx(0.05, abs=TOL)
    assert s(2) == 0.1
    assert s(4) == pytest.approx(0.05, abs=TOL)
    assert s(6) == 0.0


def test_warmup_step_counts_from_end_of_warmup():
    s = build_schedule("step", 0.2, 10, step_size=2, gamma=0.5, warmup_epochs=2)
    assert values(s, range(7)) == pytest.approx([0.0, 0.1, 0.2, 0.2, 0.1, 0.1, 0.05], abs=TOL)


def test_warmup_exp():
    s = build_schedule("exp", 0.2, 10, gamma=0.5, warmup_epochs=2)
    assert values(s, range(5)) == pytest.approx([0.0, 0.1, 0.2, 0.1, 0.05], abs=TOL)


def test_warmup_two_stage():
    s = build_schedule("two_stage", 0.1, 6, off_epoch=4, warmup_epochs=2)
    assert values(s, range(6)) == pytest.approx([0.0, 0.05, 0.1, 0.1, 0.0, 0.0], abs=TOL)


def test_warmup_fractional():
    s = build_schedule("constant", 0.1, 5, warmup_epochs=1.5)
    assert s(0.75) == pytest.approx(0.05, abs=TOL)
    assert s(1.5) == 0.1


def test_no_room_for_schedule_sits_at_end_value():
    # span = (3 - 1) - 2 = 0: the schedule proper is at its end value; warmup ramps to it
    s = build_schedule("linear", 0.2, 3, final=0.1, warmup_epochs=2)
    assert s(2) == 0.1
    assert s(1) == pytest.approx(0.05, abs=TOL)
    # one epoch, no warmup: span 0 -> the only epoch is the last one, at final
    assert build_schedule("cosine", 0.2, 1, final=0.05)(0) == 0.05


# --- per-iteration fractional epochs -------------------------------------------------------------------------------


def test_fractional_epoch():
    assert fractional_epoch(1, 50, 100, True) == 1.5
    assert fractional_epoch(1, 50, 100, False) == 1.0
    assert isinstance(fractional_epoch(3, 7, 10, False), float)
    assert fractional_epoch(0, 0, 1, True) == 0.0
    with pytest.raises(ValueError, match="iters_per_epoch"):
        fractional_epoch(0, 0, 0, True)
    with pytest.raises(ValueError, match="iteration"):
        fractional_epoch(0, 100, 100, True)
    with pytest.raises(ValueError, match="iteration"):
        fractional_epoch(0, -1, 100, True)


def test_values_at_fractional_epochs():
    lin = build_schedule("linear", 0.2, 4, final=0.0)
    assert lin(fractional_epoch(1, 50, 100, True)) == pytest.approx(0.1, abs=TOL)
    assert lin(fractional_epoch(1, 50, 100, False)) == pytest.approx(0.2 * 2 / 3, abs=TOL)
    cos = build_schedule("cosine", 0.2, 4, final=0.0)  # span 3, midpoint 1.5
    assert cos(fractional_epoch(1, 50, 100, True)) == pytest.approx(0.1, abs=TOL)
    step = build_schedule("step", 0.2, 6, step_size=2, gamma=0.5)
    assert step(fractional_epoch(1, 99, 100, True)) == pytest.approx(0.2, abs=TOL)
    assert step(fractional_epoch(2, 0, 100, True)) == pytest.approx(0.1, abs=TOL)
    two = build_schedule("two_stage", 0.1, 5, off_epoch=2)
    assert two(fractional_epoch(1, 99, 100, True)) == 0.1
    assert two(fractional_epoch(2, 0, 100, True)) == 0.0


def test_per_iteration_is_monotone_for_decaying_schedules():
    for name in ("linear", "cosine", "step", "exp"):
        s = build_schedule(name, 0.2, 5, final=0.0, step_size=1, gamma=0.5)
        v = [s(fractional_epoch(e, i, 10, True)) for e in range(5) for i in range(10)]
        assert all(a >= b for a, b in zip(v, v[1:])), name


# --- purity / resume-safety ----------------------------------------------------------------------------------------


def _all_schedules(epochs: int = 8) -> list[SmoothingSchedule]:
    return [
        build_schedule("constant", 0.1, epochs, warmup_epochs=1),
        build_schedule("linear", 0.2, epochs, final=0.05, warmup_epochs=1),
        build_schedule("cosine", 0.2, epochs, final=0.0, warmup_epochs=0.5),
        build_schedule("step", 0.2, epochs, step_size=2, gamma=0.7),
        build_schedule("exp", 0.2, epochs, gamma=0.8, final=0.01),
        build_schedule("two_stage", 0.1, epochs, off_epoch=5, warmup_epochs=1),
        build_schedule(lambda e, n: 0.1 * (1 - e / n), 0.1, epochs),
    ]


def test_purity_any_order_and_repeated():
    points = [fractional_epoch(e, i, 4, True) for e in range(8) for i in range(4)]
    for s in _all_schedules():
        forward = [s(p) for p in points]
        shuffled = points[:]
        random.Random(0).shuffle(shuffled)
        by_point = {p: s(p) for p in shuffled}
        assert [by_point[p] for p in points] == forward
        assert [s(p) for p in reversed(points)] == forward[::-1]
        assert [s(p) for p in points] == forward  # repeated calls: identical, no hidden state


def test_resume_fresh_instance_matches():
    # "resuming" = building a new schedule from the same config and jumping straight to epoch 5
    a, b = _all_schedules(), _all_schedules()
    for sa, sb in zip(a, b):
        for p in (5.0, 5.25, 6.0, 7.75):
            assert sb(p) == sa(p)


# --- callable schedules --------------------------------------------------------------------------------------------


def test_callable_valid():
    s = build_schedule(lambda e, n: 0.2 * (1 - e / n), 0.2, 4)
    assert isinstance(s, CallableSchedule)
    assert values(s, [0, 1, 2, 3.5]) == pytest.approx([0.2, 0.15, 0.1, 0.025], abs=TOL)
    assert build_schedule(lambda e, n: 0, 0.1, 3)(1) == 0.0  # int 0 is fine, returned as float
    assert isinstance(build_schedule(lambda e, n: 0, 0.1, 3)(1), float)


def test_callable_receives_epoch_and_epochs():
    seen = []

    def fn(e, n):
        seen.append((e, n))
        return 0.1

    s = build_schedule(fn, 0.1, 7)
    s(fractional_epoch(2, 1, 4, True))
    assert seen == [(2.25, 7)]


@pytest.mark.parametrize("bad", [1.0, 1.5, -0.01, float("nan"), float("inf"), None, "0.1", True])
def test_callable_invalid_return(bad):
    s = build_schedule(lambda e, n: bad, 0.1, 5)
    with pytest.raises(ValueError, match="ls_schedule") as ei:
        s(2.5)
    assert "2.5" in str(ei.value)


def test_callable_warmup_rejected():
    with pytest.raises(ValueError, match="ls_warmup_epochs"):
        build_schedule(lambda e, n: 0.1, 0.1, 5, warmup_epochs=1)


def test_callable_class_requires_callable():
    with pytest.raises(TypeError, match="ls_schedule"):
        CallableSchedule(0.1, 5)  # type: ignore[arg-type]


# --- bad inputs ----------------------------------------------------------------------------------------------------


def test_unknown_name_did_you_mean():
    with pytest.raises(ValueError, match="Did you mean 'cosine'") as ei:
        build_schedule("cosin", 0.1, 5)
    msg = str(ei.value)
    for name in SCHEDULES:
        assert name in msg
    with pytest.raises(ValueError, match="Did you mean 'two_stage'"):
        build_schedule("twostage", 0.1, 5)
    with pytest.raises(ValueError, match="Unknown ls_schedule") as ei:
        build_schedule("zzzzzz", 0.1, 5)
    assert "Did you mean" not in str(ei.value)


def test_schedule_wrong_type():
    with pytest.raises(TypeError, match="ls_schedule"):
        build_schedule(3, 0.1, 5)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["step", "exp"])
@pytest.mark.parametrize("gamma", [0.0, -0.5, 1.5, float("nan")])
def test_gamma_out_of_range(name, gamma):
    with pytest.raises(ValueError, match="ls_gamma"):
        build_schedule(name, 0.1, 5, gamma=gamma)


def test_gamma_ignored_for_other_schedules():
    assert build_schedule("linear", 0.1, 5, gamma=3.0)(0) == 0.1


@pytest.mark.parametrize("step_size", [0, 0.5, -1])
def test_step_size_too_small(step_size):
    with pytest.raises(ValueError, match="ls_step_size"):
        build_schedule("step", 0.1, 5, step_size=step_size)


@pytest.mark.parametrize("name", ["linear", "cosine", "exp"])
@pytest.mark.parametrize("final", [1.0, -0.1, 2.0])
def test_final_out_of_range(name, final):
    with pytest.raises(ValueError, match="ls_final"):
        build_schedule(name, 0.1, 5, final=final)


@pytest.mark.parametrize("warmup", [-1, 5, 6.5])
def test_warmup_out_of_range(warmup):
    with pytest.raises(ValueError, match="ls_warmup_epochs"):
        build_schedule("constant", 0.1, 5, warmup_epochs=warmup)


@pytest.mark.parametrize("eps", [1.0, -0.1, float("nan")])
def test_eps_out_of_range(eps):
    with pytest.raises(ValueError, match="label_smoothing"):
        build_schedule("constant", eps, 5)


@pytest.mark.parametrize("epochs", [0, -3])
def test_epochs_out_of_range(epochs):
    with pytest.raises(ValueError, match="epochs"):
        build_schedule("constant", 0.1, epochs)


def test_epochs_must_be_int():
    with pytest.raises(TypeError, match="epochs"):
        build_schedule("constant", 0.1, 5.0)  # type: ignore[arg-type]


def test_two_stage_missing_off_epoch():
    with pytest.raises(ValueError, match="ls_off_epoch"):
        build_schedule("two_stage", 0.1, 5)


@pytest.mark.parametrize("off", [0, -2])
def test_two_stage_off_epoch_not_positive(off):
    with pytest.raises(ValueError, match="ls_off_epoch"):
        build_schedule("two_stage", 0.1, 5, off_epoch=off)


def test_two_stage_off_epoch_within_warmup():
    with pytest.raises(ValueError, match="ls_warmup_epochs"):
        build_schedule("two_stage", 0.1, 5, off_epoch=2, warmup_epochs=2)


@pytest.mark.parametrize("off", [5, 8])
def test_two_stage_off_epoch_beyond_epochs_warns(off):
    with pytest.warns(UserWarning, match="never switch off"):
        s = build_schedule("two_stage", 0.1, 5, off_epoch=off)
    assert values(s, range(5)) == [0.1] * 5


def test_two_stage_no_warning_when_in_range():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_schedule("two_stage", 0.1, 5, off_epoch=4)


@pytest.mark.parametrize("epoch", [-0.5, float("nan"), float("inf")])
def test_bad_epoch(epoch):
    for s in _all_schedules():
        with pytest.raises(ValueError, match="epoch"):
            s(epoch)


# --- plan ----------------------------------------------------------------------------------------------------------


def test_plan_length_and_endpoints():
    s = build_schedule("linear", 0.2, 4, final=0.0)
    p = s.plan()
    assert len(p) == 4
    assert p[0] == (0.0, 0.2)
    assert p[-1] == (3.0, 0.0)
    assert [e for e, _ in p] == [0.0, 1.0, 2.0, 3.0]

    p4 = s.plan(points_per_epoch=4)
    assert len(p4) == 16
    assert p4[0] == (0.0, 0.2)
    assert p4[-1][0] == 3.75
    assert p4[-1][1] == 0.0  # past the span: holds final
    assert p4[6] == (fractional_epoch(1, 2, 4, True), s(1.5))


def test_plan_bad_points():
    with pytest.raises(ValueError, match="points_per_epoch"):
        build_schedule("constant", 0.1, 3).plan(0)


def test_repr_mentions_params():
    assert "final=0.05" in repr(build_schedule("linear", 0.2, 4, final=0.05))
    assert "off_epoch=2" in repr(build_schedule("two_stage", 0.2, 4, off_epoch=2))


@pytest.mark.slow
def test_module_is_pure_stdlib():
    # Load the file on its own (not via the yolo_ls package, whose __init__ imports ultralytics) with torch,
    # ultralytics and numpy made unimportable: it must still import and work.
    code = (
        "import sys, importlib.util\n"
        "for m in ('torch', 'ultralytics', 'numpy'): sys.modules[m] = None\n"
        f"spec = importlib.util.spec_from_file_location('schedules_standalone', {SCHEDULES_FILE!r})\n"
        "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
        "assert mod.build_schedule('cosine', 0.1, 3)(0) == 0.1\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    tree = ast.parse(Path(SCHEDULES_FILE).read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= {"__future__", "collections", "difflib", "math", "warnings", "yolo_ls"}, imported
    from_yolo_ls = {n.module for n in ast.walk(tree)
                    if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("yolo_ls")}
    assert from_yolo_ls == {"yolo_ls.core.checks"}  # the argument checks: standard library only, like this module


# --- property test -------------------------------------------------------------------------------------------------

unit = st.floats(min_value=0.0, max_value=1.0, exclude_max=True, allow_nan=False)


@st.composite
def schedule_params(draw):
    name = draw(st.sampled_from([s for s in SCHEDULES if s != "auto"]))  # auto follows measurements
    epochs = draw(st.integers(min_value=1, max_value=50))
    warmup = draw(st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=epochs, exclude_max=True)))
    kwargs = dict(
        final=draw(unit),
        warmup_epochs=warmup,
        step_size=draw(st.integers(1, 20)),  # ls_step_size is an integer (the argument table says so)
        gamma=draw(st.floats(min_value=0.0, max_value=1.0, exclude_min=True)),
    )
    if name == "two_stage":
        # strictly after warmup; may exceed epochs (that only warns)
        kwargs["off_epoch"] = warmup + draw(st.floats(min_value=1e-3, max_value=epochs + 5.0))
    return name, draw(unit), epochs, kwargs


@settings(max_examples=300, deadline=None)
@given(schedule_params(), st.integers(min_value=1, max_value=8))
def test_property_values_in_unit_interval(params, points):
    name, eps, epochs, kwargs = params
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        s = build_schedule(name, eps, epochs, **kwargs)
    plan = s.plan(points)
    assert len(plan) == epochs * points
    for e, v in plan:
        assert 0.0 <= v < 1.0, (name, e, v)
        assert math.isfinite(v)
    assert s(epochs + 3.0) < 1.0  # past the end too
