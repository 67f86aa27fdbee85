"""The figures of real tiny trainings: what a default run leaves in its folder before train() returns, the per-epoch
bins behind ``yolo-ls plot RUN``, and the "nothing measured" diagram of a detection run with no prediction kept."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

pytestmark = pytest.mark.training


def test_default_run_final_figures_epoch_bins_then_yolo_ls_plot(tmp_path, digits_root, shared_cls_plots_run):
    """The 2-epoch ε=0.1 run with plots=True of conftest (test_calibration_training reads it too), copied: `yolo-ls
    plot` adds figures to the folder."""
    from yolo_ls.cli import entrypoint

    run = tmp_path / "r"
    shutil.copytree(shared_cls_plots_run[0], run)
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


def test_detection_with_nothing_above_calib_conf_draws_nothing_measured(shared_det_nothing_scored_run):
    """yolo11n from scratch with calib_conf=0.999, calib_plots=all, the figures kept (conftest; the NaNs of the same
    run are test_detection_calibration's)."""
    _, _, figs = shared_det_nothing_scored_run
    diagrams = {p.name: f for f, p in figs if p.name.startswith("reliability")}
    assert set(diagrams) == {"reliability_epoch001.png", "reliability.png"}
    for name, fig in diagrams.items():
        title = fig.axes[0].get_title()
        assert title.endswith(": nothing measured"), (name, title)
        texts = [t.get_text() for t in fig.axes[0].texts] + [t.get_text() for t in fig.texts]
        assert "no prediction with confidence ≥ calib_conf=0.999" in texts
        assert "ece" not in " ".join([title, *texts]).lower()
