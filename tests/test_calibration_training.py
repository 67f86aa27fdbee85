"""Calibration in real trainings: plugin trainers (on by default) and callbacks on a stock ultralytics.YOLO."""

from __future__ import annotations

import math

import cv2
import pytest

from tests.helpers import TINY_CLS, results
from yolo_ls.calibration import CLASSIFICATION_METRICS as CLS_KEYS
from yolo_ls.calibration import DETECTION_METRICS as DET_KEYS

pytestmark = pytest.mark.training


def _valid_png(path) -> None:
    assert path.exists() and path.stat().st_size > 2000, path
    im = cv2.imread(str(path))
    assert im is not None and im.shape[0] > 100 and im.shape[1] > 100, path
    assert im.std() > 5, f"{path} is a flat image"


def _csv(path):
    import pandas as pd

    return pd.read_csv(path)


@pytest.fixture(scope="module")
def cls_run(shared_cls_plots_run):
    """yolo11n-cls, 2 epochs, plots=True, ε=0.1 (conftest; test_plots_training reads the same run)."""
    return shared_cls_plots_run


def test_classification_training_writes_calibration(cls_run):
    run, _ = cls_run
    df = _csv(run / "calibration.csv")
    assert df["epoch"].tolist() == [1, 2]
    assert list(df.columns) == ["epoch", "label_smoothing", *CLS_KEYS, "ece_ts"]
    assert df["label_smoothing"].tolist() == [0.1, 0.1]
    assert math.isnan(df["ece_ts"].iloc[0]) and 0 <= df["ece_ts"].iloc[1] <= 1  # temperature fit on the final epoch
    assert (df["overconfidence"] - (df["confidence"] - df["accuracy"])).abs().max() < 1e-5
    res = results(run)
    for k in CLS_KEYS:
        assert f"calib/{k}" in res.columns
        assert res[f"calib/{k}"].tolist() == pytest.approx(df[k].tolist(), abs=1e-4)
    # the calibration accuracy is Ultralytics' own top-1 on the same val set
    assert res["calib/accuracy"].tolist() == pytest.approx(res["metrics/accuracy_top1"].tolist(), abs=1e-4)
    for name in ("reliability.png", "calibration_curves.png"):  # default calib_plots=final: the final figures
        _valid_png(run / "calibration" / name)
    assert not list((run / "calibration").glob("reliability_epoch*.png"))  # per-epoch: on demand (yolo-ls plot)


def test_logged_final_ece_matches_recomputation_from_last_pt(cls_run, digits_root):
    """Re-run the val set through last.pt ourselves and recompute ECE with torchmetrics."""
    import torch
    from torchmetrics.functional.classification import multiclass_calibration_error
    from ultralytics import YOLO

    run, _ = cls_run
    model = YOLO(str(run / "weights" / "last.pt"))
    classes = sorted(p.name for p in (digits_root / "val").iterdir())
    probs, labels = [], []
    for label, cls in enumerate(classes):
        files = sorted((digits_root / "val" / cls).iterdir())
        for r in model.predict([str(f) for f in files], imgsz=32, device="cpu", verbose=False, batch=64):
            probs.append(r.probs.data.float())
            labels.append(label)
    probs, labels = torch.stack(probs), torch.tensor(labels)
    ref = float(multiclass_calibration_error(probs, labels, num_classes=10, n_bins=15, norm="l1"))
    logged = float(_csv(run / "calibration.csv")["ece"].iloc[-1])
    assert logged == pytest.approx(ref, abs=0.01)


def test_detection_training_writes_d_ece(shared_det_run):
    """yolo11n, ε=0.1, plots=True, calib_conf=0, calib_plots=all (conftest; test_compat_training reads it too)."""
    run, _ = shared_det_run
    df = _csv(run / "calibration.csv")
    assert df["epoch"].tolist() == [1]
    assert [c for c in df.columns if not c.startswith("d_ece/")] == ["epoch", "label_smoothing", *DET_KEYS, "d_ece_ts"]
    assert sorted(c for c in df.columns if c.startswith("d_ece/")) == [f"d_ece/{i}" for i in range(10)]
    assert 0 <= df["d_ece"].iloc[0] <= 1
    assert "calib/d_ece" in results(run).columns
    _valid_png(run / "calibration" / "reliability_epoch001.png")
    _valid_png(run / "calibration" / "reliability.png")


def test_stock_yolo_with_calibration_callbacks(tmp_path, digits_root):
    """Route (b): stock ultralytics.YOLO, stock trainer, no smoothing, then a plain val()."""
    import ultralytics

    from yolo_ls.engine.callbacks import add_calibration_callbacks

    model = add_calibration_callbacks(ultralytics.YOLO("yolo11n-cls.yaml"), bins=10, plots="final")
    model.train(**{**TINY_CLS, "data": str(digits_root), "project": str(tmp_path), "name": "stock", "plots": True})
    run = tmp_path / "stock"
    df = _csv(run / "calibration.csv")
    assert df["epoch"].tolist() == [1] and df["label_smoothing"].tolist() == [0.0]
    assert "calib/ece" in results(run).columns
    assert not list((run / "calibration").glob("reliability_epoch*.png"))  # plots="final"
    _valid_png(run / "calibration" / "reliability.png")
    # the trainer was stock: its checkpoint and args know nothing of yolo-ls
    assert type(model.trainer).__module__.startswith("ultralytics.")

    metrics = model.val(data=str(digits_root), imgsz=32, batch=64, device="cpu", project=str(tmp_path), name="v")
    assert set(CLS_KEYS) <= set(metrics.calibration) and "ece_ts" in metrics.calibration
    assert metrics.calibration["accuracy"] == pytest.approx(metrics.top1, abs=1e-4)
    _valid_png(tmp_path / "v" / "reliability.png")


def test_calibration_off_and_bad_calibration_args(tmp_path, digits_root):
    from yolo_ls import YOLO
    from yolo_ls.core.args import PluginArgumentError

    for bad in ({"calib_bins": 0}, {"calib_bins": -1}, {"calib_bins": 10**7}, {"calib_plots": "some"},
                {"calib_conf": 1.5}, {"calibration": "yes"}):
        with pytest.raises(PluginArgumentError):
            YOLO("yolo11n-cls.yaml").train(**{**TINY_CLS, "data": str(digits_root), "project": str(tmp_path / "x")},
                                           **bad)
    assert not (tmp_path / "x").exists()
    YOLO("yolo11n-cls.yaml").train(**{**TINY_CLS, "data": str(digits_root), "project": str(tmp_path), "name": "off",
                                      "calibration": False})
    assert not (tmp_path / "off" / "calibration.csv").exists()
    assert not any(c.startswith("calib/") for c in results(tmp_path / "off").columns)

