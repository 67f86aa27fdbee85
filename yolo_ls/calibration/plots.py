"""Calibration plots (matplotlib only, backend-independent).

Presentation is kept apart from the metrics (netcal style): the reliability diagram draws the per-bin data returned by
:func:`yolo_ls.calibration.metrics.reliability_bins` / ``ClassificationCalibration.bins()`` and never re-bins raw
predictions. Figures are built with :class:`matplotlib.figure.Figure` (no pyplot state, no GUI backend, safe in
training threads and with any ``matplotlib.use``), in the Ultralytics plot style (palette, font size 11), and saved at
dpi 200.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure

__all__ = ("plot_calibration_curves", "plot_reliability_diagram", "plot_reliability_overlay")

# Ultralytics palette (ultralytics.utils.plotting.Colors), hard-coded so this module never imports ultralytics.
PALETTE = (
    "#042aff",
    "#ff444f",
    "#00dfb7",
    "#bd00ff",
    "#fc6d2f",
    "#0bdbeb",
    "#111f68",
    "#ff6fdd",
    "#26c000",
    "#7d24ff",
)
BLUE, RED, TEAL = PALETTE[0], PALETTE[1], PALETTE[2]
DPI = 200
_RC = {"font.size": 11}


def _save(fig: Figure, path: str | Path, dpi: int = DPI) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


def _unpack_bins(bins: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validate a bins dict and return ``(left, width, count, mean_conf, acc)``; empty bins get NaN conf/acc.

    ``confidence`` is optional: the bin midpoint is used where it is missing or NaN.
    """
    for key in ("edges", "count", "accuracy"):
        if key not in bins:
            raise KeyError(f"bins dict lacks {key!r} (expected the output of reliability_bins)")
    edges = np.asarray(bins["edges"], dtype=float)
    count = np.asarray(bins["count"], dtype=float)
    acc = np.asarray(bins["accuracy"], dtype=float)
    n = count.shape[0]
    if edges.shape != (n + 1,) or acc.shape != (n,):
        raise ValueError(f"inconsistent bins: {edges.shape[0]} edges, {n} counts, {acc.shape[0]} accuracies")
    mid = (edges[:-1] + edges[1:]) / 2
    conf = np.asarray(bins.get("confidence", mid), dtype=float)
    conf = np.where(np.isnan(conf), mid, conf)
    empty = count <= 0
    return edges[:-1], np.diff(edges), count, np.where(empty, np.nan, conf), np.where(empty, np.nan, acc)


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, (float, np.floating)) else str(v)


def plot_reliability_diagram(
    bins: Mapping[str, Any],
    path: str | Path,
    title: str | None = None,
    metrics: Mapping[str, Any] | None = None,
    dpi: int = DPI,
) -> Path:
    """Plot a reliability diagram with a confidence histogram below it.

    Top panel: per-bin accuracy bars, hatched red gap bars between each bin's accuracy and its mean confidence (the
    diagonal evaluated at the bin's mean confidence, or at its midpoint if no mean is given), and the diagonal.
    Bottom panel (shared x axis): number of samples per bin with the average accuracy and confidence.

    Args:
        bins: Output of ``reliability_bins`` / ``ClassificationCalibration.bins()``: ``edges``, ``count``,
            ``accuracy`` and optionally ``confidence``, ``ece``. Used as is, never re-binned.
        path: Output PNG path (parent directories are created).
        title: Title prefix; ``"Reliability diagram"`` by default. ECE (from ``metrics`` or ``bins``) is appended.
        metrics: Optional metrics to list in a text box (e.g. ``ClassificationCalibration.compute()``).
        dpi: Resolution; per-epoch diagrams use a lower one to keep training fast.

    Returns:
        The saved path.
    """
    left, width, count, conf, acc = _unpack_bins(bins)
    nonempty = ~np.isnan(acc)
    ece_v = (metrics or {}).get("ece", bins.get("ece"))

    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(6, 7.5), layout="tight")
        ax, axh = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
        ax.bar(
            left,
            np.where(nonempty, acc, 0),
            width,
            align="edge",
            color=BLUE,
            alpha=0.85,
            edgecolor="white",
            linewidth=0.5,
            label="Accuracy",
        )
        ax.bar(
            left[nonempty],
            np.abs(conf - acc)[nonempty],
            width[nonempty],
            bottom=np.fmin(conf, acc)[nonempty],
            align="edge",
            color=RED,
            alpha=0.3,
            edgecolor=RED,
            hatch="//",
            linewidth=0.5,
            label="Gap",
        )
        ax.plot([0, 1], [0, 1], "--", color="gray", linewidth=1.5, label="Perfect calibration")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_ylabel("Accuracy")
        ax.legend(loc="upper left")
        head = title or "Reliability diagram"
        ax.set_title(f"{head}  ECE={ece_v:.4f}" if isinstance(ece_v, (int, float)) else head)
        if metrics:
            text = "\n".join(f"{k}: {_fmt(v)}" for k, v in metrics.items())
            ax.text(
                0.03,
                0.8,
                text,
                transform=ax.transAxes,
                ha="left",
                va="top",
                fontsize=8,
                family="monospace",
                bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.8, "edgecolor": "lightgray"},
            )

        axh.bar(left, count, width, align="edge", color=TEAL, edgecolor="white", linewidth=0.5)
        total = count.sum()
        if total > 0:
            mean_acc = np.nansum(acc * count) / total
            mean_conf = np.nansum(conf * count) / total
            axh.axvline(mean_acc, color=BLUE, linestyle="-", linewidth=1.5, label=f"Avg. accuracy {mean_acc:.3f}")
            axh.axvline(mean_conf, color=RED, linestyle="--", linewidth=1.5, label=f"Avg. confidence {mean_conf:.3f}")
            axh.legend(loc="upper left", fontsize=8)
        axh.set_xlabel("Confidence")
        axh.set_ylabel("Count")
        return _save(fig, path, dpi)


def plot_reliability_overlay(
    named_bins: Mapping[str, Mapping[str, Any]], path: str | Path, title: str | None = None
) -> Path:
    """Overlay the reliability curves (mean confidence vs. accuracy of non-empty bins) of several variants.

    Args:
        named_bins: ``{name: bins}`` with each ``bins`` as in :func:`plot_reliability_diagram`.
        path: Output PNG path (parent directories are created).
        title: Plot title; ``"Reliability comparison"`` by default.

    Returns:
        The saved path.
    """
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(6, 6), layout="tight")
        ax = fig.subplots()
        ax.plot([0, 1], [0, 1], "--", color="gray", linewidth=1.5, label="Perfect calibration")
        for i, (name, bins) in enumerate(named_bins.items()):
            _, _, _, conf, acc = _unpack_bins(bins)
            keep = ~np.isnan(acc)
            label = f"{name} (ECE {bins['ece']:.3f})" if isinstance(bins.get("ece"), (int, float)) else str(name)
            ax.plot(
                conf[keep],
                acc[keep],
                marker="o",
                markersize=4,
                linewidth=2,
                color=PALETTE[i % len(PALETTE)],
                label=label,
            )
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("Confidence")
        ax.set_ylabel("Accuracy")
        ax.set_title(title or "Reliability comparison")
        ax.legend(loc="upper left", fontsize=9)
        return _save(fig, path)


def plot_calibration_curves(
    df: Any,
    path: str | Path,
    metrics: Sequence[str] = ("ece", "mce", "ace", "brier", "nll"),
    eps_column: str = "label_smoothing",
) -> Path:
    """Plot calibration metrics against ``epoch``, one panel per metric, with ε on a secondary y axis.

    Args:
        df: ``pandas.DataFrame`` with an ``epoch`` column (the row index is used otherwise) and metric columns;
            column names are stripped of surrounding whitespace (as in Ultralytics ``results.csv``).
        path: Output PNG path (parent directories are created).
        metrics: Metric columns to plot; those absent from ``df`` are skipped.
        eps_column: Column with the label-smoothing ε per epoch; drawn on a secondary axis when present.

    Returns:
        The saved path.
    """
    import pandas as pd

    df = df.rename(columns=lambda c: str(c).strip())
    x = pd.to_numeric(df["epoch"], errors="coerce").to_numpy() if "epoch" in df else np.arange(len(df))
    present = [m for m in metrics if m in df.columns]
    eps = pd.to_numeric(df[eps_column], errors="coerce").to_numpy() if eps_column in df.columns else None
    n = max(len(present), 1)
    ncols = min(n, 5)
    nrows = math.ceil(n / ncols)

    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(3.2 * ncols + 0.6, 3.2 * nrows), layout="tight")
        axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
        for i, ax in enumerate(axes):
            if i >= n:
                ax.set_visible(False)
                continue
            if present:
                m = present[i]
                y = pd.to_numeric(df[m], errors="coerce").to_numpy()
                ax.plot(x, y, marker=".", markersize=8, linewidth=2, color=PALETTE[i % len(PALETTE)], label=m)
                ax.set_title(m)
            else:
                ax.set_title("no calibration metrics")
            ax.set_xlabel("epoch")
            if eps is not None:
                ax2 = ax.twinx()
                ax2.plot(x, eps, linestyle="--", linewidth=1.5, color="gray", label=f"ε ({eps_column})")
                ax2.set_ylabel("ε", color="gray")
                ax2.tick_params(axis="y", colors="gray")
                if i == 0:
                    h1, l1 = ax.get_legend_handles_labels()
                    h2, l2 = ax2.get_legend_handles_labels()
                    ax2.legend(h1 + h2, l1 + l2, loc="best", fontsize=8)
        return _save(fig, path)
