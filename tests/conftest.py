"""Shared fixtures: the embedded datasets built once per session, and helpers for tiny real trainings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("YOLO_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]

# Small, fast settings shared by every tiny training on the CPU.
TINY_CLS = dict(imgsz=32, epochs=1, batch=64, fraction=0.3, workers=0, seed=0, deterministic=True, plots=False,
                device="cpu", verbose=False, amp=False)
TINY_DET = dict(imgsz=64, epochs=1, batch=16, workers=0, seed=0, deterministic=True, plots=False, device="cpu",
                verbose=False, amp=False, mosaic=0.0)


@pytest.fixture(scope="session")
def digits_root(tmp_path_factory) -> Path:
    """The embedded digits classification dataset at imgsz 32."""
    from yolo_ls.datasets import digits

    return digits(tmp_path_factory.mktemp("data") / "digits-32", imgsz=32)


@pytest.fixture(scope="session")
def digits_det_yaml(tmp_path_factory) -> Path:
    """A small embedded digits detection dataset at imgsz 64."""
    from yolo_ls.datasets import digits_detection

    return digits_detection(tmp_path_factory.mktemp("data") / "digits-det-64", imgsz=64, n_train=48, n_val=16)


@pytest.fixture(scope="session")
def digits_seg_yaml(digits_det_yaml) -> Path:
    """The detection set turned into a segmentation set: each box written as a 4-point polygon."""
    import yaml

    src = digits_det_yaml.parent
    dst = src.parent / "digits-seg-64"
    for split in ("train", "val"):
        (dst / "labels" / split).mkdir(parents=True, exist_ok=True)
        (dst / "images" / split).mkdir(parents=True, exist_ok=True)
        for img in (src / "images" / split).iterdir():
            target = dst / "images" / split / img.name
            if not target.exists():
                target.symlink_to(img)
        for lbl in (src / "labels" / split).glob("*.txt"):
            lines = []
            for line in lbl.read_text().splitlines():
                c, x, y, w, h = line.split()
                x, y, w, h = map(float, (x, y, w, h))
                pts = [x - w / 2, y - h / 2, x + w / 2, y - h / 2, x + w / 2, y + h / 2, x - w / 2, y + h / 2]
                lines.append(" ".join([c, *(f"{p:.6f}" for p in pts)]))
            (dst / "labels" / split / lbl.name).write_text("\n".join(lines) + "\n")
    data = yaml.safe_load(digits_det_yaml.read_text())
    data["path"] = str(dst)
    out = dst / "data.yaml"
    out.write_text(yaml.safe_dump(data))
    return out


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
