"""Helpers shared by the tests: the tiny-training settings, results.csv reading and a fresh-interpreter runner.

Import them as ``from tests.helpers import ...`` (``tests`` is a package, so this works from any working directory).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# Small, fast settings shared by every tiny training on the CPU.
TINY_CLS = dict(imgsz=32, epochs=1, batch=64, fraction=0.3, workers=0, seed=0, deterministic=True, plots=False,
                device="cpu", verbose=False, amp=False)
TINY_DET = dict(imgsz=64, epochs=1, batch=16, workers=0, seed=0, deterministic=True, plots=False, device="cpu",
                verbose=False, amp=False, mosaic=0.0)
# For plugin trainings whose claim is not about figures: no calibration figures (about 1 s a run, drawn in forked
# children the training waits for). The figures' own tests (test_calibration_training, test_plots_training), the
# loggers, kill/resume, examples and README runs keep the default calib_plots=final.
NO_FIGURES = dict(calib_plots="off")


def results(run_dir: Path) -> Any:
    """results.csv of a run as a DataFrame with stripped column names."""
    import pandas as pd

    df = pd.read_csv(Path(run_dir) / "results.csv")
    df.columns = [c.strip() for c in df.columns]
    return df


def run_python(code: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
    """Run Python code in a fresh interpreter (the repo on sys.path) and return the completed process."""
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **env},
    )


def yolo26_mark() -> Any:
    """Skip a test case that builds YOLO26 on a release without it (``yolo26*.yaml`` arrives in ultralytics 8.4.0)."""
    import pytest

    from yolo_ls.engine.compat import has_model_yaml

    return pytest.mark.skipif(not has_model_yaml("yolo26n.yaml"), reason="no YOLO26 before ultralytics 8.4.0")


def device_params() -> list:
    """The devices of a device-parametrised test: ``cpu``, and ``cuda`` marked ``cuda`` and skipped without CUDA.

    ``pytest -m cuda`` selects every CUDA case (``bench/gpu_check.py`` runs them that way on a GPU machine).
    """
    import pytest
    import torch

    no_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
    return ["cpu", pytest.param("cuda", marks=[pytest.mark.cuda, no_cuda])]


# One fresh interpreter for many CLI commands: each ``entrypoint(argv)`` with its own stdout/stderr captured at the
# file-descriptor level (what a logger or a C library writes too), its return code, or the traceback and exit code 1
# of an uncaught exception, as ``python -m yolo_ls.cli ARGV`` would end.
_CLI_BATCH = """
import json, os, sys, tempfile, traceback
from yolo_ls.cli import entrypoint

answers = []
for argv in json.loads(os.environ.pop("YOLO_LS_TEST_CLI_BATCH")):
    sys.stdout.flush(); sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        os.dup2(out.fileno(), 1); os.dup2(err.fileno(), 2)
        try:
            rc = entrypoint(argv)
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:
            traceback.print_exc()
            rc = 1
        sys.stdout.flush(); sys.stderr.flush()
        os.dup2(saved[0], 1); os.dup2(saved[1], 2)
        out.seek(0); err.seek(0)
        answers.append([rc, out.read().decode(errors="replace"), err.read().decode(errors="replace")])
    os.close(saved[0]); os.close(saved[1])
print("ANSWERS" + json.dumps(answers))
"""


def run_cli_batch(commands: list[list[str]], timeout: float = 900, cwd: Path = ROOT,
                  env: dict[str, str] | None = None) -> list[subprocess.CompletedProcess]:
    """``yolo-ls ARGV`` for each ARGV of ``commands``, one after the other in one fresh interpreter (working folder
    ``cwd``, environment ``env`` or this one's, the repo on sys.path): what each would exit with and print as its own
    process, paying the interpreter start and the imports once. Returns one CompletedProcess (args, returncode,
    stdout, stderr) per command."""
    import json

    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["YOLO_LS_TEST_CLI_BATCH"] = json.dumps(commands)
    proc = subprocess.run([sys.executable, "-c", _CLI_BATCH], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, env=env)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("ANSWERS")]
    assert proc.returncode == 0 and lines, (proc.stdout + proc.stderr)[-4000:]
    return [subprocess.CompletedProcess(argv, rc, out, err) for argv, (rc, out, err) in
            zip(commands, json.loads(lines[-1][len("ANSWERS"):]))]
