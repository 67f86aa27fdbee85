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


# ------------------------------------------------------------------------------------------- shared tiny trainings
# Each trains once per session, on first use, and is read by several tests. A test that changes a run folder works on
# a shutil.copytree of it; the YOLO object is only read (its trainer's criteria, state and metrics).
def _train_shared(tmp_path_factory, name: str, model: str, data: Path, **args):
    from yolo_ls import YOLO

    project = tmp_path_factory.mktemp(f"shared-{name}")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("YOLO_CONFIG_DIR", str(project / "cfg"))
        yolo = YOLO(model)
        yolo.train(data=str(data), project=str(project), name=name, **args)
    return project / name, yolo


@pytest.fixture(scope="session")
def shared_cls_run(tmp_path_factory, digits_root):
    """yolo11n-cls, the tiny classification settings, ε=0.1 (default mode): test_classify_training's plugin route and
    test_compat_training's classify case."""
    from tests.helpers import TINY_CLS

    return _train_shared(tmp_path_factory, "cls", "yolo11n-cls.yaml", digits_root, **TINY_CLS, label_smoothing=0.1,
                         exist_ok=True)


@pytest.fixture(scope="session")
def shared_cls_plots_run(tmp_path_factory, digits_root):
    """yolo11n-cls, 2 epochs, ε=0.1, plots=True, default calib_plots: test_calibration_training (files, figures, ECE
    against torchmetrics) and test_plots_training (figures before train() returns, epoch bins, yolo-ls plot)."""
    from tests.helpers import TINY_CLS

    return _train_shared(tmp_path_factory, "cls-plots", "yolo11n-cls.yaml", digits_root,
                         **{**TINY_CLS, "epochs": 2, "plots": True}, label_smoothing=0.1)


@pytest.fixture(scope="session")
def shared_det_run(tmp_path_factory, digits_det_yaml):
    """yolo11n, ε=0.1 (default mode fg), plots=True, calib_conf=0 (an untrained model's boxes are scored),
    calib_plots=all: test_calibration_training's d_ECE run and test_compat_training's detect case."""
    from tests.helpers import TINY_DET

    return _train_shared(tmp_path_factory, "det", "yolo11n.yaml", digits_det_yaml, **{**TINY_DET, "plots": True},
                         label_smoothing=0.1, calib_conf=0.0, calib_plots="all")


@pytest.fixture(scope="session")
def shared_seg_run(tmp_path_factory, digits_seg_yaml):
    """yolo11n-seg, ε=0.1, ls_mode=fg (the default, given): test_detect_training's segmentation case and
    test_compat_training's."""
    from tests.helpers import TINY_DET

    return _train_shared(tmp_path_factory, "seg", "yolo11n-seg.yaml", digits_seg_yaml, **TINY_DET,
                         label_smoothing=0.1, ls_mode="fg", exist_ok=True)


@pytest.fixture(scope="session")
def shared_det_nothing_scored_run(tmp_path_factory, digits_det_yaml):
    """yolo11n, 1 epoch from scratch, ε=0.1, calib_conf=0.999 (no prediction of a fresh model is that confident),
    plots=True, calib_plots=all, the figures drawn in this process and kept: (run, YOLO, [(Figure, path), ...]).
    test_detection_calibration checks the NaNs, test_plots_training the "nothing measured" diagrams."""
    from tests.helpers import TINY_DET
    from yolo_ls.plots import figures as plots

    figs: list = []
    real_save = plots._save
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("YOLO_LS_PLOT_FORK", "0")  # draw in this process, so the figures can be inspected
        mp.setattr(plots, "_save", lambda fig, path, *a: (figs.append((fig, path)), real_save(fig, path, *a))[1])
        run, yolo = _train_shared(tmp_path_factory, "det-nothing", "yolo11n.yaml", digits_det_yaml,
                                  **{**TINY_DET, "plots": True}, label_smoothing=0.1, calib_conf=0.999,
                                  calib_plots="all")
    return run, yolo, figs
