"""``yolo_ls.YOLO.tune()``: Ultralytics' Tuner with plugin arguments fixed or in ``space``, every iteration trained
through yolo-ls, plugin ranges checked before the first iteration."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import ultralytics.engine.trainer as engine_trainer
import yaml

from tests.helpers import ROOT, results
from yolo_ls.core.args import PluginArgumentError, resolve_plugin_args

# model.tune() through yolo-ls needs the trainer's CLI-command hook (ultralytics 8.4); earlier releases refuse it
NEEDS_TUNE_HOOK = pytest.mark.skipif(not hasattr(engine_trainer, "_YOLO_CLI_COMMAND"), reason="no hook before 8.4")


def _tune(tmp_path, **kwargs):
    from yolo_ls import YOLO

    args = dict(data="unused", epochs=2, imgsz=32, project=str(tmp_path / "runs"), name="tune", device="cpu")
    return YOLO("yolo11n-cls.yaml").tune(iterations=1, **{**args, **kwargs})


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        ({"space": {"label_smoothing": (0.0, 1.2)}}, PluginArgumentError,
         "space['label_smoothing']=(0.0, 1.2) reaches outside what 'label_smoothing' allows: 'label_smoothing=1.2'"),
        ({"space": {"label_smoothing": (-0.1, 0.2)}}, PluginArgumentError, "'label_smoothing=-0.1' is an invalid"),
        ({"space": {"label_smoothing": (0.2, 0.1)}}, PluginArgumentError, "min 0.2 is above max 0.1"),
        ({"space": {"label_smoothing": "0.1"}}, PluginArgumentError, "Give (min, max) or (min, max, gain)"),
        ({"space": {"ls_schedule": (0, 1)}}, PluginArgumentError, "'ls_schedule' is not numeric"),
        ({"space": {"ls_step_size": (1.2, 1.8)}, "ls_schedule": "step"}, PluginArgumentError, "no integer value"),
        ({"space": {"ls_step_size": (0, 3)}, "ls_schedule": "step"}, PluginArgumentError, "'ls_step_size=0' is an"),
        ({"space": {"label_smothing": (0.0, 0.1)}}, SyntaxError, "Similar arguments are i.e. ['label_smoothing"),
        ({"ls_schedule": "two_stage"}, PluginArgumentError, "off_epoch"),
        ({"ls_mode": "fg"}, PluginArgumentError, "'ls_mode=fg' is a detection mode"),
        ({"ls_schedule": "cosnie"}, PluginArgumentError, "Did you mean 'cosine'?"),
        ({"ls_schedule": lambda e, n: 0.1}, PluginArgumentError, "callable 'ls_schedule' cannot reach"),
        ({"space": {"ls_gamma": (0.0, 0.9)}, "ls_schedule": "exp"}, PluginArgumentError, "'ls_gamma=0.0' is an"),
    ],
)
def test_bad_plugin_tuning_arguments_are_refused_before_anything_is_written(tmp_path, kwargs, error, message):
    with pytest.raises(error) as e:
        _tune(tmp_path, **kwargs)
    assert message in str(e.value)
    assert not (tmp_path / "runs").exists()


@NEEDS_TUNE_HOOK
def test_plugin_keys_reach_the_tuner_and_int_keys_are_rounded(tmp_path):
    from ultralytics import YOLO as StockYOLO

    from yolo_ls.tune.tuner import Tuner

    model = StockYOLO("yolo11n-cls.yaml")
    args = {**model.overrides, "data": "x", "epochs": 4, "project": str(tmp_path), "mode": "train",
            "space": {"label_smoothing": (0.0, 0.2), "ls_step_size": (0.5, 3.5), "lr0": (1e-4, 1e-2)},
            "ls_schedule": "step", "ls_gamma": 0.7}
    tuner = Tuner(args=args, model=model.model)
    assert tuner.args.label_smoothing == 0.0 and tuner.args.ls_step_size == 1  # the defaults iteration 1 uses
    assert tuner.args.ls_schedule == "step" and tuner.args.ls_gamma == 0.7
    assert tuner._mutate() == {"label_smoothing": 0.0, "ls_step_size": 1, "lr0": tuner.args.lr0}
    hyp = tuner._constrain({"label_smoothing": 0.31, "ls_step_size": 2.6, "lr0": 0.5})
    assert hyp == {"label_smoothing": 0.2, "ls_step_size": 3, "lr0": 1e-2} and isinstance(hyp["ls_step_size"], int)
    assert tuner._constrain({"label_smoothing": 0.0, "ls_step_size": 0.6, "lr0": 1e-3})["ls_step_size"] == 1


@NEEDS_TUNE_HOOK
def test_every_iteration_is_a_yolo_ls_subprocess(tmp_path, digits_root, monkeypatch):
    """Ultralytics' MultiTrainer runs each iteration as a CLI subprocess: it must be 'python -m yolo_ls train ...'."""
    import ultralytics.engine.trainer as engine_trainer

    from yolo_ls import YOLO

    commands = []

    def fake_run(cmd, check):
        commands.append(list(cmd))
        assert engine_trainer._YOLO_CLI_COMMAND[:3] == [sys.executable, "-m", "yolo_ls"]
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(engine_trainer.subprocess, "run", fake_run)
    stock_command = list(engine_trainer._YOLO_CLI_COMMAND)
    YOLO("yolo11n-cls.yaml").tune(data=str(digits_root), epochs=2, imgsz=32, iterations=1, plots=False,
                                  project=str(tmp_path), name="tune", space={"label_smoothing": (0.0, 0.2)},
                                  ls_schedule="cosine")
    [cmd] = commands
    assert cmd[:4] == [sys.executable, "-m", "yolo_ls", "train"]
    assert {"label_smoothing=0.0", "ls_schedule=cosine", f"data={digits_root}", "epochs=2"} <= set(cmd)
    assert engine_trainer._YOLO_CLI_COMMAND == stock_command  # restored after the tune


def _iteration_warnings(cmd: list[str], environ: dict[str, str], monkeypatch) -> list[str]:
    """The warnings a yolo-ls trainer gives for an iteration's ``k=v`` arguments, in that iteration's environment,
    from the checks it runs before Ultralytics makes a run folder (nothing trains)."""
    from ultralytics.cfg import parse_key_value_pair
    from ultralytics.utils import DEFAULT_CFG

    from yolo_ls.engine import trainers

    warnings: list[str] = []
    monkeypatch.setattr(trainers.LOGGER, "warning", lambda msg, *a, **k: warnings.append(str(msg)))
    overrides = dict(parse_key_value_pair(a) for a in cmd[4:])
    with monkeypatch.context() as m:
        m.delenv("YOLO_LS_TUNED_KEYS", raising=False)
        for k, v in environ.items():
            m.setenv(k, v)
        trainers.LabelSmoothingMixin._check_run(trainers.ClassificationTrainer, DEFAULT_CFG, overrides)
    return warnings


@NEEDS_TUNE_HOOK
@pytest.mark.parametrize(
    "space,fixed,warned",
    [
        ({"label_smoothing": (0.0, 0.2)}, {"ls_schedule": "cosine"}, False),  # ε searched: iteration 1's 0 is a point
        ({"ls_final": (0.0, 0.1)}, {"ls_schedule": "cosine"}, False),  # the ramp's end searched
        ({"lr0": (1e-4, 1e-2)}, {"ls_schedule": "cosine"}, True),  # ε fixed at 0 with a schedule: it never smooths
        ({"ls_final": (0.0, 0.1)}, {"ls_schedule": "step"}, True),  # step reads no ls_final: ε is still fixed at 0
    ],
)
def test_never_smooths_is_warned_only_for_a_fixed_zero_eps(tmp_path, digits_root, monkeypatch, space, fixed, warned):
    """Iteration 1 trains every searched key at its default (ε=0.0): 'ls_schedule=cosine with label_smoothing=0.0
    never smooths' is true only where ε is fixed. The iteration's own arguments and environment, through the checks
    its trainer runs (the Tuner tells the iterations which plugin keys it searches; nothing trains here)."""
    import ultralytics.engine.trainer as engine_trainer

    from yolo_ls import YOLO
    from yolo_ls.core.args import TUNED_KEYS_ENV

    iterations = []
    monkeypatch.delenv(TUNED_KEYS_ENV, raising=False)
    monkeypatch.setattr(engine_trainer.subprocess, "run", lambda cmd, check: iterations.append(
        (list(cmd), {k: v for k, v in os.environ.items() if k == TUNED_KEYS_ENV})))
    YOLO("yolo11n-cls.yaml").tune(data=str(digits_root), epochs=2, imgsz=32, iterations=1, plots=False,
                                  project=str(tmp_path), name="tune", space=space, **fixed)
    [(cmd, environ)] = iterations
    assert environ == {TUNED_KEYS_ENV: ",".join(k for k in space if k != "lr0")}
    assert TUNED_KEYS_ENV not in os.environ  # only while the iterations run
    never = [w for w in _iteration_warnings(cmd, environ, monkeypatch) if "never smooths" in w]
    assert bool(never) == warned, never
    if warned:
        [line] = never
        assert line.endswith(f" ls_schedule={fixed['ls_schedule']} with label_smoothing=0.0 never smooths: set "
                             "label_smoothing to the start value.")


def test_tuned_keys_read_only_plugin_keys():
    from yolo_ls.core.args import inapplicable_args, tuned_keys

    assert tuned_keys({}) == frozenset() and tuned_keys({"YOLO_LS_TUNED_KEYS": ""}) == frozenset()
    assert tuned_keys({"YOLO_LS_TUNED_KEYS": "label_smoothing, ls_final,lr0,nope"}) == {"label_smoothing", "ls_final"}
    given = {"ls_schedule": "exp", "label_smoothing": 0.0}
    resolved = resolve_plugin_args(given, "classify")
    assert any("never smooths" in w for w in inapplicable_args(given, resolved, "classify", 10))
    assert inapplicable_args(given, resolved, "classify", 10, tuned={"label_smoothing"}) == []


@NEEDS_TUNE_HOOK
@pytest.mark.training
def test_two_iteration_tune_trains_every_iteration_through_the_plugin(tmp_path):
    """A real 2-iteration tune on the embedded 'digits' name; iteration dirs are kept (cleanup=False) to check each."""
    home = tmp_path
    code = (
        "from functools import partialmethod\n"
        "from ultralytics.utils import SETTINGS\n"
        f"SETTINGS.update(datasets_dir={str(home / 'datasets')!r}, runs_dir={str(home / 'runs')!r}, sync=False)\n"
        "import yolo_ls.tune.tuner\n"
        "yolo_ls.tune.tuner.Tuner.__call__ = partialmethod(yolo_ls.tune.tuner.Tuner.__call__, cleanup=False)\n"
        "from yolo_ls import YOLO\n"
        "YOLO('yolo11n-cls.yaml').tune(data='digits', epochs=2, iterations=2, imgsz=32, batch=64, fraction=0.1,\n"
        "    workers=0, plots=False, device='cpu', seed=0, space={'label_smoothing': (0.0, 0.2)},\n"
        f"    ls_schedule='cosine', project={str(home / 'runs')!r}, name='tune')\n"
    )
    env = {**os.environ, "YOLO_CONFIG_DIR": str(home / "cfg"), "PYTHONPATH": str(ROOT), "YOLO_OFFLINE": "1"}
    env.pop("PYTEST_CURRENT_TEST", None)
    proc = subprocess.run([sys.executable, "-c", code], cwd=home, env=env, capture_output=True, text=True, timeout=900)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "'label_smoothing' is deprecated" not in log
    assert "never smooths" not in log  # iteration 1's ε=0.0 is the search's start, not a fixed ε
    assert (home / "datasets" / "yolo-ls" / "digits-32" / "train").is_dir()  # data='digits' resolved

    records = [json.loads(line) for line in (home / "runs" / "tune" / "tune_results.ndjson").read_text().splitlines()]
    assert [r["iteration"] for r in records] == [1, 2]
    assert records[0]["hyperparameters"] == {"label_smoothing": 0.0}  # iteration 1: the default, as for stock keys
    for r in records:
        eps = r["hyperparameters"]["label_smoothing"]
        assert 0.0 <= eps <= 0.2
        [run] = [Path(d) for d in r["save_dirs"].values()]
        df = results(run)
        # cosine from the tuned ε to ls_final=0 over epochs 0..1: the tuned value, then 0
        assert df["label_smoothing"].tolist() == pytest.approx([eps, 0.0], abs=1e-6)
        assert df["calib/ece"].between(0, 1).all() and df["calib/nll"].map(math.isfinite).all()
        args = yaml.safe_load((run / "args.yaml").read_text())
        assert args["label_smoothing"] == pytest.approx(eps) and args["ls_schedule"] == "cosine"
        recorded = r["datasets"]["digits-32"]["calib/ece"]  # the best epoch's metrics, read from best.pt
        assert any(abs(recorded - v) <= 1e-5 for v in df["calib/ece"]), (recorded, df["calib/ece"].tolist())
    best = yaml.safe_load((home / "runs" / "tune" / "best_hyperparameters.yaml").read_text())
    assert set(best) == {"label_smoothing"}


# ------------------------------------------------------------------------------------------------ tune_objective
class _FakeMultiTrainer:
    """Stands in for Ultralytics' MultiTrainer: iteration i 'trains' to the i-th scripted metrics."""

    script: list = []
    calls: list = []

    def __init__(self, _cfg, overrides, _model):
        self.overrides = overrides
        i = len(self.calls)
        self.calls.append(overrides)
        self.save_dir = Path(overrides["project"]) / f"iter{i}"
        (self.save_dir / "d" / "weights").mkdir(parents=True)
        (self.save_dir / "d" / "weights" / "best.pt").write_text(f"iteration {i}")
        fitness, nll = self.script[i]
        self.metrics = {"metrics/accuracy_top1": fitness, "fitness": fitness, "calib/nll": nll}
        self.mean_metrics = dict(self.metrics)

    def train(self):
        return {"d": dict(self.metrics)}


@NEEDS_TUNE_HOOK
@pytest.mark.parametrize(
    "objective,tol,expected",
    [("fitness", None, 1), ("nll", None, 2), ("nll", 0.05, 0)],
)
def test_tune_objective_decides_the_best_iteration(tmp_path, monkeypatch, objective, tol, expected):
    """Three scripted iterations (fitness, nll): the objective picks the iteration, best_hyperparameters.yaml and the
    copied weights follow it, and each record carries the objective's value."""
    import ultralytics.engine.trainer as engine_trainer

    from yolo_ls import YOLO

    script = [(0.80, 0.50), (0.82, 0.60), (0.40, 0.30)]
    monkeypatch.setattr(_FakeMultiTrainer, "script", script)
    monkeypatch.setattr(_FakeMultiTrainer, "calls", [])
    monkeypatch.setattr(engine_trainer, "MultiTrainer", _FakeMultiTrainer)
    kwargs = {"tune_objective": objective} if objective != "fitness" else {}
    if tol is not None:
        kwargs["fitness_tol"] = tol
    YOLO("yolo11n-cls.yaml").tune(data="unused", epochs=2, imgsz=32, iterations=3, plots=False,
                                  project=str(tmp_path), name="tune", space={"label_smoothing": (0.0, 0.2)}, **kwargs)
    assert all("tune_objective" not in c and "fitness_tol" not in c for c in _FakeMultiTrainer.calls)
    tune = tmp_path / "tune"
    records = [json.loads(line) for line in (tune / "tune_results.ndjson").read_text().splitlines()]
    assert [r["objective"] for r in records] == [
        {"tune_objective": objective, "fitness_tol": tol, "value": (f if objective == "fitness" else v)}
        for f, v in script
    ]
    best = yaml.safe_load((tune / "best_hyperparameters.yaml").read_text())
    assert best == records[expected]["hyperparameters"]
    assert (tune / "weights" / "best.pt").read_text() == f"iteration {expected}"


@NEEDS_TUNE_HOOK
def test_tune_objective_ranks_the_mutation_parents(tmp_path):
    from ultralytics import YOLO as StockYOLO

    from yolo_ls.tune.tuner import Tuner

    model = StockYOLO("yolo11n-cls.yaml")
    args = {**model.overrides, "data": "x", "epochs": 2, "project": str(tmp_path), "mode": "train",
            "space": {"label_smoothing": (0.0, 0.2)}, "tune_objective": "nll", "fitness_tol": 0.05}
    tuner = Tuner(args=args, model=model.model)
    assert (tuner.objective, tuner.objective_tol) == ("nll", 0.05) and "tune_objective" not in vars(tuner.args)
    results = [tuner._result_record(i + 1, f, {"label_smoothing": 0.1 * i}, {"d": {"fitness": f, "calib/nll": v}})
               for i, (f, v) in enumerate([(0.9, 0.5), (0.88, 0.2), (0.5, 0.1)])]
    assert tuner._local_results_to_array(results)[:, 0].tolist() == [0.9, 0.88, 0.5]  # outside _mutate: fitness
    tuner._scoring = True
    scores = tuner._local_results_to_array(results)[:, 0]
    tuner._scoring = False
    assert scores.argsort()[::-1].tolist() == [1, 0, 2]  # nll 0.2 within the tolerance, then 0.5, then the outsider
    assert tuner._best_result_index(results, np.array([0.9, 0.88, 0.5])) == 1


def test_tune_objective_is_checked_for_the_task(tmp_path):
    with pytest.raises(PluginArgumentError, match="'tune_objective=d_ece' is a detection metric"):
        _tune(tmp_path, tune_objective="d_ece")
    assert not (tmp_path / "runs").exists()


# ------------------------------------------------------------------------------------------------------ Ray Tune
def _ray_tune(tmp_path, space, **kwargs):
    from yolo_ls import YOLO

    args = dict(data="unused", epochs=2, imgsz=32, project=str(tmp_path / "runs"), name="ray", device="cpu",
                gpu_per_trial=0, search_alg="random")
    return YOLO("yolo11n-cls.yaml").tune(use_ray=True, iterations=2, space=space, **{**args, **kwargs})


@pytest.mark.parametrize(
    "space,kwargs,error,message",
    [
        ("uniform_eps_too_high", {}, PluginArgumentError,
         "space['label_smoothing'] reaches a value 'label_smoothing' does not allow: 'label_smoothing=1.2'"),
        ("choice_detect_mode", {}, PluginArgumentError, "'ls_mode=fg' is a detection mode"),
        ("choice_typo", {}, PluginArgumentError, "Did you mean 'cosine'?"),
        ("two_stage_choice", {}, PluginArgumentError,
         "with space at {'ls_schedule': 'two_stage', 'label_smoothing': 0.1}: ls_schedule='two_stage' needs"),
        ("sample_from", {}, PluginArgumentError, "cannot be checked before the trials start"),
        ("objective_in_space", {}, PluginArgumentError, "cannot vary between them"),
        ("typo_key", {}, SyntaxError, "Similar arguments are i.e. ['label_smoothing"),
        ("none", {"ls_shedule": "cosine"}, SyntaxError, "ls_schedule"),
        ("none", {"tune_objective": "d_ece"}, PluginArgumentError, "is a detection metric"),
        ("none", {"tune_objective": "nll", "search_alg": "bohb"}, PluginArgumentError, "search-space conversion"),
        ("none", {"ls_schedule": "cosnie"}, PluginArgumentError, "Did you mean 'cosine'?"),
    ],
)
def test_bad_ray_tuning_arguments_are_refused_before_ray_starts(tmp_path, space, kwargs, error, message):
    pytest.importorskip("ray.tune")
    import ray
    from ray import tune

    from yolo_ls.engine.compat import ray_tune_supported

    if "search_alg" in kwargs and not ray_tune_supported():  # 8.3: no search algorithms, refused by release instead
        error, message = NotImplementedError, "needs an ultralytics 8.4 release"

    spaces = {
        "uniform_eps_too_high": {"label_smoothing": tune.uniform(0.0, 1.2)},
        "choice_detect_mode": {"ls_mode": tune.choice(["uniform", "fg"])},
        "choice_typo": {"ls_schedule": tune.choice(["linear", "cosin"])},
        "two_stage_choice": {"ls_schedule": tune.choice(["cosine", "two_stage"]), "label_smoothing": 0.1},
        "sample_from": {"label_smoothing": tune.sample_from(lambda _: 0.1)},
        "objective_in_space": {"tune_objective": tune.choice(["nll", "ece"])},
        "typo_key": {"label_smothing": tune.uniform(0.0, 0.1)},
        "none": {"lr0": tune.uniform(1e-4, 1e-2)},
    }
    with pytest.raises(error) as e:
        _ray_tune(tmp_path, spaces[space], **kwargs)
    assert message in str(e.value)
    assert not (tmp_path / "runs").exists() and not ray.is_initialized()


RAY_SCRIPT = """
import json, math, sys
from ultralytics.utils import SETTINGS
home = sys.argv[1]
SETTINGS.update(datasets_dir=home + '/datasets', runs_dir=home + '/runs', sync=False, mlflow=False)
from ray import tune
from yolo_ls import YOLO
from yolo_ls.tune.ray_tune import best_result, result_run_dir
out = {}
for objective in ('fitness', 'nll'):
    grid = YOLO('yolo11n-cls.yaml').tune(  # no project: the tune folder goes under runs_dir/<task>, as its trials do
        use_ray=True, data='digits', iterations=2, epochs=2, imgsz=32, batch=64, fraction=0.1, workers=0,
        plots=False, device='cpu', seed=0, gpu_per_trial=0, grace_period=2, search_alg='random',
        ls_schedule='cosine', tune_objective=objective, space={'label_smoothing': tune.uniform(0.0, 0.2)},
        name='ray-' + objective)
    best = grid.get_best_result() if objective == 'nll' else None  # stock puts its metric on the scheduler only
    out[objective] = {'errors': [str(e) for e in grid.errors], 'paths': [r.path for r in grid],
                      'best_metric': best and best.metrics.get('calib/nll'),
                      'best_run': str(result_run_dir(best_result(grid, 'classify', objective))),
                      'run_dirs': [str(result_run_dir(r)) for r in grid],
                      'metric': grid._experiment_analysis.default_metric,
                      'mode': grid._experiment_analysis.default_mode}
print('RESULT ' + json.dumps(out))
"""


@pytest.mark.slow
@pytest.mark.training
def test_ray_tune_trains_every_trial_through_the_plugin(tmp_path):
    """Two real Ray Tune runs of 2 trials each (stock objective, then tune_objective=nll): a fixed ls_schedule and a
    searched label_smoothing reach every trial, each trial reports calib/*, and Ray writes under tmp_path only: its
    tune folder under runs/classify (the model's task, as the trials' run folders), and the logged best trial is the
    run folder holding that trial's weights/best.pt, not Ray's trial folder."""
    pytest.importorskip("ray.tune")
    import pandas as pd

    # Ray's sockets live in its temp dir and a socket path may not exceed 107 bytes: a short link into tmp_path
    (tmp_path / "ray").mkdir()
    link = Path(tempfile.mkdtemp(prefix="yls-ray-", dir="/tmp"))
    link.rmdir()
    link.symlink_to(tmp_path / "ray")
    env = {**os.environ, "YOLO_CONFIG_DIR": str(tmp_path / "cfg"), "PYTHONPATH": str(ROOT), "YOLO_OFFLINE": "1",
           "RAY_TMPDIR": str(link), "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("PYTEST_CURRENT_TEST", None)
    try:
        proc = subprocess.run([sys.executable, "-c", RAY_SCRIPT, str(tmp_path)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=900)
    finally:
        link.unlink()
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "is not a valid YOLO argument" not in log and "'label_smoothing' is deprecated" not in log
    [line] = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    out = json.loads(line[len("RESULT "):])
    assert out["fitness"]["metric"] is None  # Ultralytics' own run: metric/mode live on its ASHA scheduler
    assert (out["nll"]["metric"], out["nll"]["mode"]) == ("calib/nll", "min")
    assert list((tmp_path / "ray").glob("**/session_*")), "Ray's temp dir is not under tmp_path"
    runs = tmp_path / "runs" / "classify"
    assert sorted(d.name for d in (tmp_path / "runs").iterdir()) == ["classify"]  # nothing under runs/detect
    for objective, run in out.items():
        assert run["errors"] == [] and len(run["paths"]) == 2
        # the logged best trial: the run folder with the weights, the same one result_run_dir gives
        [logged] = [x.split(": ", 2)[2] for x in log.splitlines()
                    if x.startswith(f"yolo-ls: best trial by tune_objective={objective}: ")]
        best_run = Path(run["best_run"])
        assert logged.startswith(f"{best_run} (weights/best.pt) with {{'label_smoothing': "), logged
        assert best_run.parent == runs and (best_run / "weights" / "best.pt").is_file()
        assert sorted(run["run_dirs"]) == sorted({*run["run_dirs"]}) and str(best_run) in run["run_dirs"]
        nlls = []
        for path, run_dir in zip(map(Path, run["paths"]), map(Path, run["run_dirs"])):
            assert runs / f"ray-{objective}" in path.parents  # Ray's storage path, under the task's folder
            assert not (path / "weights").exists() and (run_dir / "weights" / "best.pt").is_file()
            trial = json.loads((run_dir / "ray_trial.json").read_text())
            assert path.name == f"_tune_{trial['trial_id']}"  # the run folder is this trial's
            progress = pd.read_csv(path / "progress.csv")
            params = json.loads((path / "params.json").read_text())
            eps = params["label_smoothing"]
            assert 0.0 <= eps <= 0.2
            assert progress["epoch"].tolist()[:2] == [1, 2]
            # cosine from the searched ε to ls_final=0 over 2 epochs: ε in the first epoch's report, then 0
            assert progress["label_smoothing"].tolist()[:2] == pytest.approx([eps, 0.0], abs=1e-6)
            assert progress["calib/ece"].between(0, 1).all() and progress["calib/nll"].map(math.isfinite).all()
            nlls.append(progress["calib/nll"].iloc[-1])
            [train_dir] = [d for d in runs.iterdir()
                           if d.name.startswith(f"ray-{objective}_") and d.name.endswith(params_trial_suffix(path))]
            assert train_dir == run_dir
            args = yaml.safe_load((train_dir / "args.yaml").read_text())
            assert args["ls_schedule"] == "cosine" and args["label_smoothing"] == pytest.approx(eps)
            assert "tune_objective" not in args or args["tune_objective"] == "fitness"
        if objective == "nll":
            assert run["best_metric"] == pytest.approx(min(nlls))
            assert run["best_run"] == run["run_dirs"][nlls.index(min(nlls))]


def params_trial_suffix(trial_path: Path) -> str:
    """A Ray trial folder '_tune_<exp>_<index>' trains in '<name>_<index>'."""
    return "_" + trial_path.name.rsplit("_", 1)[-1]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"space": [0.0, 0.2]}, "'space' must be a dict"),
        ({"iterations": -2}, "'iterations=-2' is an invalid value"),
        ({"use_ray": True, "search_alg": "optunaa"}, "Did you mean 'optuna'"),
    ],
)
def test_tune_arguments_refused_before_any_iteration(kwargs, message, tmp_path) -> None:
    """Refused before an iteration, a tune folder or Ray exists (the space list once died in difflib)."""
    import sys

    import yolo_ls
    from yolo_ls.core.checks import PluginArgumentError

    ray_before = "ray" in sys.modules
    with pytest.raises(PluginArgumentError, match=message):
        yolo_ls.YOLO("yolo11n-cls.yaml").tune(data="digits", epochs=1, project=str(tmp_path), **kwargs)
    assert not any(tmp_path.iterdir())
    assert ("ray" in sys.modules) == ray_before


class _FakeTuneContext:
    def __init__(self, trial_id):
        self.trial_id = trial_id

    def get_trial_id(self):
        return self.trial_id

    def get_trial_name(self):
        return f"_tune_{self.trial_id}"


def test_a_trial_marks_its_run_folder_and_the_tune_finds_it(tmp_path, monkeypatch):
    """Ray's trial folder holds no weights: the trainer marks its run folder with the trial id, and the best trial is
    logged with that folder (weights/best.pt), found from the Ray result (fake results; no Ray)."""
    import types
    from types import SimpleNamespace

    from ultralytics.utils import LOGGER

    from yolo_ls.engine.ray_trial import RAY_TRIAL_FILE, current_ray_trial, record_ray_trial, result_trial_id
    from yolo_ls.tune.ray_tune import _log_best_trial, result_run_dir

    project = tmp_path / "runs" / "classify"
    monkeypatch.delitem(sys.modules, "ray.tune", raising=False)
    assert current_ray_trial() is None  # Ray not loaded: no trial, and Ray is not imported for the question
    assert "ray.tune" not in sys.modules
    fake_tune = types.ModuleType("ray.tune")
    monkeypatch.setitem(sys.modules, "ray.tune", fake_tune)
    fake_tune.get_context = lambda: _FakeTuneContext(None)  # loaded, but this process runs no trial
    (project / "plain").mkdir(parents=True)
    record_ray_trial(project / "plain")
    assert not (project / "plain" / RAY_TRIAL_FILE).exists()

    results = []
    for i, (acc, nll) in enumerate([(0.8, 0.5), (0.7, 0.3)]):
        trial_id = f"ab12c_0000{i}"
        fake_tune.get_context = lambda t=trial_id: _FakeTuneContext(t)
        run = project / f"ray_0000{i}{'2' if i else ''}"  # an incremented name: the folder, not the name, is found
        (run / "weights").mkdir(parents=True)
        (run / "weights" / "best.pt").write_bytes(b"")
        record_ray_trial(run)
        assert json.loads((run / RAY_TRIAL_FILE).read_text()) == {"trial_id": trial_id,
                                                                   "trial_name": f"_tune_{trial_id}"}
        trial_dir = project / "ray" / f"_tune_{trial_id}"  # Ray's own: params.json, progress.csv, no weights
        trial_dir.mkdir(parents=True)
        metrics = {"metrics/accuracy_top1": acc, "calib/nll": nll, "trial_id": trial_id}
        results.append(SimpleNamespace(metrics=metrics, path=str(trial_dir),
                                       config={"label_smoothing": 0.1 * i, "data": "/x/digits"}))
    assert result_trial_id(SimpleNamespace(metrics={}, path=results[1].path)) == "ab12c_00001"  # from the folder
    assert [result_run_dir(r) for r in results] == [project / "ray_00000", project / "ray_000012"]
    assert result_run_dir(SimpleNamespace(metrics={"trial_id": "zz_1"}, path=results[0].path)) is None

    logged = []
    monkeypatch.setattr(LOGGER, "info", lambda msg, *a, **k: logged.append(str(msg)))
    _log_best_trial(results, "classify", "fitness", None)
    _log_best_trial(results, "classify", "nll", None)
    _log_best_trial([SimpleNamespace(metrics={"metrics/accuracy_top1": 0.5}, path=str(project / "ray" / "_tune_q_1"),
                                     config={})], "classify", "fitness", None)
    assert logged == [
        f"yolo-ls: best trial by tune_objective=fitness: {project / 'ray_00000'} (weights/best.pt) with "
        "{'label_smoothing': 0.0}",
        f"yolo-ls: best trial by tune_objective=nll: {project / 'ray_000012'} (weights/best.pt) with "
        "{'label_smoothing': 0.1}",
        f"yolo-ls: best trial by tune_objective=fitness: {project / 'ray' / '_tune_q_1'} (Ray's trial folder; the run "
        "folder with its weights was not found) with {}",
    ]
