"""``best_by`` / ``tune_objective`` / ``fitness_tol``: the pure selection rules, the argument checks, and a tiny real
training whose best.pt must be the epoch the rule picks from results.csv (and must stay so across a resume)."""

from __future__ import annotations

import math

import pytest
import torch

from tests.helpers import NO_FIGURES, TINY_CLS, results
from yolo_ls.core.args import PluginArgumentError, resolve_plugin_args
from yolo_ls.core.objective import best_step, new_best_state, objective_scores, pick_best, ray_metric

NAN = math.nan


def _online(fitness, values, tol):
    """Run best_step over a whole sequence; return the epochs chosen along the way."""
    state, chosen = new_best_state(), []
    for epoch, (f, v) in enumerate(zip(fitness, values)):
        state, c = best_step(state, epoch, f, v, tol)
        if c:
            chosen.append(epoch)
    return state, chosen


@pytest.mark.parametrize(
    "fitness,values,tol,expected_chosen",
    [
        # no tolerance: the running argmin of the value, ties keep the earlier epoch
        ([0.1, 0.2, 0.3, 0.4], [3.0, 2.0, 2.0, 2.5], None, [0, 1]),
        # tolerance 0.05: epoch 1 (0.50) is within 0.05 of the best so far (0.52), epoch 3 (0.40) is not
        ([0.52, 0.50, 0.53, 0.40], [1.0, 0.5, 0.9, 0.1], 0.05, [0, 1]),
        # a jump in fitness pushes the held epoch (fitness 0.5) out of the tolerance: the jumping epoch takes over
        ([0.50, 0.49, 0.80, 0.79], [1.0, 0.5, 0.9, 0.7], 0.02, [0, 1, 2, 3]),
        # NaN values count as +inf; a non-finite fitness is skipped
        ([0.5, NAN, 0.5, 0.5], [NAN, 0.1, 0.3, NAN], None, [0, 2]),
        # tolerance 0: only epochs that equal the best fitness so far
        ([0.5, 0.6, 0.6, 0.55], [1.0, 2.0, 1.5, 0.1], 0.0, [0, 1, 2]),
    ],
)
def test_best_step_follows_the_documented_rule(fitness, values, tol, expected_chosen):
    state, chosen = _online(fitness, values, tol)
    assert chosen == expected_chosen
    assert state["epoch"] == expected_chosen[-1]
    assert state["top_fitness"] == max(f for f in fitness if math.isfinite(f))


def test_best_step_state_is_plain_and_resumable():
    fitness, values = [0.5, 0.6, 0.58, 0.7, 0.69], [2.0, 1.0, 0.5, 0.8, 0.3]
    full, chosen = _online(fitness, values, 0.03)
    state, _ = _online(fitness[:2], values[:2], 0.03)
    state = {k: float(v) if isinstance(v, float) else v for k, v in state.items()}  # as a checkpoint holds it
    for epoch in range(2, 5):
        state, _ = best_step(state, epoch, fitness[epoch], values[epoch], 0.03)
    assert state == full and chosen == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    "fitness,values,objective,tol,expected",
    [
        ([0.2, 0.9, 0.5], [0.1, 0.2, 0.3], "fitness", None, 1),  # Ultralytics' argmax, values ignored
        ([0.9, 0.9, 0.5], [0.1, 0.2, 0.3], "fitness", None, 0),  # first of ties, as numpy's argmax
        ([0.2, 0.9, 0.5], [0.3, 0.2, 0.1], "nll", None, 2),  # plain argmin
        ([0.2, 0.9, 0.5], [0.3, 0.2, 0.1], "nll", 0.1, 1),  # only iteration 1 is within 0.1 of 0.9
        ([0.85, 0.9, 0.5], [0.15, 0.2, 0.1], "ece", 0.1, 0),  # 0 and 1 eligible, 0 has the lower ECE
        ([0.85, 0.9, 0.5], [NAN, NAN, 0.1], "ece", 0.1, 0),  # eligible but unmeasured: the first eligible one
        ([NAN, 0.3, 0.4], [0.0, 0.5, 0.6], "brier", None, 1),  # non-finite fitness is never picked
    ],
)
def test_pick_best_over_a_hand_made_history(fitness, values, objective, tol, expected):
    assert pick_best(fitness, values, objective, tol) == expected


def test_objective_scores_rank_eligible_first_and_stay_finite():
    fitness, values = [0.9, 0.5, 0.88, 0.2, NAN], [0.3, 0.01, 0.2, 0.02, 0.0]
    scores = objective_scores(fitness, values, "nll", 0.05)
    assert all(math.isfinite(s) for s in scores)
    order = sorted(range(5), key=lambda i: -scores[i])
    assert order == [2, 0, 1, 3, 4]  # eligible by value, then the rest by fitness, then no fitness


def test_last_epoch_of_online_rule_matches_offline_pick_when_no_jump():
    """Without a fitness jump that evicts the held epoch, the online choice is the offline argmin."""
    fitness, values = [0.60, 0.62, 0.61, 0.62, 0.60], [0.9, 0.8, 0.5, 0.7, 0.4]
    for tol in (None, 0.0, 0.01, 0.02):
        state, _ = _online(fitness, values, tol)
        assert state["epoch"] == pick_best(fitness, values, "nll", tol)


def test_ray_metric():
    assert ray_metric("fitness", None, "metrics/accuracy_top1") == ("metrics/accuracy_top1", "max")
    assert ray_metric("nll", None, "metrics/accuracy_top1") == ("calib/nll", "min")
    assert ray_metric("ece", 0.01, "metrics/mAP50-95(B)") == ("metrics/mAP50-95(B)", "max")


@pytest.mark.parametrize(
    "given,task,message",
    [
        ({"best_by": "nl"}, "classify", "Did you mean 'nll'?"),
        ({"best_by": "nll"}, "detect", "'best_by=nll' is a classification metric and does not apply to task 'detect'"),
        ({"tune_objective": "d_ece"}, "classify", "'tune_objective=d_ece' is a detection metric"),
        ({"best_by": "ece", "calibration": False}, "classify", "keep calibration=True"),
        ({"fitness_tol": -0.1}, "classify", "'fitness_tol=-0.1' is an invalid value"),
        ({"fitness_tol": "0.1"}, "classify", "None or floats between 0.0"),
    ],
)
def test_bad_objective_arguments_are_refused(given, task, message):
    with pytest.raises(PluginArgumentError) as e:
        resolve_plugin_args(given, task)
    assert message in str(e.value)


def test_objective_arguments_resolve():
    out = resolve_plugin_args({"best_by": "d_ece", "fitness_tol": 0.01}, "detect")
    assert (out["best_by"], out["fitness_tol"], out["tune_objective"]) == ("d_ece", 0.01, "fitness")
    assert resolve_plugin_args({}, "classify")["fitness_tol"] is None


def test_train_refuses_bad_best_by_before_writing(tmp_path):
    from yolo_ls import YOLO

    with pytest.raises(PluginArgumentError, match="does not apply to task 'classify'"):
        YOLO("yolo11n-cls.yaml").train(data="unused", project=str(tmp_path / "runs"), best_by="d_ece")
    assert not (tmp_path / "runs").exists()


# ------------------------------------------------------------------------------------------------ real training
def _reference_best_epoch(df, metric: str, tol):
    """An independent reading of the rule from results.csv: walk the epochs, keep the held one."""
    fitness = ((df["metrics/accuracy_top1"] + df["metrics/accuracy_top5"]) / 2).tolist()  # ClassifyMetrics.fitness
    values = df[f"calib/{metric}"].tolist()
    held, top = None, -math.inf
    for i, (f, v) in enumerate(zip(fitness, values)):
        top = max(top, f)

        def eligible(x, top=top):
            return tol is None or x >= top - tol

        if eligible(f) and (held is None or not eligible(fitness[held]) or v < values[held]):
            held = i
    return held


def _ckpt(path):
    return torch.load(path, map_location="cpu", weights_only=False)


@pytest.fixture(scope="module")
def nll_run(tmp_path_factory, digits_root):
    from yolo_ls import YOLO

    project = tmp_path_factory.mktemp("best_by")
    YOLO("yolo11n-cls.yaml").train(data=str(digits_root), project=str(project), name="nll", best_by="nll",
                                   fitness_tol=0.04, save_period=1,
                                   **{**TINY_CLS, **NO_FIGURES, "epochs": 4, "fraction": 0.5})
    return project / "nll"


@pytest.mark.training
def test_best_pt_is_the_epoch_the_rule_picks(nll_run):
    df = results(nll_run)
    expected = _reference_best_epoch(df, "nll", 0.04)
    best = _ckpt(nll_run / "weights" / "best.pt")
    assert best["ema"] is None and best["model"].yolo_ls["state"]["best"]["epoch"] == expected
    # best.pt's own metrics are that epoch's row of results.csv (its NLL, its accuracy)
    assert best["train_metrics"]["calib/nll"] == pytest.approx(df["calib/nll"][expected], abs=1e-5)
    assert best["train_metrics"]["metrics/accuracy_top1"] == pytest.approx(df["metrics/accuracy_top1"][expected],
                                                                           abs=1e-5)
    state = _ckpt(nll_run / "weights" / "last.pt")["model"].yolo_ls["state"]["best"]
    assert state["value"] == pytest.approx(df["calib/nll"][expected], abs=1e-5)
    top = ((df["metrics/accuracy_top1"] + df["metrics/accuracy_top5"]) / 2).max()
    assert state["top_fitness"] == pytest.approx(top, abs=1e-5)


@pytest.mark.training
def test_best_by_state_survives_resume(nll_run, tmp_path):
    """Resume from epoch1.pt with a held best no later epoch can beat: best.pt must not be rewritten. A resume that
    lost the state would take its first epoch as best.pt."""
    import shutil

    from yolo_ls import YOLO

    run = tmp_path / "nll"
    shutil.copytree(nll_run, run)
    ckpt_path = run / "weights" / "epoch1.pt"
    ckpt = _ckpt(ckpt_path)
    ckpt["train_args"]["save_dir"] = str(run)
    ckpt["ema"].yolo_ls["state"]["best"] = {"epoch": 0, "value": -1.0, "fitness": 1.0, "top_fitness": 1.0}
    torch.save(ckpt, ckpt_path)
    before = _ckpt(run / "weights" / "best.pt")
    YOLO(str(ckpt_path)).train(resume=str(ckpt_path), device="cpu", workers=0)
    after = _ckpt(run / "weights" / "best.pt")  # final_eval re-strips it, but no resumed epoch may replace it
    assert after["train_metrics"] == before["train_metrics"]
    assert after["model"].yolo_ls["state"]["best"] == before["model"].yolo_ls["state"]["best"]
    state = _ckpt(run / "weights" / "last.pt")["model"].yolo_ls["state"]["best"]
    assert state["epoch"] == 0 and state["value"] == -1.0
    assert len(results(run)) == 4
