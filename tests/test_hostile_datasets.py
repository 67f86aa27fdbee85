"""Hostile datasets: one class, a corrupt image, an empty val split, detection images without labels."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from tests.helpers import TINY_DET, results
from yolo_ls.core.args import PluginArgumentError

pytestmark = pytest.mark.training

KW = dict(imgsz=32, epochs=1, batch=16, workers=0, device="cpu", plots=False, exist_ok=True, verbose=False, seed=0)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    from yolo_ls.datasets import digits

    return digits(tmp_path_factory.mktemp("d") / "digits-16", imgsz=16)


def _subset(src: Path, dst: Path, classes, per_class: int = 30) -> Path:
    for split in ("train", "val"):
        for c in classes:
            (dst / split / c).mkdir(parents=True, exist_ok=True)
            for f in sorted((src / split / c).iterdir())[:per_class]:
                shutil.copy(f, dst / split / c / f.name)
    return dst


def test_one_class_dataset_trains_with_uniform_and_rejects_exclusive(tmp_path, small):
    from yolo_ls import YOLO

    one = _subset(small, tmp_path / "one", ["3"])
    with pytest.raises(PluginArgumentError, match="needs at least 2 classes.*nc=1"):
        YOLO("yolo11n-cls.yaml").train(data=str(one), project=str(tmp_path / "p"), ls_mode="exclusive",
                                       label_smoothing=0.1, **KW)
    assert not (tmp_path / "p").exists()
    YOLO("yolo11n-cls.yaml").train(data=str(one), project=str(tmp_path), name="one", label_smoothing=0.1, **KW)
    df = results(tmp_path / "one")
    assert math.isfinite(df["train/loss"].iloc[-1]) and df["calib/accuracy"].iloc[-1] == 1.0


def test_corrupt_image_is_skipped_by_ultralytics_and_training_finishes(tmp_path, small):
    from yolo_ls import YOLO

    data = _subset(small, tmp_path / "bad", ["0", "1", "2"])
    (data / "train" / "0" / "corrupt.png").write_bytes(b"this is not a png")
    YOLO("yolo11n-cls.yaml").train(data=str(data), project=str(tmp_path), name="bad", label_smoothing=0.1, **KW)
    assert math.isfinite(results(tmp_path / "bad")["train/loss"].iloc[-1])
    assert (tmp_path / "bad" / "calibration.csv").exists()


def test_empty_val_split_fails_with_ultralytics_clear_error(tmp_path, small):
    from yolo_ls import YOLO

    data = _subset(small, tmp_path / "ev", ["0", "1"])
    for f in (data / "val").rglob("*.png"):
        f.unlink()
    with pytest.raises(FileNotFoundError, match="No images found in 'val' split"):
        YOLO("yolo11n-cls.yaml").train(data=str(data), project=str(tmp_path), name="ev", label_smoothing=0.1, **KW)


def test_detection_images_without_labels(tmp_path, digits_det_yaml):
    """Background-only images: fg smoothing leaves their all-zero targets at zero; training stays finite."""
    import yaml

    from yolo_ls import YOLO

    src = digits_det_yaml.parent
    dst = tmp_path / "nolabels"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.cache"))
    for i, lbl in enumerate(sorted((dst / "labels" / "train").glob("*.txt"))):
        if i % 2 == 0:
            lbl.write_text("")  # half the train images become background images
    data = yaml.safe_load((dst / "data.yaml").read_text())
    data["path"] = str(dst)
    (dst / "data.yaml").write_text(yaml.safe_dump(data))
    YOLO("yolo11n.yaml").train(**{**TINY_DET, "data": str(dst / "data.yaml"), "project": str(tmp_path),
                                  "name": "nl", "label_smoothing": 0.1})
    df = results(tmp_path / "nl")
    assert all(math.isfinite(df[c].iloc[-1]) for c in ("train/box_loss", "train/cls_loss", "train/dfl_loss"))
