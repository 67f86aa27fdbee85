"""The CLI's val and cfg= routes, the compare report, and every example run as written (with a tiny epoch count)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from tests.helpers import ROOT, TINY_CLS, results, run_cli_batch

pytestmark = pytest.mark.training


def _kv(d: dict) -> list[str]:
    return [f"{k}={v}" for k, v in d.items()]


def test_cli_cfg_file_with_plugin_keys_then_val(tmp_path, digits_root):
    """train cfg=, val, and a refused val: the three commands in one fresh interpreter (tests.helpers.run_cli_batch)."""
    cfg = tmp_path / "my.yaml"
    cfg.write_text(yaml.safe_dump({**TINY_CLS, "label_smoothing": 0.05, "ls_mode": "exclusive", "calib_bins": 10}))
    best = tmp_path / "cfg" / "weights" / "best.pt"
    train, val, refused = run_cli_batch([
        ["train", f"cfg={cfg}", "model=yolo11n-cls.yaml", f"data={digits_root}", f"project={tmp_path}", "name=cfg",
         "epochs=1"],
        ["val", f"model={best}", f"data={digits_root}", "imgsz=32", "batch=64", "device=cpu", f"project={tmp_path}",
         "name=val"],
        ["val", f"model={best}", f"data={digits_root}", "ls_schedule=linear", f"project={tmp_path}"],
    ])
    assert train.returncode == 0, train.stderr[-3000:]
    args = yaml.safe_load((tmp_path / "cfg" / "args.yaml").read_text())
    assert (args["label_smoothing"], args["ls_mode"], args["calib_bins"]) == (0.05, "exclusive", 10)

    assert val.returncode == 0, val.stderr[-3000:]
    assert "Calibration: ece=" in val.stdout + val.stderr
    assert (tmp_path / "val" / "reliability.png").stat().st_size > 2000

    assert refused.returncode == 2 and "only apply to training" in refused.stderr


def _fresh_env(tmp_path: Path) -> dict[str, str]:
    """A subprocess environment with its own Ultralytics settings (runs_dir under tmp_path) and not seen as pytest."""
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    env.update(YOLO_CONFIG_DIR=str(tmp_path / "cfg"), PYTHONPATH=str(ROOT))
    code = f"from ultralytics.utils import SETTINGS; SETTINGS.update({{'runs_dir': {str(tmp_path / 'runs')!r}}})"
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, timeout=300)
    return env


def test_compare_relative_project_report_matches_runs_rerun_reuses_changed_args_refused(tmp_path, digits_root):
    """Relative project= in a fresh cwd lands where Ultralytics puts it (runs_dir/<task>/<project>); short console."""
    env, cwd = _fresh_env(tmp_path), tmp_path / "work"
    cwd.mkdir()
    args = {**TINY_CLS, "epochs": 1, "project": "rel/proj", "name": "cmp"}
    args.pop("seed")
    cmd = [sys.executable, "-m", "yolo_ls.cli.main", "compare", "model=yolo11n-cls.yaml", f"data={digits_root}",
           "label_smoothing=0,0.1", *_kv(args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "runs" / "classify" / "rel" / "proj" / "cmp"
    for name in ("report.md", "report.csv", "reliability.png", "curves.png"):
        assert (out / name).stat().st_size > 200, name
    assert not (cwd / "rel").exists() and not (cwd / "runs").exists()
    lines = proc.stdout.splitlines()
    assert any(ln.startswith("yolo-ls: [1/2] eps0 seed 0: training ...") for ln in lines), proc.stdout
    assert any(ln.startswith("yolo-ls: [2/2] eps0.1 seed 0: done in ") for ln in lines), proc.stdout
    assert "| variant | label_smoothing |" in proc.stdout and str(out / "report.md") in proc.stdout
    assert len(lines) < 20 and "Epoch" not in proc.stdout, proc.stdout  # stock output is in each variant's log
    assert "Starting training" in (out / "eps0" / "seed0" / "compare.log").read_text()
    report = pd.read_csv(out / "report.csv")
    assert report["label_smoothing"].tolist() == [0.0, 0.1] and report["seed"].tolist() == [0, 0]
    for _, row in report.iterrows():  # the numbers are best.pt's final validation (calibration/final.json)
        final = json.loads((out / row["run"] / "calibration" / "final.json").read_text())
        for k in ("ece", "mce", "brier", "nll", "overconfidence"):
            assert row[k] == pytest.approx(final["metrics"][k], rel=1e-5)
        assert row["top1"] == pytest.approx(final["val_metrics"]["metrics/accuracy_top1"], rel=1e-5)
        assert row["best_epoch"] == 1
        assert row["top1_last"] == pytest.approx(results(out / row["run"])["metrics/accuracy_top1"].iloc[-1])
    md = (out / "report.md").read_text()
    assert "best calibrated variant is ε=" in md and "| variant |" in md and "epochs=1" in md

    # the same command again, with epochs changed, and with exist_ok: three commands in one more fresh interpreter
    stamp = (out / "eps0.1" / "seed0" / "results.csv").stat().st_mtime_ns
    argv = cmd[3:]  # after python -m yolo_ls.cli
    again, changed, owned = run_cli_batch([argv, [c.replace("epochs=1", "epochs=2") for c in argv],
                                           [*argv, "exist_ok=True"]], cwd=cwd, env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("reusing the finished variant") == 2

    assert changed.returncode == 2 and "Traceback" not in changed.stderr
    assert "eps0/seed0: epochs=1 there, 2 now" in changed.stderr and "Nothing was trained" in changed.stderr
    assert (out / "eps0.1" / "seed0" / "results.csv").stat().st_mtime_ns == stamp  # reused, then refused: untouched

    assert owned.returncode == 2 and "'exist_ok' cannot be passed to compare" in owned.stderr
    assert "Traceback" not in owned.stderr and "multiple values" not in owned.stderr


def test_compare_rejects_bad_eps_lists(tmp_path):
    bad = ("label_smoothing=0.1", "label_smoothing=0,1.5", "label_smoothing=0,abc")
    answers = run_cli_batch([["compare", "model=yolo11n-cls.yaml", "data=digits", b, f"project={tmp_path}"]
                             for b in bad])
    for proc in answers:
        assert proc.returncode == 2, proc.stderr
        assert "label_smoothing" in proc.stderr and "Traceback" not in proc.stderr


EXAMPLES = ["train_classify.py", "train_detect.py", "callbacks_on_stock_yolo.py", "custom_schedule.py"]
NOISE = "compare_noise.sh"


@pytest.fixture(scope="module")
def example_runs(request, tmp_path_factory) -> dict[str, Future]:
    """Every example the selected tests ask for, as written, each in its own interpreter (``python examples/X.py
    --epochs 1 --project P``; compare_noise.sh with EPOCHS=1, run twice), two at a time (a CPU training uses one thread
    on the 2-core machine), the longest first. The embedded datasets they share are built atomically, so two examples
    may ask for the same one at once. Returns each example's future: its result, or the exception it raised."""
    wanted = set()
    for item in (i for i in request.session.items if i.module is request.module):
        if item.originalname == "test_python_examples_run_as_written":
            wanted.add(item.callspec.params["script"])
        elif item.originalname == "test_compare_noise_example_runs_as_written_and_reruns":
            wanted.add(NOISE)
    projects = {name: tmp_path_factory.mktemp(name.split(".")[0]) for name in wanted}

    def run(name: str) -> tuple[Any, Path]:
        if name == NOISE:
            return run_noise_example(projects[name]), projects[name]
        proc = subprocess.run([sys.executable, str(ROOT / "examples" / name), "--epochs", "1", "--project",
                               str(projects[name])], capture_output=True, text=True, cwd=ROOT, timeout=900)
        return proc, projects[name]

    order = [n for n in (NOISE, "train_detect.py", *EXAMPLES) if n in wanted]
    with ThreadPoolExecutor(2) as pool:  # leaves once every example is done
        return {name: pool.submit(run, name) for name in dict.fromkeys(order)}


@pytest.mark.parametrize("script", EXAMPLES)
def test_python_examples_run_as_written(example_runs, script):
    proc, project = example_runs[script].result()
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = [p for p in project.iterdir() if (p / "results.csv").exists()]
    assert runs, f"{script} wrote no run"
    assert all((r / "calibration.csv").exists() for r in runs)


def run_noise_example(project: Path) -> tuple[subprocess.CompletedProcess, list[str], subprocess.CompletedProcess]:
    """compare_noise.sh with EPOCHS=1 into ``project``; what ``project`` then holds; the same command again."""
    env = {**os.environ, "EPOCHS": "1", "PROJECT": str(project), "YOLO_LS": f"{sys.executable} -m yolo_ls.cli"}
    script = ["bash", str(ROOT / "examples" / NOISE)]
    proc = subprocess.run(script, capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)
    listing = sorted(p.name for p in project.iterdir())
    if proc.returncode != 0:
        return proc, listing, proc
    return proc, listing, subprocess.run(script, capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)


def test_compare_noise_example_runs_as_written_and_reruns(example_runs):
    (proc, listing, again), tmp_path = example_runs[NOISE].result()
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = pd.read_csv(tmp_path / "digits-noise20" / "noise_manifest.csv")
    assert len(manifest) == round(0.2 * 1437)
    assert (tmp_path / "compare-noise20" / "report.md").exists()
    assert listing == ["compare-noise20", "digits-noise20"], "nothing left beside"

    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("reusing the finished variant") == 3 and "yolo-ls: error" not in again.stderr
