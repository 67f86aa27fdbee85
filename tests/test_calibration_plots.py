"""Tests for yolo_ls.plots: what each figure shows (bars, boxes, ticks, axis ranges, counts, x positions), not only
that a PNG exists; the empty "nothing measured" diagram; the per-epoch bins file; the background renderer."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
import torch

from yolo_ls.calibration import ClassificationCalibration, metrics, reliability_bins
from yolo_ls.core.epoch_bins import drop_epochs_after, load_epoch_bins, save_epoch_bins
from yolo_ls.plots import (
    BackgroundPlots,
    plot_calibration_curves,
    plot_compare_curves,
    plot_reliability_diagram,
    plot_reliability_overlay,
    plot_smoothing_schedule,
    render_run,
    run_folder,
)
from yolo_ls.plots import figures as plots

# Hand-made bins with no raw data behind them (4 bins, one empty, distinctive counts).
HAND_BINS = {
    "edges": np.array([0.0, 0.25, 0.5, 0.75, 1.0]),
    "count": np.array([0, 7, 123, 4567]),
    "confidence": np.array([np.nan, 0.4, 0.6, 0.9]),
    "accuracy": np.array([np.nan, 0.3, 0.65, 0.7]),
    "ece": 0.1234,
}
# An under-confident model: high accuracy in the low-confidence bins (tall bars on the left, where boxes used to be).
UNDER = {
    "edges": np.linspace(0, 1, 11),
    "count": np.array([50, 80, 120, 90, 60, 40, 30, 20, 10, 5]),
    "confidence": np.linspace(0.05, 0.95, 10),
    "accuracy": np.array([0.95, 0.97, 0.99, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]),
    "ece": 0.5,
}
METRICS = {"ece": 0.5, "mce": 0.9, "ace": 0.48, "brier": 0.3, "nll": 1.2, "ece_ts": float("nan")}


def assert_png(path: Path, min_side: int = 200) -> np.ndarray:
    assert path.is_file() and path.stat().st_size > 0
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[2] in (3, 4)
    assert min(img.shape[:2]) >= min_side
    rgb = (img[..., :3].reshape(-1, 3) * 255).round().astype(np.int64)
    packed = rgb[:, 0] << 16 | rgb[:, 1] << 8 | rgb[:, 2]  # one int per colour: fast unique
    assert np.unique(packed).shape[0] > 10, "image is (nearly) a single flat colour"
    return img


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list:
    """Capture the figures passed to plots._save (and still save them)."""
    figs: list = []
    real_save = plots._save

    def save(fig, path, *args):
        figs.append(fig)
        return real_save(fig, path, *args)

    monkeypatch.setattr(plots, "_save", save)
    return figs


@pytest.fixture
def no_binning(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every binning entry point fail: the plots must only use the bins they are given."""

    def boom(*args, **kwargs):
        raise AssertionError("plots must not re-bin")

    for name in ("_bin_index", "_bin_sums", "_scatter_sums", "reliability_bins"):
        monkeypatch.setattr(metrics, name, boom)
    monkeypatch.setattr(np, "histogram", boom)


def _texts(fig) -> list[str]:
    out = [t.get_text() for t in fig.texts]
    for ax in fig.axes:
        out += [ax.get_title()] + [t.get_text() for t in ax.texts]
        leg = ax.get_legend()
        if leg:
            out += [t.get_text() for t in leg.get_texts()]
    for leg in fig.legends:
        out += [t.get_text() for t in leg.get_texts()]
    return out


def _draw(fig):
    """Draw a figure on an Agg canvas (positions and tick labels are final then) and return its renderer."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def _int_ticks(ax) -> list[float]:
    """The x tick positions inside the view, after checking each is an integer with an integer label."""
    _draw(ax.figure)
    lo, hi = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks
    labels = [lab.get_text().replace("\u2212", "-") for lab in ax.get_xticklabels() if lab.get_text()]
    assert labels and all(lab.lstrip("-").isdigit() for lab in labels), labels
    return ticks


# ---------------------------------------------------------------------------------------------- reliability
def test_reliability_diagram_png(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    probs = (torch.randn(2000, 10, generator=g) * 3).softmax(1)
    labels = torch.randint(0, 10, (2000,), generator=g)
    cal = ClassificationCalibration(10)
    cal.update(probs, labels)
    out = plot_reliability_diagram(cal.bins(), tmp_path / "sub" / "dir" / "rel.png", metrics=cal.compute())
    assert out == tmp_path / "sub" / "dir" / "rel.png"
    img = assert_png(out)
    assert img.shape[:2] == (round(6.6 * plots.DPI), round(8.4 * plots.DPI))


def test_reliability_diagram_draws_given_bins(tmp_path: Path, captured: list, no_binning: None) -> None:
    out = plot_reliability_diagram(HAND_BINS, str(tmp_path / "hand.png"), title="Hand")
    assert isinstance(out, Path)
    assert_png(out)
    (fig,) = captured
    ax, axh = fig.axes[:2]
    assert ax.get_title() == "Hand  ECE=0.1234"
    acc_bars, gap_bars = ax.containers[:2]
    assert [p.get_height() for p in acc_bars] == pytest.approx([0.0, 0.3, 0.65, 0.7])
    # gap bars only for non-empty bins: |conf - acc| from min(conf, acc)
    assert [p.get_height() for p in gap_bars] == pytest.approx([0.1, 0.05, 0.2])
    assert [p.get_y() for p in gap_bars] == pytest.approx([0.3, 0.6, 0.7])
    assert [p.get_x() for p in acc_bars] == pytest.approx([0.0, 0.25, 0.5, 0.75])
    (count_bars,) = axh.containers
    assert [p.get_height() for p in count_bars] == [0, 7, 123, 4567]
    # the gap is red hatching with no fill: the same over a bar, over the background and in its legend entry
    assert all(p.get_hatch() == "///" and p.get_facecolor()[3] == 0 for p in gap_bars)
    legend = {t.get_text(): h for t, h in zip(fig.legends[0].get_texts(), fig.legends[0].legend_handles)}
    assert legend["Gap to confidence"].get_hatch() == "///" and legend["Gap to confidence"].get_facecolor()[3] == 0
    # the one bin under FEW_SAMPLES (7 samples) carries its count; the full bins do not
    assert [t.get_text() for t in ax.texts if t.get_text().startswith("n=")] == ["n=7"]


def test_metrics_box_and_legend_never_cover_a_bar(tmp_path: Path, captured: list) -> None:
    """The under-confident case: tall bars at low confidence, where the old box sat. Nothing may overlap a bar."""
    plot_reliability_diagram(UNDER, tmp_path / "under.png", metrics=METRICS)
    (fig,) = captured
    renderer = _draw(fig)
    bars = [p.get_window_extent(renderer) for ax in fig.axes[:2] for c in ax.containers for p in c]
    assert len(bars) == 10 + 10 + 10  # accuracy, gap and count bars
    (box,) = [t for t in fig.texts if "ece" in t.get_text()]
    boxes = [box.get_bbox_patch().get_window_extent(renderer), *(g.get_window_extent(renderer) for g in fig.legends)]
    assert len(boxes) == 2
    for b in boxes:
        assert not any(b.overlaps(bar) for bar in bars)
        for ax in fig.axes[:2]:  # and not inside either panel at all
            assert not b.overlaps(ax.get_window_extent(renderer))
    assert box.get_text().splitlines()[-1] == "ece_ts n/a"  # a NaN metric reads n/a, not nan


@pytest.mark.parametrize(
    "bins, metrics_in, reason",
    [
        (plots.empty_bins(15), {"d_ece": math.nan, "d_mce": math.nan}, run_folder.empty_reason("detect", 0.25)),
        (plots.empty_bins(15), {"d_ece": 0.0, "d_mce": 0.0}, run_folder.empty_reason("detect", 0.25)),  # a faked 0
        (HAND_BINS, {"ece": math.nan, "mce": math.nan}, "no validation sample"),  # counts but NaN metrics
        (None, {"ece": math.nan}, "no validation sample"),
    ],
)
def test_nothing_measured_says_so_and_shows_no_ece(tmp_path, captured, bins, metrics_in, reason) -> None:
    assert reason in ("no prediction with confidence ≥ calib_conf=0.25", "no validation sample")
    out = plot_reliability_diagram(bins, tmp_path / "empty.png", title="Epoch 1, ε=0.1", metrics=metrics_in,
                                   reason=reason)
    assert out.stat().st_size > 0
    (fig,) = captured
    texts = _texts(fig)
    assert fig.axes[0].get_title() == "Epoch 1, ε=0.1: nothing measured"
    assert reason in texts
    joined = "\n".join(texts).lower()
    assert "ece" not in joined and "0.0000" not in joined
    assert not fig.axes[0].containers  # no accuracy bars drawn


def test_reliability_diagram_minimal_bins_and_json_nones(tmp_path: Path, no_binning: None) -> None:
    minimal = {k: HAND_BINS[k] for k in ("edges", "count", "accuracy")}  # no confidence/ece: midpoints, no ECE
    assert_png(plot_reliability_diagram(minimal, tmp_path / "min.png"))
    as_json = json.loads(json.dumps({k: [None if isinstance(x, float) and math.isnan(x) else x for x in np.asarray(v)
                                         .tolist()] if k != "ece" else v for k, v in HAND_BINS.items()}))
    assert plots.nothing_measured(as_json) is False
    assert_png(plot_reliability_diagram(as_json, tmp_path / "json.png"))


def test_reliability_diagram_rejects_bad_bins(tmp_path: Path) -> None:
    with pytest.raises(KeyError):
        plot_reliability_diagram({"edges": [0, 1], "count": [1]}, tmp_path / "x.png")
    with pytest.raises(ValueError):
        plot_reliability_diagram({"edges": [0, 0.5, 1], "count": [1], "accuracy": [1.0]}, tmp_path / "x.png")


# ------------------------------------------------------------------------------------------------- overlay
def test_reliability_overlay_annotates_counts_and_hollows_near_empty_bins(tmp_path: Path, captured: list) -> None:
    g = torch.Generator().manual_seed(1)
    conf = torch.rand(500, generator=g)
    named = {
        "eps=0": reliability_bins(conf, torch.rand(500, generator=g) < conf**2),
        "hand": HAND_BINS,
        "empty": plots.empty_bins(15),
    }
    assert_png(plot_reliability_overlay(named, tmp_path / "overlay.png", title="Compare"))
    (fig,) = captured
    ax = fig.axes[0]
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels[0] == "Perfect calibration" and "hand (ECE 0.123)" in labels and "empty: nothing measured" in labels
    # every plotted point carries its bin's count, at the point
    hand_notes = [t for t in ax.texts if tuple(t.xy) in {(0.4, 0.3), (0.6, 0.65), (0.9, 0.7)}]
    assert sorted(t.get_text() for t in hand_notes) == ["123", "4567", "7"]
    eps0 = named["eps=0"]
    n_nonempty = int((np.asarray(eps0["count"]) > 0).sum())
    assert len(ax.texts) == n_nonempty + 3
    assert sorted(int(t.get_text()) for t in ax.texts) == sorted([*np.asarray(eps0["count"])[np.asarray(eps0["count"])
                                                                  > 0].astype(int).tolist(), 7, 123, 4567])
    # the 7-sample bin (< 1% of 4697 and < 10) is hollow: white face; the others are filled
    hand_scatters = [c for c in ax.collections if len(c.get_offsets()) and
                     {tuple(o) for o in c.get_offsets()} <= {(0.4, 0.3), (0.6, 0.65), (0.9, 0.7)}]
    hollow = [c for c in hand_scatters if np.allclose(c.get_facecolors()[:, :3], 1.0)]
    assert [tuple(o) for c in hollow for o in c.get_offsets()] == [(0.4, 0.3)]


# ------------------------------------------------------------------------------------------ per-epoch curves
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7, 8])
def test_grid_has_no_empty_cell(n: int) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 8))
    axes = plots._grid(fig, n, left=0.05, right=0.95, bottom=0.05, top=0.95, wspace=0.1, hspace=0.1)
    assert len(axes) == len(fig.axes) == n
    boxes = [ax.get_position() for ax in axes]
    rows: dict[float, list] = {}
    for b in boxes:
        rows.setdefault(round(b.y0, 6), []).append(b)
    for row in rows.values():  # every row spans the full width: a short row has wider panels, not a gap
        assert min(b.x0 for b in row) == pytest.approx(0.05) and max(b.x1 for b in row) == pytest.approx(0.95)
        assert max(len(r) for r in rows.values()) <= 3


def test_calibration_curves_panels_ticks_and_eps_axis(tmp_path: Path, captured: list) -> None:
    epochs = np.arange(1, 11)
    df = pd.DataFrame(
        {
            "epoch": epochs,
            "  ece": 0.2 / epochs,  # padded name as in Ultralytics results.csv
            "mce": 0.4 / epochs,
            "nll": 1.0 + 1.0 / epochs,
            "brier": 0.5 - 0.01 * epochs,
            "label_smoothing": 0.1,  # constant: the ε axis must not zoom in on it
        }
    )
    out = plot_calibration_curves(df, tmp_path / "curves" / "calib.png", metrics=run_folder.curve_metrics(df.rename(
        columns=str.strip)), best_epoch=7)
    assert_png(out)
    (fig,) = captured
    # MCE (one bin's gap, 0.4 here) on its own scale: it does not flatten the ECE curve
    assert [ax.get_title() for ax in fig.axes] == ["ece", "mce", "brier", "nll", "label smoothing ε (label_smoothing)"]
    for ax in fig.axes:  # best.pt's epoch is marked in every panel
        assert [t.get_text() for t in ax.texts if "best.pt" in t.get_text()] == [" best.pt"]
        assert any(line.get_xdata()[0] == 7 and line.get_linestyle() == ":" for line in ax.get_lines())
    assert all(ax.get_visible() and (ax.get_lines() or ax.texts) for ax in fig.axes)  # no empty cell
    for ax in fig.axes:
        assert _int_ticks(ax)[0] >= 1  # epochs count from 1, as in the csv
        assert ax.get_xlim() == pytest.approx((0.5, 10.5))
    eps_ax = fig.axes[-1]
    lo, hi = eps_ax.get_ylim()
    assert lo == 0 and hi == pytest.approx(0.125) and hi - lo > 0.1  # not 0.1 ± 0.004
    assert fig.axes[0].get_lines()[0].get_ydata().tolist() == pytest.approx((0.2 / epochs).tolist())
    assert fig.axes[0].get_ylim()[1] < 0.25  # scaled to ECE's 0.2, not to MCE's 0.4


def test_calibration_curves_detection_and_missing(tmp_path: Path, captured: list) -> None:
    df = pd.DataFrame({"epoch": [1, 2], "d_ece": [np.nan, np.nan], "d_mce": [np.nan, np.nan],
                       "d_accuracy": [0.5, 0.6], "d_confidence": [0.4, 0.5]})
    plot_calibration_curves(df, tmp_path / "d.png", metrics=run_folder.curve_metrics(df))
    fig = captured[-1]
    assert [ax.get_title() for ax in fig.axes] == ["d_ece", "d_mce", "d_accuracy / d_confidence"]
    assert [t.get_text() for t in fig.axes[0].texts] == ["not measured"]
    plot_calibration_curves(pd.DataFrame({"epoch": [1, 2, 3], "label_smoothing": [0.1, 0.05, 0.0]}), tmp_path / "e.png")
    assert [ax.get_title() for ax in captured[-1].axes] == ["label smoothing ε (label_smoothing)"]


def test_compare_curves_integer_epochs(tmp_path: Path, captured: list) -> None:
    cal = pd.DataFrame({"epoch": [1, 2, 3], "ece": [0.1, 0.08, 0.05]})
    res = pd.DataFrame({"epoch": [1, 2, 3], "metrics/accuracy_top1": [0.5, 0.7, 0.8]})
    plot_compare_curves({"ε=0": [(cal, res)], "ε=0.1": [(cal, res)]}, tmp_path / "c.png", "ece",
                        "metrics/accuracy_top1")
    (fig,) = captured
    for ax in fig.axes:
        assert _int_ticks(ax) == [1, 2, 3]
        assert [line.get_color() for line in ax.get_lines()] == list(plots.PALETTE[:2])
    assert fig.axes[1].get_title() == "accuracy_top1 per epoch"


# ----------------------------------------------------------------------------------------------------- ε plot
def test_smoothing_schedule_per_iteration_positions_and_epoch_means(tmp_path: Path, captured: list) -> None:
    nb = 4
    iters = [(k + j / nb, 0.2 * (1 - (k + j / nb) / 3)) for k in range(3) for j in range(nb)]
    means = [float(np.mean([e for f, e in iters if int(f) == k])) for k in range(3)]
    pd.DataFrame({"epoch": [1, 2, 3], "label_smoothing": means}).to_csv(tmp_path / "results.csv", index=False)
    plot_smoothing_schedule(iters, tmp_path / "results.csv", tmp_path / "ls.png", iterations=iters)
    (fig,) = captured
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    it_x = lines["applied (per iteration)"].get_xdata()
    assert it_x.tolist() == pytest.approx([f + 0.5 for f, _ in iters])  # epoch e spans [e - 0.5, e + 0.5]
    ep = lines["applied (epoch)"]
    expected_x = [float(np.mean([f + 0.5 for f, _ in iters if int(f) == k])) for k in range(3)]
    assert ep.get_xdata().tolist() == pytest.approx(expected_x)  # at its iterations' mean position, not the start
    for x, y in zip(ep.get_xdata(), ep.get_ydata()):  # a linear schedule: the epoch mean lies on the plan
        assert y == pytest.approx(0.2 * (1 - (x - 0.5) / 3))
    assert _int_ticks(ax) == [1, 2, 3]
    assert ax.get_ylim()[0] == 0


def test_smoothing_schedule_constant_eps_per_epoch(tmp_path: Path, captured: list) -> None:
    pd.DataFrame({"epoch": [1, 2, 3], "label_smoothing": [0.1] * 3}).to_csv(tmp_path / "results.csv", index=False)
    plot_smoothing_schedule([(0.0, 0.1), (1.0, 0.1), (2.0, 0.1)], tmp_path / "results.csv", tmp_path / "ls.png")
    ax = captured[0].axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert lines["applied (epoch)"].get_xdata().tolist() == [1, 2, 3]  # 1-based, like results.csv
    planned = lines["planned"]
    assert planned.get_drawstyle() == "steps-post"
    assert planned.get_xdata().tolist() == [0.5, 1.5, 2.5, 3.5]  # epoch e holds its ε over [e - 0.5, e + 0.5]
    assert ax.get_ylim() == pytest.approx((0.0, 0.125))
    assert _int_ticks(ax) == [1, 2, 3]
    assert "0-based" not in ax.get_xlabel()


# ------------------------------------------------------------------------------------- per-epoch bins, run folder
def test_epoch_bins_file_replaces_sorts_drops_and_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "calibration" / "epochs.json"
    for e in (2, 1, 3):
        save_epoch_bins(path, {"epoch": e, "label_smoothing": 0.1, "metrics": {"ece": e / 10, "ece_ts": math.nan},
                               "bins": {**HAND_BINS, "count": torch.tensor([0, e, 2, 3])}}, task="detect",
                        calib_conf=0.25)
    save_epoch_bins(path, {"epoch": 2, "metrics": {"ece": 0.99}, "bins": None})  # a repeated epoch replaces its entry
    data = load_epoch_bins(path)
    assert [e["epoch"] for e in data["epochs"]] == [1, 2, 3]
    assert data["epochs"][1]["metrics"] == {"ece": 0.99}
    assert data["epochs"][0]["metrics"]["ece_ts"] is None and data["epochs"][2]["bins"]["count"] == [0, 3, 2, 3]
    assert (data["task"], data["calib_conf"]) == ("detect", 0.25)
    assert sorted(p.name for p in path.parent.iterdir()) == ["epochs.json"]  # no temporary file left
    assert drop_epochs_after(path, 1) is True
    assert [e["epoch"] for e in load_epoch_bins(path)["epochs"]] == [1]
    assert drop_epochs_after(path, 1) is False
    assert load_epoch_bins(tmp_path / "missing.json")["epochs"] == []


def test_resume_drops_epoch_bins_after_the_resume_epoch(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from yolo_ls.engine.callbacks.calibration import CalibrationCallbacks

    for e in (1, 2, 3):
        save_epoch_bins(tmp_path / "calibration" / "epochs.json", {"epoch": e, "bins": HAND_BINS})
    pd.DataFrame({"epoch": [1, 2, 3], "ece": [0.1, 0.2, 0.3]}).to_csv(tmp_path / "calibration.csv", index=False)
    trainer = SimpleNamespace(resume=True, start_epoch=2, save_dir=tmp_path, metrics={},
                              args=SimpleNamespace(task="classify"))
    CalibrationCallbacks().on_pretrain_routine_end(trainer)
    assert [e["epoch"] for e in load_epoch_bins(tmp_path / "calibration" / "epochs.json")["epochs"]] == [1, 2]
    assert pd.read_csv(tmp_path / "calibration.csv")["epoch"].tolist() == [1, 2]


def _fake_run(run: Path, task: str = "detect") -> None:
    empty = plots.empty_bins(15)
    save_epoch_bins(run / "calibration" / "epochs.json", {"epoch": 1, "label_smoothing": 0.1, "bins": empty,
                                                          "metrics": {"d_ece": math.nan}}, task=task, calib_conf=0.25)
    save_epoch_bins(run / "calibration" / "epochs.json", {"epoch": 2, "label_smoothing": 0.1, "bins": HAND_BINS,
                                                          "metrics": {"d_ece": 0.12}})
    (run / "calibration" / "final.json").write_text(json.dumps({"metrics": {"d_ece": 0.12}, "bins": {
        k: [None if isinstance(x, float) and math.isnan(x) else x for x in np.asarray(v).tolist()]
        for k, v in HAND_BINS.items() if k != "ece"}}))
    pd.DataFrame({"epoch": [1, 2], "label_smoothing": [0.1, 0.1], "d_ece": [np.nan, 0.12], "d_mce": [np.nan, 0.3],
                  "d_accuracy": [np.nan, 0.6], "d_confidence": [np.nan, 0.5]}).to_csv(run / "calibration.csv",
                                                                                     index=False)
    pd.DataFrame({"epoch": [1, 2], "label_smoothing": [0.1, 0.1]}).to_csv(run / "results.csv", index=False)
    (run / "args.yaml").write_text(f"task: {task}\nlabel_smoothing: 0.1\nls_schedule: constant\nepochs: 2\n")


def test_render_run_draws_every_epoch_from_the_files(tmp_path: Path, captured: list) -> None:
    _fake_run(tmp_path)
    written = render_run(tmp_path)
    names = [p.relative_to(tmp_path).as_posix() for p in written]
    assert names == ["calibration/reliability_epoch001.png", "calibration/reliability_epoch002.png",
                     "calibration/reliability.png", "calibration/calibration_curves.png", "label_smoothing.png"]
    for p in written:
        assert_png(p, min_side=100)
    epoch1, epoch2 = captured[:2]
    assert epoch1.axes[0].get_title() == "Epoch 1, ε=0.1: nothing measured"
    assert "no prediction with confidence ≥ calib_conf=0.25" in _texts(epoch1)
    assert epoch2.axes[0].get_title() == "Epoch 2, ε=0.1  D_ECE=0.1200"
    planned = {line.get_label(): line for line in captured[-1].axes[0].get_lines()}["planned"]
    assert planned.get_ydata().tolist() == pytest.approx([0.1, 0.1, 0.1])  # plan rebuilt from args.yaml


def test_render_run_rejects_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a yolo-ls run folder"):
        render_run(tmp_path)


def test_cli_plot(tmp_path: Path) -> None:
    from yolo_ls.cli.main import entrypoint

    _fake_run(tmp_path / "run")
    assert entrypoint(["plot", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "calibration" / "reliability_epoch002.png").is_file()


@pytest.mark.parametrize("args, message", [
    ([], "usage: yolo-ls plot RUN"),
    (["a", "b"], "usage: yolo-ls plot RUN"),
    (["{tmp}/missing"], "is not a yolo-ls run folder: it does not exist"),
    (["{tmp}"], "is not a yolo-ls run folder: it holds none of calibration.csv"),
])
@pytest.mark.slow
def test_cli_plot_bad_run_exits_2_without_traceback(tmp_path: Path, args, message) -> None:
    from tests.helpers import run_python

    (tmp_path / "runs" / "train").mkdir(parents=True)
    args = [a.format(tmp=tmp_path) for a in args]
    proc = run_python(f"import sys; from yolo_ls.cli.main import entrypoint; sys.exit(entrypoint(['plot', *{args!r}]))",
                      timeout=300, MPLBACKEND="Agg", YOLO_OFFLINE="1")
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_cli_plot_did_you_mean_a_run_inside(tmp_path: Path, capsys) -> None:
    from yolo_ls.cli.main import entrypoint

    _fake_run(tmp_path / "classify" / "train")
    assert entrypoint(["plot", str(tmp_path)]) == 2
    assert f"Did you mean '{tmp_path / 'classify' / 'train'}'?" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------- background
def _child_only_failure(path: Path, parent: int) -> None:
    if os.getpid() != parent:
        raise RuntimeError("fails in the child only")
    path.write_text("drawn by the parent")


def _child_only_hang(path: Path, parent: int) -> None:
    if os.getpid() != parent:
        import time

        time.sleep(60)
    path.write_text("drawn by the parent")


def test_background_plots_draw_in_a_child_and_redraw_what_fails(tmp_path: Path) -> None:
    if not BackgroundPlots.can_fork():
        pytest.skip("no fork here: figures are drawn in the process (covered by the other tests)")
    bg = BackgroundPlots(timeout=3)
    bg.submit(plot_reliability_diagram, HAND_BINS, tmp_path / "child.png")
    bg.submit(_child_only_failure, tmp_path / "failed.txt", os.getpid())
    bg.submit(_child_only_hang, tmp_path / "hung.txt", os.getpid())
    assert len(bg.jobs) == 3 and not (tmp_path / "failed.txt").exists()  # nothing drawn in this process yet
    redrawn = bg.join()
    assert_png(tmp_path / "child.png")
    assert [line.split()[0] for line in redrawn] == ["_child_only_failure", "_child_only_hang"]
    assert "timeout" in redrawn[1]
    assert (tmp_path / "failed.txt").read_text() == (tmp_path / "hung.txt").read_text() == "drawn by the parent"
    assert bg.jobs == []


def test_background_plots_off_draws_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YOLO_LS_PLOT_FORK", "0")
    bg = BackgroundPlots()
    bg.submit(_child_only_failure, tmp_path / "now.txt", os.getpid())
    assert (tmp_path / "now.txt").read_text() == "drawn by the parent" and bg.jobs == []


def test_csv_rows_write_nan_as_nan_not_blank(tmp_path) -> None:
    """A metric that was not measured (ece_ts before the final epoch) reads 'nan' in calibration.csv, not an empty
    cell, and reads back as NaN."""
    from yolo_ls.core.files import append_csv_row, read_csv

    csv = tmp_path / "calibration.csv"
    append_csv_row(csv, {"epoch": 1, "ece": 0.1, "ece_ts": math.nan})
    append_csv_row(csv, {"epoch": 2, "ece": 0.2, "ece_ts": 0.05})
    assert csv.read_text().splitlines()[1] == "1,0.1,nan"
    assert math.isnan(read_csv(csv)["ece_ts"][0])


def test_a_damaged_json_file_is_named(tmp_path) -> None:
    from yolo_ls.core.epoch_bins import load_epoch_bins

    bad = tmp_path / "calibration" / "epochs.json"
    bad.parent.mkdir()
    bad.write_text('{"epochs": [')
    with pytest.raises(ValueError, match=f"{bad} is not valid JSON"):
        load_epoch_bins(bad)
