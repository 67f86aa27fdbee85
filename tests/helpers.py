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
