"""``yolo-ls enable-yolo-cli`` / ``disable-yolo-cli``: the stock ``yolo`` command trains, validates and resumes
through yolo-ls while on, and is byte-identical to what pip wrote once off.

Every test works on copies of this environment's ``yolo`` and ``ultralytics`` console scripts in a temporary
``bin/`` (``bin=DIR``); the real scripts of the shared environment are only read.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT, TINY_CLS, results, run_cli_batch

REAL_BIN = Path(sys.executable).parent


@pytest.fixture
def scripts(tmp_path) -> Path:
    """A temporary bin/ holding exact copies (bytes and mode) of this environment's yolo and ultralytics scripts."""
    d = tmp_path / "bin"
    d.mkdir()
    for name in ("yolo", "ultralytics"):
        shutil.copy2(REAL_BIN / name, d / name)
    return d


def _snapshot(d: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), stat.S_IMODE(p.stat().st_mode)) for p in sorted(d.iterdir())}


def _hook_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "yolo_ls", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_enable_disable_round_trip_is_byte_identical_and_idempotent(scripts):
    from yolo_ls.cli.yolo_hook import script_state

    original = _snapshot(scripts)
    assert original["yolo"][0] == (REAL_BIN / "yolo").read_bytes()
    on = _hook_cli("enable-yolo-cli", f"bin={scripts}")
    assert on.returncode == 0, on.stderr
    assert "re-pointed at yolo-ls" in on.stdout
    hooked = _snapshot(scripts)
    for name in ("yolo", "ultralytics"):
        assert script_state(scripts / name) == "on"
        assert hooked[name][0] != original[name][0] and hooked[name][1] == original[name][1]
        assert hooked[name][0].splitlines()[0] == original[name][0].splitlines()[0]  # same interpreter (shebang)
    again = _hook_cli("enable-yolo-cli", f"bin={scripts}")
    assert again.returncode == 0 and "already re-pointed" in again.stdout
    assert _snapshot(scripts) == hooked
    off = _hook_cli("disable-yolo-cli", f"bin={scripts}")
    assert off.returncode == 0 and "restored" in off.stdout, off.stderr
    assert _snapshot(scripts) == original  # bytes and file mode, every script
    off_again = _hook_cli("disable-yolo-cli", f"bin={scripts}")
    assert off_again.returncode == 0 and "not re-pointed by yolo-ls" in off_again.stdout
    assert _snapshot(scripts) == original
    assert not [p for p in scripts.iterdir() if p.name.startswith(".")], "a temporary file was left behind"


def test_disable_restores_an_unusual_mode_exactly(scripts):
    from yolo_ls.cli.yolo_hook import disable, enable

    os.chmod(scripts / "yolo", 0o750)
    original = _snapshot(scripts)
    enable(scripts)
    assert stat.S_IMODE((scripts / "yolo").stat().st_mode) == 0o750
    disable(scripts)
    assert _snapshot(scripts) == original


@pytest.mark.slow
def test_doctor_says_whether_the_hook_is_on(scripts):
    # doctor, enable-yolo-cli, doctor: three yolo-ls commands in one fresh interpreter (tests.helpers.run_cli_batch)
    off, enabled, on = run_cli_batch([["doctor", f"bin={scripts}"], ["enable-yolo-cli", f"bin={scripts}"],
                                      ["doctor", f"bin={scripts}"]])
    assert off.returncode == 0, off.stderr
    assert "stock 'yolo' hook: off: the stock command, which drops label_smoothing" in off.stdout
    assert str(scripts / "yolo") in off.stdout and "yolo-ls 0." in off.stdout
    assert enabled.returncode == 0, enabled.stderr
    assert "stock 'yolo' hook: ON: train/val/resume go through yolo-ls" in on.stdout
    assert "stock 'ultralytics' hook: ON" in on.stdout


def test_refusals_change_nothing(tmp_path, scripts, monkeypatch):
    from yolo_ls.cli.yolo_hook import YoloCliHookError, disable, enable

    with pytest.raises(YoloCliHookError, match="is not a folder"):
        enable(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(YoloCliHookError, match="no 'yolo' console script in"):
        enable(empty)
    with pytest.raises(YoloCliHookError, match="no 'yolo' console script in"):
        disable(empty)

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "yolo").write_text("#!/bin/sh\necho my own yolo\n")
    with pytest.raises(YoloCliHookError, match="not Ultralytics' pip-generated console script"):
        enable(foreign)
    assert (foreign / "yolo").read_text() == "#!/bin/sh\necho my own yolo\n"

    original = _snapshot(scripts)
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path).name != "ultralytics")  # root can write all
    with pytest.raises(YoloCliHookError, match=r"cannot write .*ultralytics: permission denied"):
        enable(scripts)
    assert _snapshot(scripts) == original  # checked before anything was written: yolo untouched too


def test_damaged_backup_is_refused(scripts):
    from yolo_ls.cli.yolo_hook import YoloCliHookError, disable, enable

    enable(scripts)
    text = (scripts / "yolo").read_text()
    tampered = text.replace("b64=", "b64=AAAA", 1)
    (scripts / "yolo").write_text(tampered)
    with pytest.raises(YoloCliHookError, match="does not match its sha256"):
        disable(scripts)
    assert (scripts / "yolo").read_text() == tampered


def test_cli_errors_are_one_line(tmp_path):
    bad = _hook_cli("enable-yolo-cli", f"bin={tmp_path}")
    assert bad.returncode == 1 and "yolo-ls: error: enable-yolo-cli: no 'yolo' console script" in bad.stderr
    assert "Traceback" not in bad.stderr
    typo = _hook_cli("enable-yolo-cli", f"dir={tmp_path}")
    assert typo.returncode == 2 and "The only argument is 'bin=DIR'" in typo.stderr


@pytest.mark.parametrize(
    "argv,route",
    [
        (["train", "model=a.yaml", "label_smoothing=0.1"], "yolo-ls"),
        (["train", "resume", "model=last.pt"], "yolo-ls"),
        (["classify", "val", "model=best.pt"], "yolo-ls"),
        (["predict", "model=a.pt", "ls_mode=fg"], "yolo-ls"),  # so the plugin argument is refused in one line
        (["predict", "model=a.pt", "label_smoothing", "=", "0.1"], "yolo-ls"),
        (["predict", "model=a.pt", "source=x.jpg"], "stock"),
        (["export", "model=a.pt"], "stock"),
        (["version"], "stock"),
        (["model=a.pt"], "stock"),  # no mode: stock's default (predict), as before the hook
        ([], "stock"),
    ],
)
def test_hooked_entrypoint_routes_only_train_and_val_to_yolo_ls(monkeypatch, argv, route):
    import ultralytics.cfg

    import yolo_ls.cli.argv
    from yolo_ls.cli import yolo_hook as yolo_cli

    seen = []
    monkeypatch.setattr(sys, "argv", ["/env/bin/yolo", *argv])
    monkeypatch.setattr(yolo_ls.cli.argv, "run_yolo_command", lambda a: seen.append(("yolo-ls", a)) or 0)
    monkeypatch.setattr(ultralytics.cfg, "entrypoint", lambda: seen.append(("stock", sys.argv[1:])))
    assert yolo_cli.entrypoint() == 0
    assert seen == [(route, argv)]


def _loadable(weights: Path) -> bool:
    """Whether last.pt and best.pt are both fully written (a kill during the save would truncate one)."""
    from ultralytics.utils.patches import torch_load

    try:
        return all(torch_load(weights / n, map_location="cpu", weights_only=False) for n in ("last.pt", "best.pt"))
    except Exception:
        return False


def _train_env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "YOLO_CONFIG_DIR": str(tmp_path / "cfg"), "YOLO_OFFLINE": "1"}
    env.pop("PYTEST_CURRENT_TEST", None)
    return env


@pytest.mark.training
def test_hooked_yolo_trains_and_resumes_with_smoothing_and_is_stock_after_disable(tmp_path, scripts, digits_root):
    from yolo_ls.cli.yolo_hook import disable, enable

    original = _snapshot(scripts)
    enable(scripts)
    tiny = {**TINY_CLS, "epochs": 3}
    args = ["train", "model=yolo11n-cls.yaml", f"data={digits_root}", f"project={tmp_path}",
            *(f"{k}={v}" for k, v in tiny.items()), "label_smoothing=0.15", "ls_schedule=cosine"]
    env = _train_env(tmp_path)

    # 1) hooked 'yolo train', SIGKILLed once the first epoch is on disk
    run = tmp_path / "hooked"
    proc = subprocess.Popen([str(scripts / "yolo"), *args, "name=hooked"], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 600
    try:
        while time.time() < deadline:
            csv = run / "results.csv"
            if csv.exists() and len(csv.read_text().strip().splitlines()) >= 2 and _loadable(run / "weights"):
                break
            assert proc.poll() is None, "the run finished before it could be killed"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert 1 <= len(results(run)) < 3

    # 2) 'yolo train resume model=last.pt' through the hook: ε and its schedule come back, 20-column rows
    resumed = subprocess.run([str(scripts / "yolo"), "train", "resume", f"model={run / 'weights/last.pt'}"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    df = results(run)
    assert df["epoch"].tolist() == [1, 2, 3]
    # cosine 0.15 -> 0 over epochs 0..2: 0.15, 0.15 * (1 + cos(pi / 2)) / 2, 0
    assert df["label_smoothing"].round(6).tolist() == pytest.approx([0.15, 0.075, 0.0], abs=1e-6)
    assert df["calib/ece"].notna().all() and ((df["calib/ece"] >= 0) & (df["calib/ece"] <= 1)).all()

    # 3) disabled: byte-identical scripts, and 'yolo train' is stock again (ε dropped with the deprecation warning)
    disable(scripts)
    assert _snapshot(scripts) == original
    stock_args = [a for a in args if not a.startswith("ls_schedule=") and not a.startswith("epochs=")]
    stock = subprocess.run([str(scripts / "yolo"), *stock_args, "epochs=1", "name=stock"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=900)
    assert stock.returncode == 0, stock.stderr[-3000:]
    assert "'label_smoothing' is deprecated" in stock.stdout + stock.stderr
    stock_df = results(tmp_path / "stock")
    assert "label_smoothing" not in stock_df.columns and not any(c.startswith("calib/") for c in stock_df.columns)
