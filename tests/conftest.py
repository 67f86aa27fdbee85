"""Shared fixtures: the embedded datasets built once per session, and helpers for tiny real trainings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("YOLO_OFFLINE", "1")


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


@pytest.fixture(scope="session")
def digits_pose_yaml(digits_det_yaml, tmp_path_factory) -> Path:
    """The detection set as a pose set: 17 visible keypoints at each box's centre (the shape yolo11n-pose builds)."""
    import yaml

    src, dst = digits_det_yaml.parent, tmp_path_factory.mktemp("data") / "digits-pose-64"
    for split in ("train", "val"):
        (dst / "labels" / split).mkdir(parents=True)
        (dst / "images" / split).mkdir(parents=True)
        for img in (src / "images" / split).iterdir():
            (dst / "images" / split / img.name).symlink_to(img)
        for lbl in (src / "labels" / split).glob("*.txt"):
            lines = [f"{line} " + " ".join([" ".join(line.split()[1:3]) + " 2"] * 17)
                     for line in lbl.read_text().splitlines()]
            (dst / "labels" / split / lbl.name).write_text("\n".join(lines) + "\n")
    data = {**yaml.safe_load(digits_det_yaml.read_text()), "path": str(dst), "kpt_shape": [17, 3]}
    (dst / "data.yaml").write_text(yaml.safe_dump(data))
    return dst / "data.yaml"


@pytest.fixture(scope="session")
def fork_server(tmp_path_factory):
    """A :class:`tests.kill_helpers.ForkServer`: yolo-ls commands (or Python code) as forked children of one process
    that imported everything once, each a separate process that a test may SIGKILL. Shared by the kill/resume tests."""
    from tests.kill_helpers import ForkServer

    srv = ForkServer(tmp_path_factory.mktemp("fork-server"))
    yield srv
    srv.close()
