"""``yolo-ls`` is a superset of ``yolo``: predict/track save exactly what ``yolo`` saves, export/benchmark/special
commands reach Ultralytics' own code, plugin arguments are refused there, and ``python -m yolo_ls`` works.

The real runs compare the files written by the stock ``yolo`` console script of this environment (run, never
modified) with those written by ``python -m yolo_ls`` and by the ``yolo-ls`` console script, byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

BIN = Path(sys.executable).parent
STOCK_YOLO = BIN / "yolo"
YOLO_LS_SCRIPT = BIN / "yolo-ls"


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> Path:
    """A seeded random-weight detection checkpoint, two images, a 6-frame video, and an Ultralytics settings file."""
    root = tmp_path_factory.mktemp("superset")
    code = (
        "import cv2, numpy as np, torch\n"
        "from ultralytics import YOLO\n"
        "torch.manual_seed(0)\n"
        "YOLO('yolo11n.yaml').save('det.pt')\n"
        "rng = np.random.default_rng(0)\n"
        "import os; os.makedirs('src', exist_ok=True)\n"
        "for i in range(2):\n"
        "    cv2.imwrite(f'src/im{i}.jpg', rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))\n"
        "w = cv2.VideoWriter('clip.mp4', cv2.VideoWriter_fourcc(*'mp4v'), 5, (64, 64))\n"
        "for i in range(6):\n"
        "    w.write(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))\n"
        "w.release()\n"
        "from ultralytics.utils import SETTINGS\n"
        "SETTINGS.update(sync=False)\n"
    )
    env = {**os.environ, "YOLO_CONFIG_DIR": str(root / "cfg"), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (root / "det.pt").is_file() and (root / "clip.mp4").stat().st_size > 1000
    return root


def _run(assets: Path, name: str, command: list[str], *args: str) -> tuple[subprocess.CompletedProcess, Path]:
    """Run a CLI in its own home folder whose Ultralytics settings put runs/ and datasets/ inside it."""
    home = assets / name
    (home / "cfg" / "Ultralytics").mkdir(parents=True)
    settings = json.loads((assets / "cfg" / "Ultralytics" / "settings.json").read_text())
    settings.update(runs_dir=str(home / "runs"), datasets_dir=str(home / "datasets"), weights_dir=str(home / "w"))
    (home / "cfg" / "Ultralytics" / "settings.json").write_text(json.dumps(settings))
    env = {**os.environ, "YOLO_CONFIG_DIR": str(home / "cfg"), "PYTHONPATH": str(ROOT), "YOLO_OFFLINE": "1"}
    env.pop("PYTEST_CURRENT_TEST", None)  # else Ultralytics writes runs under its own install ("tests/tmp/runs")
    proc = subprocess.run([*command, *args], cwd=home, env=env, capture_output=True, text=True, timeout=600)
    return proc, home / "runs"


def _tree(runs: Path) -> dict[str, str]:
    """{relative path: sha256} of every file a CLI wrote under runs/."""
    return {str(p.relative_to(runs)): hashlib.sha256(p.read_bytes()).hexdigest() for p in runs.rglob("*")
            if p.is_file()}


@pytest.mark.slow
def test_predict_saves_exactly_what_yolo_saves(assets):
    args = (f"model={assets / 'det.pt'}", f"source={assets / 'src'}", "imgsz=64", "conf=0.000001", "save_txt=True")
    stock, stock_runs = _run(assets, "stock-predict", [str(STOCK_YOLO), "predict"], *args)
    assert stock.returncode == 0, stock.stderr[-3000:]
    ours, ours_runs = _run(assets, "ls-predict", [sys.executable, "-m", "yolo_ls", "predict"], *args)
    assert ours.returncode == 0, ours.stderr[-3000:]
    expected = _tree(stock_runs)
    assert {"detect/predict/im0.jpg", "detect/predict/im1.jpg", "detect/predict/labels/im0.txt"} <= set(expected)
    assert _tree(ours_runs) == expected  # same files, same bytes, same default folder


@pytest.mark.slow
def test_track_streams_a_video_and_saves_what_yolo_saves(assets):
    args = (f"model={assets / 'det.pt'}", f"source={assets / 'clip.mp4'}", "imgsz=64", "conf=0.000001", "save_txt=True")
    stock, stock_runs = _run(assets, "stock-track", [str(STOCK_YOLO), "track"], *args)
    assert stock.returncode == 0, stock.stderr[-3000:]
    ours, ours_runs = _run(assets, "ls-track", [str(YOLO_LS_SCRIPT), "track"], *args)  # the console script itself
    assert ours.returncode == 0, ours.stderr[-3000:]
    expected = _tree(stock_runs)
    assert any(k.startswith("detect/track/clip") for k in expected), expected
    assert len([k for k in expected if k.startswith("detect/track/labels/clip_")]) == 6  # one per frame: streamed
    assert _tree(ours_runs) == expected
    assert "video 1/1 (frame 6/6)" in ours.stdout + ours.stderr


@pytest.mark.slow
def test_python_m_yolo_ls_help_and_version():
    help_ = subprocess.run([sys.executable, "-m", "yolo_ls", "help"], capture_output=True, text=True, cwd=ROOT)
    assert help_.returncode == 0, help_.stderr
    assert help_.stdout.startswith("yolo-ls ") and "label_smoothing=0.0" in help_.stdout
    assert "'track', 'benchmark'" in help_.stdout
    version = subprocess.run([sys.executable, "-m", "yolo_ls", "version"], capture_output=True, text=True, cwd=ROOT)
    assert version.returncode == 0 and "ultralytics 8." in version.stdout


# ------------------------------------------------------------------------------- in-process dispatch (no subprocess)
@pytest.fixture
def recorded(monkeypatch):
    """Replace the heavy Model methods with recorders of (model class, kwargs, ARGV as Ultralytics saw it)."""
    import ultralytics.engine.model as engine_model
    from ultralytics.engine.model import Model

    calls: list[tuple[str, type, dict, list]] = []

    def recorder(name):
        def method(self, **kwargs):
            calls.append((name, type(self), kwargs, list(engine_model.ARGV)))

        return method

    for name in ("export", "benchmark", "predict", "track"):
        monkeypatch.setattr(Model, name, recorder(name))
    return calls


@pytest.mark.parametrize("mode,extra", [("export", ["format=torchscript"]), ("benchmark", ["format=torchscript"])])
def test_export_and_benchmark_go_to_ultralytics_entrypoint(assets, recorded, mode, extra):
    import ultralytics.cfg
    import ultralytics.engine.model as engine_model
    from ultralytics import YOLO as StockYOLO

    from yolo_ls.cli.main import entrypoint

    argv_before = (ultralytics.cfg.ARGV, engine_model.ARGV)
    assert entrypoint([mode, f"model={assets / 'det.pt'}", "imgsz=64", *extra]) == 0
    [(name, cls, kwargs, argv)] = recorded
    assert name == mode and cls is StockYOLO  # Ultralytics' own model class, as 'yolo' builds it
    assert kwargs["format"] == "torchscript" and kwargs["imgsz"] == 64
    assert argv[0] == "yolo" and argv[1] == mode  # Ultralytics saw the 'yolo' program during the call...
    assert (ultralytics.cfg.ARGV, engine_model.ARGV) == argv_before  # ...and only then


def test_benchmark_resolves_the_embedded_dataset_names(monkeypatch):
    import yolo_ls.datasets
    from yolo_ls.cli.main import check_stock_args

    monkeypatch.setattr(yolo_ls.datasets, "resolve_data", lambda d: f"/built/{d}.yaml")
    assert check_stock_args(["benchmark", "model=a.pt", "data=digits-det"]) == [
        "benchmark", "model=a.pt", "data=/built/digits-det.yaml"
    ]
    assert check_stock_args(["benchmark", "model=a.pt", "data=coco8.yaml"])[-1] == "data=coco8.yaml"


ONLY = "only apply to 'train' and 'val',"


@pytest.mark.parametrize(
    "argv,message",
    [
        (["predict", "model=a.pt", "label_smoothing=0.1"], f"['label_smoothing'] {ONLY} not to 'predict'"),
        (["track", "model=a.pt", "ls_mode=fg"], f"['ls_mode'] {ONLY} not to 'track'"),
        (["export", "model=a.pt", "calib_bins=10"], "not to 'export'"),
        (["benchmark", "model=a.pt", "ls_schedule=cosine"], "not to 'benchmark'"),
        (["predict", "model=a.pt", "sorce=x.jpg"], "'sorce' is not a valid YOLO or yolo-ls argument. Similar "
                                                   "arguments are i.e. ['source'"),
        (["predict", "model=a.pt", "shw"], "'shw' is not a valid mode, task or key=value argument for 'predict'"),
        (["predict", "model=a.pt", "conf"], "'conf' is a valid argument but is missing an '=' sign"),
    ],
)
def test_stock_modes_refuse_plugin_and_unknown_arguments(recorded, capsys, argv, message):
    from yolo_ls.cli.main import entrypoint

    assert entrypoint(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not recorded  # refused before Ultralytics ran anything


def test_plugin_arguments_in_a_cfg_file_are_refused_for_predict(tmp_path, recorded, capsys):
    from yolo_ls.cli.main import entrypoint

    cfg = tmp_path / "custom.yaml"
    cfg.write_text("mode: predict\nlabel_smoothing: 0.1\n")
    assert entrypoint([f"cfg={cfg}", "model=a.pt"]) == 2
    assert "['label_smoothing'] only apply to 'train' and 'val', not to 'predict'" in capsys.readouterr().err
    assert not recorded


def test_stock_special_commands_are_handed_to_ultralytics(monkeypatch):
    import ultralytics.cfg

    from yolo_ls.cli.main import entrypoint

    seen = []
    monkeypatch.setattr(ultralytics.cfg, "handle_yolo_settings", lambda args: seen.append(("settings", args)))
    monkeypatch.setattr(ultralytics.cfg, "handle_yolo_solutions", lambda args: seen.append(("solutions", args)))
    assert entrypoint(["settings", "runs_dir=/x"]) == 0
    assert entrypoint(["solutions", "help"]) == 0
    assert seen == [("settings", ["runs_dir=/x"]), ("solutions", ["help"])]


@pytest.mark.parametrize(
    "argv,mode",
    [
        (["predict", "model=a.pt"], "predict"),
        (["detect", "track", "source=v.mp4"], "track"),
        (["mode=benchmark", "model=a.pt"], "benchmark"),
        (["mode", "=", "export"], "export"),
        (["--export,"], "export"),
        (["train", "data=digits"], "train"),
        (["model=a.pt"], None),
    ],
)
def test_find_mode(argv, mode):
    from yolo_ls.cli.main import find_mode

    assert find_mode(argv) == mode


def test_find_mode_reads_a_cfg_file_and_the_command_line_wins(tmp_path):
    from yolo_ls.cli.main import find_mode

    cfg = tmp_path / "c.yaml"
    cfg.write_text("mode: export\n")
    assert find_mode([f"cfg={cfg}"]) == "export"
    assert find_mode([f"cfg={cfg}", "predict"]) == "predict"


def test_run_hands_a_parsed_stock_mode_to_ultralytics(assets, recorded):
    """``run()`` (the Python entry of a parsed command) takes the same road for predict/export as the command line."""
    from ultralytics import YOLO as StockYOLO

    from yolo_ls.cli.main import run

    run("detect", "export", {"model": str(assets / "det.pt"), "format": "torchscript", "imgsz": 64})
    [(name, cls, kwargs, argv)] = recorded
    assert (name, cls, kwargs["format"]) == ("export", StockYOLO, "torchscript")
    assert argv[:3] == ["yolo", "detect", "export"]


@pytest.mark.parametrize("command", ["compare", "plot", "datasets"])
def test_command_help_lists_the_commands_own_arguments(command, capsys) -> None:
    """'yolo-ls COMMAND --help' answers with that command's usage, not a mode error or 'not a run folder'."""
    from yolo_ls.cli.main import COMPARE_HELP, DATASET_ARGS, entrypoint
    from yolo_ls.compare.runner import COMPARE_KEYS

    assert set(COMPARE_HELP) == set(COMPARE_KEYS)  # every compare argument has its help line
    for flag in ("--help", "-h", "help"):
        assert entrypoint([command, flag]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"usage: yolo-ls {command}")
        own = {"compare": COMPARE_KEYS, "datasets": tuple(DATASET_ARGS), "plot": ("RUN",)}[command]
        assert all(k in out for k in own), out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "data=digts"], "Did you mean 'data=digits'"),
        (["train", "label_smothing=0.1"], "Similar arguments are i.e. ['label_smoothing']"),
        (["train", "data=digits", "label_smoothing=2"], "Valid 'label_smoothing' values"),
        (["train", "data=no/such/folder"], "'data=no/such/folder': no such file or folder"),
        (["compare", "model=yolo11n-cls.yaml", "data=digts", "label_smoothing=0,0.1"], "Did you mean 'data=digits'"),
        (["calibrate", "model=best.pt", "methd=temperature"], "Similar arguments are i.e. ['method']"),
        (["calibrate", "data=digits"], "'calibrate' needs 'model=...'"),
    ],
)
def test_common_mistakes_answered_before_torch_loads(args, message, tmp_path) -> None:
    """A mistyped key, dataset or out-of-range value is refused before Ultralytics or torch is imported (so in a
    fraction of a second), with exit code 2, and leaves no folder behind."""
    code = (
        "import sys; from yolo_ls.cli.main import entrypoint; rc = entrypoint(sys.argv[1:]); "
        "heavy = [m for m in ('torch', 'ultralytics') if m in sys.modules]; "
        "assert not heavy, heavy; sys.exit(rc)"
    )
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "YOLO_CONFIG_DIR": str(tmp_path / "cfg")}, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["cfg"])


def test_resume_true_on_a_finished_checkpoint_is_refused(tmp_path) -> None:
    """'model=RUN/weights/last.pt resume=True' of a finished run (last.pt already stripped) says so, where Ultralytics
    would start an unrelated default training (data=imagenet10) in a new folder."""
    import torch
    from ultralytics.utils.torch_utils import strip_optimizer

    import yolo_ls
    from yolo_ls.core.checks import PluginArgumentError

    last = tmp_path / "weights" / "last.pt"
    last.parent.mkdir()
    model = yolo_ls.YOLO("yolo11n-cls.yaml").model
    torch.save({"model": model, "ema": None, "epoch": 1, "train_args": {"epochs": 2, "task": "classify"}}, last)
    strip_optimizer(last)  # what the end of a training does: epoch -1
    with pytest.raises(PluginArgumentError, match="is finished, nothing to resume"):
        yolo_ls.YOLO(str(last)).train(resume=True, project=str(tmp_path / "runs"))
    assert not (tmp_path / "runs").exists()


def test_a_full_disk_is_one_line_not_a_traceback(capsys) -> None:
    import errno

    from yolo_ls.cli.argv import guarded

    def full() -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "runs/classify/train/weights/last.pt")

    assert guarded(full) == 1
    err = capsys.readouterr().err
    assert err.startswith("yolo-ls: error: could not write runs/classify/train/weights/last.pt: No space left")
    assert "resume=RUN/weights/last.pt" in err and "Traceback" not in err

    def other() -> None:
        raise OSError(errno.EIO, "I/O error")

    with pytest.raises(OSError):  # not a user's mistake: the traceback is the right answer
        guarded(other)


def test_classification_folder_without_val_names_the_missing_split(tmp_path) -> None:
    import yolo_ls
    from yolo_ls.core.checks import PluginArgumentError

    (tmp_path / "data" / "train" / "a").mkdir(parents=True)
    with pytest.raises(PluginArgumentError, match="has no val/ folder"):
        yolo_ls.YOLO("yolo11n-cls.yaml").train(data=str(tmp_path / "data"), epochs=1, project=str(tmp_path / "runs"))
    assert not (tmp_path / "runs").exists()
