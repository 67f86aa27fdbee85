"""Tests for yolo_ls.calibration.plots: valid PNGs, and the diagram draws the given bins without re-binning."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
import torch

from yolo_ls.calibration import ClassificationCalibration, metrics, plots, reliability_bins
from yolo_ls.calibration.plots import plot_calibration_curves, plot_reliability_diagram, plot_reliability_overlay

# Hand-made bins with no raw data behind them (4 bins, one empty, distinctive counts).
HAND_BINS = {
    "edges": np.array([0.0, 0.25, 0.5, 0.75, 1.0]),
    "count": np.array([0, 7, 123, 4567]),
    "confidence": np.array([np.nan, 0.4, 0.6, 0.9]),
    "accuracy": np.array([np.nan, 0.3, 0.65, 0.7]),
    "ece": 0.1234,
}


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


def test_reliability_diagram_png(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    probs = (torch.randn(2000, 10, generator=g) * 3).softmax(1)
    labels = torch.randint(0, 10, (2000,), generator=g)
    cal = ClassificationCalibration(10)
    cal.update(probs, labels)
    out = plot_reliability_diagram(cal.bins(), tmp_path / "sub" / "dir" / "rel.png", metrics=cal.compute())
    assert out == tmp_path / "sub" / "dir" / "rel.png"
    img = assert_png(out)
    assert img.shape[:2] == (1500, 1200)  # figsize (6, 7.5) at dpi 200


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


def test_reliability_diagram_minimal_and_empty_bins(tmp_path: Path, no_binning: None) -> None:
    minimal = {k: HAND_BINS[k] for k in ("edges", "count", "accuracy")}  # no confidence/ece: midpoints, no ECE
    assert_png(plot_reliability_diagram(minimal, tmp_path / "min.png"))
    empty = {"edges": np.linspace(0, 1, 16), "count": np.zeros(15), "accuracy": np.full(15, np.nan)}
    assert_png(plot_reliability_diagram(empty, tmp_path / "empty.png"))


def test_reliability_diagram_rejects_bad_bins(tmp_path: Path) -> None:
    with pytest.raises(KeyError):
        plot_reliability_diagram({"edges": [0, 1], "count": [1]}, tmp_path / "x.png")
    with pytest.raises(ValueError):
        plot_reliability_diagram({"edges": [0, 0.5, 1], "count": [1], "accuracy": [1.0]}, tmp_path / "x.png")


def test_reliability_overlay_png(tmp_path: Path, captured: list) -> None:
    g = torch.Generator().manual_seed(1)
    conf = torch.rand(500, generator=g)
    named = {
        "eps=0": reliability_bins(conf, torch.rand(500, generator=g) < conf**2),
        "eps=0.1": reliability_bins(conf, torch.rand(500, generator=g) < conf),
        "hand": HAND_BINS,
    }
    out = plot_reliability_overlay(named, tmp_path / "overlay.png", title="Compare")
    assert_png(out)
    ax = captured[0].axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels[0] == "Perfect calibration" and labels[-1] == "hand (ECE 0.123)"
    assert ax.get_lines()[-1].get_xdata().tolist() == [0.4, 0.6, 0.9]  # mean confidences of the non-empty bins


def test_calibration_curves_png(tmp_path: Path, captured: list) -> None:
    epochs = np.arange(1, 11)
    df = pd.DataFrame(
        {
            "epoch": epochs,
            "  ece": 0.2 / epochs,  # padded name as in Ultralytics results.csv
            "nll": 1.0 + 1.0 / epochs,
            "brier": 0.5 - 0.01 * epochs,
            "label_smoothing": np.linspace(0.2, 0.0, 10),
        }
    )
    out = plot_calibration_curves(df, tmp_path / "curves" / "calib.png")
    assert_png(out)
    visible = [ax for ax in captured[0].axes if ax.get_visible() and ax.get_title()]
    assert [ax.get_title() for ax in visible] == ["ece", "brier", "nll"]  # mce/ace absent: skipped
    assert len(captured[0].axes) == 6  # 3 panels + 3 secondary ε axes


def test_calibration_curves_without_eps_or_metrics(tmp_path: Path) -> None:
    df = pd.DataFrame({"epoch": [0, 1, 2], "ece": [0.1, 0.08, 0.05]})
    assert_png(plot_calibration_curves(df, tmp_path / "a.png", eps_column="missing"), min_side=100)
    df = pd.DataFrame({"epoch": [0, 1, 2], "label_smoothing": [0.1, 0.05, 0.0]})
    assert_png(plot_calibration_curves(df, tmp_path / "b.png"), min_side=100)
