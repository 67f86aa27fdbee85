"""The CPU dry run of ``bench/gpu_check.py``: the GPU check must keep running wherever it cannot measure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT

CUDA_ONLY = ("cuda_tests", "host_syncs", "timing_cls_loss", "timing_det_loss", "timing_calibration", "multi_gpu")
CPU_RUNNABLE = ("recompile", "training")


@pytest.mark.slow
@pytest.mark.training
def test_cpu_dry_run_runs_every_check(tmp_path: Path) -> None:
    out = tmp_path / "gpu_check" / "gpu_check.json"
    env = {**os.environ, "YOLO_CONFIG_DIR": str(tmp_path / "cfg"), "YOLO_OFFLINE": "1", "MPLBACKEND": "Agg",
           "CUDA_VISIBLE_DEVICES": ""}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "bench/gpu_check.py", "--device", "cpu", "--quick", "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    print(f"gpu_check CPU dry run: {time.perf_counter() - t0:.1f} s")
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]

    report = json.loads(out.read_text())
    checks = report["checks"]
    assert set(checks) == set(CUDA_ONLY + CPU_RUNNABLE)
    assert all(c["status"] in ("pass", "fail", "skipped") for c in checks.values())
    for name in CUDA_ONLY:  # skipped, each with its one-line reason, and never because the budget ran out
        assert checks[name]["status"] == "skipped" and checks[name]["reason"], (name, checks[name])
        assert "\n" not in checks[name]["reason"] and not checks[name]["reason"].startswith("budget"), name
    for name in CPU_RUNNABLE:
        assert checks[name]["status"] == "pass", (name, checks[name]["reason"])
    assert report["failed"] == [] and report["environment"]["quick"] is True

    # what the dry run proves beyond "it ran"
    assert checks["cuda_tests"]["figures"]["counts"]["skipped"] > 0  # the device-parametrised tests have CUDA cases
    assert checks["recompile"]["figures"]["unique_graphs"] == 1
    for name in ("timing_cls_loss", "timing_det_loss", "timing_calibration"):
        assert checks[name]["figures"], name  # the timing code ran on the CPU and left its rows
    runs = checks["training"]["figures"]["runs"]
    assert set(runs) == {"cls", "det"}
    assert all(r["label_smoothing"] == [0.1] and r["final_vs_val"]["bin_counts_equal"] for r in runs.values())

    summary = (out.parent / "summary.txt").read_text()
    assert summary.splitlines()[-1] == "result: no check failed"
    assert all(name in summary for name in checks)


FAILING = """
import sys
sys.path[:0] = ["bench", "."]
import gpu_check

def boom(ctx):
    raise RuntimeError("a long message\\nits last line")

gpu_check.CHECKS = tuple((n, boom if n == "recompile" else f, *rest) for n, f, *rest in gpu_check.CHECKS)
sys.exit(gpu_check.main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_a_failing_check_does_not_stop_the_others_and_fails_the_run(tmp_path: Path) -> None:
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "YOLO_CONFIG_DIR": str(tmp_path / "cfg"), "YOLO_OFFLINE": "1", "MPLBACKEND": "Agg"}
    argv = ["--device", "cpu", "--only", "recompile,multi_gpu", "--out", str(out)]
    proc = subprocess.run([sys.executable, "-c", FAILING, *argv], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["failed"] == ["recompile"]
    assert report["checks"]["recompile"]["reason"] == "RuntimeError: its last line"
    assert "Traceback" in report["checks"]["recompile"]["figures"]["traceback"]
    assert report["checks"]["multi_gpu"]["status"] == "skipped"  # ran after the failure
    assert (tmp_path / "summary.txt").read_text().splitlines()[-1] == "result: FAILED: recompile"


def _load_gpu_check(monkeypatch: pytest.MonkeyPatch):
    """bench/gpu_check.py as a module (registered only for the test, as its dataclass needs)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "bench" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "gpu_check", module)
    monkeypatch.setattr(sys, "path", list(sys.path))  # it puts bench/ and the repo first; undone after the test
    spec.loader.exec_module(module)
    return module


def test_sync_verdicts_with_a_simulated_sync_debug_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """The host-sync verdicts (only ever reached on CUDA) against a stand-in for torch's sync debug mode."""
    import warnings

    import torch

    gpu_check = _load_gpu_check(monkeypatch)
    mode = {"now": 0}
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a: None)
    monkeypatch.setattr(torch.cuda, "get_sync_debug_mode", lambda: mode["now"])
    monkeypatch.setattr(torch.cuda, "set_sync_debug_mode", lambda m: mode.update(now=m))

    def syncs() -> None:  # what torch does for a synchronising call in each mode
        if mode["now"] == "error":
            raise RuntimeError("called a synchronizing CUDA operation")
        if mode["now"] == "warn":
            warnings.warn("called a synchronizing CUDA operation", stacklevel=1)

    def clean() -> None:
        pass

    out = gpu_check.prove_sync_free(
        {"clean": (clean, clean), "stock syncs, plugin as often": (syncs, syncs), "plugin adds": (clean, syncs),
         "stock syncs, plugin more": (syncs, lambda: (syncs(), syncs()))},
        {"strict clean": clean, "strict syncs": syncs},
    )
    assert {n: r["ok"] for n, r in out.items()} == {
        "clean": True, "stock syncs, plugin as often": True, "plugin adds": False, "stock syncs, plugin more": False,
        "strict clean": True, "strict syncs": False}
    assert "test_gpu_check.py" in out["plugin adds"]["summary"]  # the synchronising line is named
    assert "1 added at ['test_gpu_check.py:" in out["stock syncs, plugin more"]["summary"]
    assert out["strict syncs"]["summary"].startswith("synchronises at test_gpu_check.py:")
