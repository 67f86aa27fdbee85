"""Plugin arguments: validation before anything is written, the multi-GPU relaunch round trip, the CLI's errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.helpers import ROOT, run_cli_batch, run_python
from yolo_ls.core.args import ARG_TABLE, DEFAULTS, PluginArgumentError, check_keys, resolve_plugin_args


# ------------------------------------------------------------------------------------------- pure validation
@pytest.mark.parametrize(
    "given,error,match",
    [
        ({"label_smoothing": -0.1}, PluginArgumentError, r"'label_smoothing=-0.1' is an invalid value.*0.0 \(incl"),
        ({"label_smoothing": 1.0}, PluginArgumentError, "label_smoothing=1.0"),
        ({"label_smoothing": 1.5}, PluginArgumentError, "label_smoothing=1.5"),
        ({"label_smoothing": math.nan}, PluginArgumentError, "label_smoothing=nan"),
        ({"label_smoothing": math.inf}, PluginArgumentError, "label_smoothing=inf"),
        ({"label_smoothing": "abc"}, PluginArgumentError, r"label_smoothing='abc' \(a string\)"),
        ({"label_smoothing": "0.1"}, PluginArgumentError, r"label_smoothing='0.1' \(a string\) is an invalid value"),
        ({"label_smoothing": 10**400}, PluginArgumentError, r"'label_smoothing=1000.*\(401 characters\)'"),
        ({"ls_prior": [10**400, 1]}, PluginArgumentError, r"'ls_prior=\[1000.*' \(a list\) is an invalid"),
        ({"ls_warmup_epochs": -1}, PluginArgumentError, r"^'ls_warmup_epochs=-1' is an invalid value[^:]*$"),
        ({"label_smoothing": [0.1]}, PluginArgumentError, r"label_smoothing=\[0.1\]"),
        ({"label_smoothing": True}, PluginArgumentError, "label_smoothing=True"),
        ({"ls_mode": "unifrom"}, PluginArgumentError, "Did you mean 'uniform'"),
        ({"ls_mode": "fg"}, PluginArgumentError, "detection mode and does not apply to task 'classify'"),
        ({"ls_schedule": "cosin"}, PluginArgumentError, "Did you mean 'cosine'"),
        ({"ls_prior": [1, -1, 1]}, PluginArgumentError, "ls_prior"),
        ({"ls_prior": [0, 0, 0]}, PluginArgumentError, "ls_prior"),
        ({"ls_prior": [1.0, 2.0], "ls_mode": "uniform"}, PluginArgumentError, "only used with 'ls_mode=prior'"),
        ({"ls_gamma": 1.5}, PluginArgumentError, "ls_gamma"),
        ({"ls_step_size": 0}, PluginArgumentError, "ls_step_size"),
        ({"ls_per_iter": "yes"}, PluginArgumentError, "ls_per_iter"),
        ({"label_smothing": 0.1}, SyntaxError, r"Similar arguments are i.e. \['label_smoothing=0.0'\]"),
        ({"ls_mdoe": "uniform"}, SyntaxError, r"'ls_mdoe' is not a valid YOLO or yolo-ls argument.*ls_mode"),
    ],
)
def test_bad_plugin_values_name_the_argument(given, error, match):
    with pytest.raises(error, match=match):
        resolve_plugin_args(given, "classify")


def test_detection_modes_and_auto_resolution():
    assert resolve_plugin_args({}, "detect")["ls_mode"] == "fg"
    assert resolve_plugin_args({}, "classify")["ls_mode"] == "uniform"
    assert resolve_plugin_args({"ls_prior": [1, 2, 3]}, "classify")["ls_mode"] == "prior"
    with pytest.raises(PluginArgumentError, match="classification mode.*'segment'.*fg"):
        resolve_plugin_args({"ls_mode": "exclusive"}, "segment")


def test_unknown_ultralytics_key_suggests_from_both_tables():
    with pytest.raises(SyntaxError, match=r"'epoch' is not a valid.*epochs=100"):
        check_keys(["epoch", "imgsz"])
    check_keys(["epochs", "label_smoothing", "ls_mode", "augmentations"])  # valid keys pass


def test_every_table_row_has_help_and_a_default_that_validates():
    for name, arg in ARG_TABLE.items():
        assert arg.help and arg.allowed
        assert arg.check(name, arg.default) == DEFAULTS[name]


# ---------------------------------------------------------------------- trainer validation, nothing written
# (the full hostile-input matrix, through the Python API and the CLI, is tests/test_hostile_inputs.py)
def test_detection_trainer_rejects_classification_mode(tmp_path, digits_det_yaml):
    from yolo_ls import DetectionTrainer

    with pytest.raises(PluginArgumentError, match="classification mode"):
        DetectionTrainer(overrides={"model": "yolo11n.yaml", "data": str(digits_det_yaml), "ls_mode": "exclusive",
                                    "project": str(tmp_path / "p")})
    assert not (tmp_path / "p").exists()


# ------------------------------------------------------------------------------------ multi-GPU relaunch
def _rebuild_in_worker(trainer, body: str):
    """generate_ddp_file, then rebuild the trainer in a fresh interpreter exactly as the DDP worker script does.

    ``body`` runs after the rebuild with the worker's ``trainer`` in scope; returns the completed process.
    """
    from ultralytics.utils.dist import generate_ddp_file

    file = generate_ddp_file(trainer)
    state = Path(file).with_suffix(".pt")
    if not state.exists():  # before the .pt state file (about 8.4.14x) the script holds the overrides as a literal
        import textwrap

        script = Path(file).read_text(encoding="utf-8")
        assert "    results = trainer.train()\n" in script
        code = script.replace("    results = trainer.train()\n", textwrap.indent(body, "    "))
    else:
        code = f"""
from ultralytics.utils import DEFAULT_CFG_DICT
from ultralytics.utils.patches import torch_load
state = torch_load({str(state)!r}, map_location="cpu")
cfg = DEFAULT_CFG_DICT.copy()
cfg.update(save_dir='')
trainer = state["trainer"](cfg=cfg, overrides=state["args"], _callbacks=state["callbacks"])
""" + body
    try:
        return run_python(code)
    finally:
        Path(file).unlink(missing_ok=True)
        state.unlink(missing_ok=True)


@pytest.mark.parametrize("trainer_name,data_fixture", [("ClassificationTrainer", "digits_root"),
                                                        ("DetectionTrainer", "digits_det_yaml")])
@pytest.mark.slow
def test_ddp_relaunch_round_trip_keeps_plugin_args(tmp_path, request, trainer_name, data_fixture):
    """Every plugin argument, the schedule and the callbacks survive the multi-GPU relaunch."""
    import yolo_ls

    data = request.getfixturevalue(data_fixture)
    model = "yolo11n-cls.yaml" if trainer_name == "ClassificationTrainer" else "yolo11n.yaml"
    plugin = {"label_smoothing": 0.07, "ls_schedule": "cosine", "ls_final": 0.01, "ls_warmup_epochs": 1.0,
              "ls_per_iter": True}
    plugin["ls_mode"] = "exclusive" if trainer_name == "ClassificationTrainer" else "positive"
    trainer = getattr(yolo_ls, trainer_name)(overrides={"model": model, "data": str(data), "epochs": 3,
                                                        "project": str(tmp_path), "name": "ddp", **plugin})
    proc = _rebuild_in_worker(trainer, """
import json
print("PLUGIN" + json.dumps(trainer.plugin_args))
from yolo_ls.engine.callbacks.smoothing import CALLBACKS
from yolo_ls.engine.callbacks.calibration import CalibrationCallbacks
print("CALLBACKS", [trainer.callbacks[e].count(fn) for e, fn in CALLBACKS.items()])
cal = {id(fn.__self__) for fns in trainer.callbacks.values() for fn in fns
       if isinstance(getattr(fn, "__self__", None), CalibrationCallbacks)}
print("CALIBRATION", len(cal), len(trainer.callbacks["on_val_start"]))
print("EPS", [round(trainer.ls_schedule(e), 6) for e in (0.5, 1.0, 2.0)])
""")
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("PLUGIN"))
    rebuilt = json.loads(line[len("PLUGIN"):])
    assert rebuilt == {**trainer.plugin_args, "ls_prior": None}
    # each plugin callback arrives with the pickled callbacks and is not registered a second time
    assert "CALLBACKS [1, 1, 1]" in proc.stdout
    n_val_start = len(trainer.callbacks["on_val_start"])
    assert f"CALIBRATION 1 {n_val_start}" in proc.stdout  # one calibration instance, as many hooks as the parent
    expected = [round(trainer.ls_schedule(e), 6) for e in (0.5, 1.0, 2.0)]
    assert f"EPS {expected}" in proc.stdout


@pytest.mark.slow
def test_ddp_relaunch_carries_a_callable_schedule(tmp_path, digits_root):
    from yolo_ls.engine.compat import ddp_state_file

    if not ddp_state_file():
        pytest.skip("this ultralytics writes the multi-GPU overrides as a Python literal: no callable survives it")

    import yolo_ls

    overrides = {"model": "yolo11n-cls.yaml", "data": str(digits_root), "epochs": 4, "project": str(tmp_path),
                 "label_smoothing": 0.1, "ls_schedule": lambda e, n: 0.1 * (1 - e / n)}  # noqa: E731
    trainer = yolo_ls.ClassificationTrainer(overrides=overrides)
    proc = _rebuild_in_worker(trainer, 'print("EPS", [round(trainer.ls_schedule(e), 6) for e in (0, 1, 2, 3)])\n')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "EPS [0.1, 0.075, 0.05, 0.025]" in proc.stdout


# ----------------------------------------------------------------------------------------------------- CLI
CLI_ERRORS = [
    (["train", "model=yolo11n-cls.yaml", "label_smothing=0.1"], 2, "Similar arguments are i.e. ['label_smoothing"),
    (["train", "model=yolo11n-cls.yaml", "ls_mdoe=uniform"], 2, "ls_mode"),
    (["train", "model=yolo11n-cls.yaml", "data=digits", "label_smoothing=1.5"], 2, "'label_smoothing=1.5'"),
    (["train", "model=yolo11n-cls.yaml", "epohcs=3"], 2, "epochs"),
    (["fly", "model=yolo11n-cls.yaml"], 2, "not a valid yolo-ls mode"),
    (["model=yolo11n-cls.yaml"], 2, "'mode' is missing"),
]


@pytest.fixture(scope="module")
def cli(tmp_path_factory) -> dict:
    """The CLI commands below, each as its own ``yolo-ls ...`` in one fresh interpreter (tests.helpers.run_cli_batch):
    the error cases (each into its own empty project folder), then help, version and cfg."""
    base = tmp_path_factory.mktemp("cli")
    projects = [base / str(i) for i in range(len(CLI_ERRORS))]
    for p in projects:
        p.mkdir()
    commands = [[*args, f"project={p}"] for (args, _, _), p in zip(CLI_ERRORS, projects)]
    answers = run_cli_batch([*commands, ["help"], ["version"], ["cfg"]])
    return {"errors": list(zip(projects, answers)), "help": answers[-3], "version": answers[-2], "cfg": answers[-1]}


@pytest.mark.parametrize("i", range(len(CLI_ERRORS)), ids=[e[2] for e in CLI_ERRORS])
@pytest.mark.slow
def test_cli_errors_are_one_line_not_tracebacks(cli, i):
    _, code, message = CLI_ERRORS[i]
    project, proc = cli["errors"][i]
    assert proc.returncode == code, proc.stderr[-2000:]
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not any(project.iterdir()), "the CLI wrote a run folder for bad input"


@pytest.mark.slow
def test_cli_help_version_cfg(cli):
    out = cli["help"].stdout
    for name, arg in ARG_TABLE.items():
        assert f"{name}={arg.default}" in out
    assert "yolo-ls" in cli["version"].stdout and "ultralytics" in cli["version"].stdout
    import yaml

    assert yaml.safe_load(cli["cfg"].stdout) == DEFAULTS


def test_readme_argument_table_is_the_config_table():
    from yolo_ls.core.args import markdown_table

    assert markdown_table() in (ROOT / "README.md").read_text(encoding="utf-8")


def test_version_guard_names_the_installed_and_tested_versions(monkeypatch):
    from yolo_ls.engine import compat, trainers

    seen: list[str] = []
    monkeypatch.setattr(compat.LOGGER, "warning", seen.append)
    assert trainers.check_ultralytics_version is compat.check_ultralytics_version
    assert compat.check_ultralytics_version() is True  # CI runs supported releases only (make test, make test-compat)
    assert compat.check_ultralytics_version("8.3.210") is True
    assert compat.check_ultralytics_version("8.4.190") is True
    assert not seen
    assert compat.check_ultralytics_version("8.3.209") is False
    assert compat.check_ultralytics_version("8.5.0") is False
    assert len(seen) == 2 and "ultralytics 8.5.0 is installed" in seen[1] and ">=8.3.210,<8.5" in seen[1]


# ------------------------------------------------------------------------------------------------ loose input
def test_huge_prior_is_normalised_without_overflow():
    out = resolve_plugin_args({"ls_prior": [1e308] * 10}, "classify")["ls_prior"]
    assert out == pytest.approx([0.1] * 10) and math.isclose(sum(out), 1.0)
    out = resolve_plugin_args({"ls_prior": [1e308, 0.0, 5e307]}, "classify")["ls_prior"]
    assert out == pytest.approx([2 / 3, 0.0, 1 / 3])
    from yolo_ls.core.losses import smoothing_base

    assert smoothing_base(3, "prior", [1e308, 1e308, 1e308]).tolist() == pytest.approx([1 / 3] * 3)


def test_callable_schedules_accept_numeric_scalars_and_are_probed_over_the_run():
    import numpy as np
    import torch

    from yolo_ls.core.args import build_schedule_from_args

    for value in (torch.tensor(0.1), np.float32(0.1), np.float64(0.1)):
        args = resolve_plugin_args({"ls_schedule": lambda e, n, v=value: v}, "classify")
        assert build_schedule_from_args(args, 3)(1.0) == pytest.approx(0.1)
    late = resolve_plugin_args({"ls_schedule": lambda e, n: None if e >= 4 else 0.1}, "classify")
    build_schedule_from_args(late, 4)  # epochs 0..3 are fine
    with pytest.raises(PluginArgumentError, match="returned None at epoch 4.0"):
        build_schedule_from_args(late, 5)
    per_iter = resolve_plugin_args({"ls_schedule": lambda e, n: 0.1 if e == int(e) else -1.0, "ls_per_iter": True},
                                   "classify")
    with pytest.raises(PluginArgumentError, match="at epoch 0.5"):  # mid-epoch values are probed too
        build_schedule_from_args(per_iter, 2)


@pytest.mark.parametrize(
    "given,epochs,expected",
    [
        ({"ls_final": 0.05}, 10, "'ls_final' is only used by ls_schedule=linear/cosine/exp"),
        ({"ls_schedule": "cosine", "label_smoothing": 0.1, "ls_gamma": 0.9}, 10, "'ls_gamma' is only used"),
        ({"ls_max": 0.2}, 10, "'ls_max' is only used by ls_schedule=auto"),
        ({"calib_conf": 0.5}, 10, "'calib_conf' is only used by detection tasks"),
        ({"calibration": False, "calib_bins": 20}, 10, "'calib_bins' has no effect with calibration=False"),
        ({"ls_schedule": "linear", "label_smoothing": 0.1}, 1, "has no room to run"),
        ({"ls_schedule": "step"}, 10, "never smooths"),
    ],
)
def test_arguments_that_do_not_apply_are_named(given, epochs, expected):
    from yolo_ls.core.args import inapplicable_args

    warnings = inapplicable_args(given, resolve_plugin_args(given, "classify"), "classify", epochs)
    assert any(expected in w for w in warnings), warnings


def test_arguments_that_apply_raise_no_warning():
    from yolo_ls.core.args import inapplicable_args

    for given in ({"label_smoothing": 0.1}, {"ls_schedule": "linear", "label_smoothing": 0.1, "ls_final": 0.0},
                  {"ls_schedule": "linear", "ls_final": 0.1}, {"ls_schedule": "auto", "ls_max": 0.2}):
        assert inapplicable_args(given, resolve_plugin_args(given, "classify"), "classify", 10) == []
