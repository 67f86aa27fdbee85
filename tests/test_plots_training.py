"""The figures of real tiny trainings: what a default run leaves in its folder before train() returns, the per-epoch
bins behind ``yolo-ls plot RUN``, and the "nothing measured" diagram of a detection run with no prediction kept."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.helpers import TINY_CLS, TINY_DET
from yolo_ls.plots import figures as plots

pytestmark = pytest.mark.training


def test_default_run_final_figures_epoch_bins_then_yolo_ls_plot(tmp_path, digits_root):
    from yolo_ls import YOLO
    from yolo_ls.cli.main import entrypoint

    YOLO("yolo11n-cls.yaml").train(**{**TINY_CLS, "data": str(digits_root), "project": str(tmp_path), "name": "r",
                                      "epochs": 2, "plots": True, "label_smoothing": 0.1})
    run = tmp_path / "r"
    cal = run / "calibration"
    # before train() returned: the final figures (drawn in forked children, waited for) and no per-epoch diagram
    for png in (cal / "reliability.png", cal / "calibration_curves.png", run / "label_smoothing.png"):
        assert png.is_file() and png.stat().st_size > 5000, png
    assert not list(cal.glob("reliability_epoch*.png"))
    log = json.loads((cal / "epochs.json").read_text())
    assert log["task"] == "classify" and [e["epoch"] for e in log["epochs"]] == [1, 2]
    csv = pd.read_csv(run / "calibration.csv")
    n_val = sum(1 for d in (digits_root / "val").iterdir() for _ in d.iterdir())
    for entry, (_, row) in zip(log["epochs"], csv.iterrows()):
        assert sum(entry["bins"]["count"]) == n_val  # every val sample is in the kept bins
        assert entry["metrics"]["ece"] == pytest.approx(row["ece"], abs=1e-5)
        assert entry["label_smoothing"] == row["label_smoothing"] == 0.1
    assert entrypoint(["plot", str(run)]) == 0
    for e in (1, 2):
        assert (cal / f"reliability_epoch{e:03d}.png").stat().st_size > 5000


def test_detection_with_nothing_above_calib_conf_draws_nothing_measured(tmp_path, digits_det_yaml, monkeypatch):
    from yolo_ls import YOLO

    monkeypatch.setenv("YOLO_LS_PLOT_FORK", "0")  # draw in this process, so the figures can be inspected
    figs = []
    real_save = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path, *a: (figs.append((fig, path)), real_save(fig, path, *a))[1])
    YOLO("yolo11n.yaml").train(**{**TINY_DET, "data": str(digits_det_yaml), "project": str(tmp_path), "name": "d",
                                  "plots": True, "label_smoothing": 0.1, "calib_conf": 1.0, "calib_plots": "all"})
    diagrams = {p.name: f for f, p in figs if p.name.startswith("reliability")}
    assert set(diagrams) == {"reliability_epoch001.png", "reliability.png"}
    for name, fig in diagrams.items():
        title = fig.axes[0].get_title()
        assert title.endswith(": nothing measured"), (name, title)
        texts = [t.get_text() for t in fig.axes[0].texts] + [t.get_text() for t in fig.texts]
        assert "no prediction with confidence ≥ calib_conf=1" in texts
        assert "ece" not in " ".join([title, *texts]).lower()
