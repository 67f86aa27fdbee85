"""Every yolo-ls figure, in one style: reliability diagrams, the compare overlay and curves, calibration curves, ε.

One palette (Ultralytics' own), one font size, one dpi (:data:`DPI`), and one epoch convention: epochs are numbered
from 1, as in results.csv, and epoch ``e`` occupies the x interval ``[e - 0.5, e + 0.5]``. Figures are
:class:`matplotlib.figure.Figure` objects with fixed axes positions (no pyplot state, no GUI backend). Diagrams draw
the per-bin data they are given and never re-bin raw predictions. A diagram with no sample in its bins, or NaN
metrics, says "nothing measured" (and why) instead of showing an ECE: an empty diagram must not read as perfect
calibration.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from yolo_ls.calibration import registry
from yolo_ls.core.args import PLOT_CHOICES  # calib_plots' choices, defined once in the argument table

__all__ = (
    "DPI",
    "PLOT_CHOICES",
    "plot_calibration_curves",
    "plot_compare_curves",
    "plot_reliability_diagram",
    "plot_reliability_overlay",
    "plot_smoothing_schedule",
    "plot_soft_labels",
)


# Ultralytics palette (ultralytics.utils.plotting.Colors), hard-coded so this module never imports ultralytics.
PALETTE = ("#042aff", "#ff444f", "#00dfb7", "#bd00ff", "#fc6d2f", "#0bdbeb", "#111f68", "#ff6fdd", "#26c000", "#7d24ff")
BLUE, RED, TEAL = PALETTE[0], PALETTE[1], PALETTE[2]
GRAY = "#7f7f7f"
DPI = 150
FONT_SIZE = 10
# A fixed title height (else matplotlib measures every axis' tick labels to place each title).
_RC = {"font.size": FONT_SIZE, "axes.titlesize": FONT_SIZE + 1, "legend.fontsize": FONT_SIZE - 1, "axes.titley": 1.0}
NOTHING = "nothing measured"
# The panels of a classification run's calibration curves: a tuple shares one panel, a string has its own.
CLASSIFY_PANELS = tuple(g[0] if len(g) == 1 else g for g in registry.panels() if g[0] in registry.names("classify"))
# A bin with fewer samples than this (or than 1% of its variant's samples) is drawn hollow on the overlay.
FEW_SAMPLES = 10


# ------------------------------------------------------------------------------------------------------ helpers
def _rc():
    import matplotlib

    return matplotlib.rc_context(_RC)


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def _save(fig: Any, path: str | Path, dpi: int = DPI) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v)


def _fmt(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{v:.4f}" if math.isfinite(v) else "n/a"
    return str(v)


def _epoch_ticks(ax: Any, epochs: Sequence[float]) -> None:
    """Integer epoch ticks (1-based) and the x range ``[first - 0.5, last + 0.5]``."""
    from matplotlib.ticker import MaxNLocator

    finite = [float(e) for e in epochs if _finite(e)]
    lo, hi = (min(finite), max(finite)) if finite else (1.0, 1.0)
    ax.set_xlim(lo - 0.5, hi + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.set_xlabel("epoch")


def eps_limits(values: Sequence[float]) -> tuple[float, float]:
    """The ε axis range: from 0 (or a quarter below a negative ε) to a quarter above the largest ε (0.05 when all are
    0), so a constant ε is a flat line at its height."""
    finite = [float(v) for v in values if _finite(v)]
    top = max(finite, default=0.0)
    low = min(finite, default=0.0)
    return (low * 1.25 if low < 0 else 0.0), (top * 1.25 if top > 0 else (0.0 if low < 0 else 0.05))


def _unpack_bins(bins: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validate a bins dict and return ``(left, width, count, mean_conf, acc)``; empty bins get NaN conf/acc.

    A missing or NaN ``confidence`` is the bin midpoint; None values (a JSON round trip of NaN) read as NaN.
    """
    for key in ("edges", "count", "accuracy"):
        if key not in bins:
            raise KeyError(f"bins dict lacks {key!r} (expected the output of reliability_bins)")

    def arr(v: Any) -> np.ndarray:
        return np.array([np.nan if x is None else x for x in np.asarray(v, dtype=object).ravel()], dtype=float)

    edges, count, acc = arr(bins["edges"]), arr(bins["count"]), arr(bins["accuracy"])
    n = count.shape[0]
    if edges.shape != (n + 1,) or acc.shape != (n,):
        raise ValueError(f"inconsistent bins: {edges.shape[0]} edges, {n} counts, {acc.shape[0]} accuracies")
    mid = (edges[:-1] + edges[1:]) / 2
    conf = arr(bins["confidence"]) if bins.get("confidence") is not None else mid
    conf = np.where(np.isnan(conf), mid, conf)
    count = np.nan_to_num(count, nan=0.0)
    empty = count <= 0
    return edges[:-1], np.diff(edges), count, np.where(empty, np.nan, conf), np.where(empty, np.nan, acc)


def headline(metrics: Mapping[str, Any] | None, bins: Mapping[str, Any] | None = None) -> tuple[str, Any]:
    """The metric a diagram is titled with: ``ece`` (classification) or ``d_ece`` (detection), and its value."""
    for source in (metrics or {}, bins or {}):
        for key in registry.headline_keys():
            if key in source:
                return key, source[key]
    return "ece", None


def nothing_measured(bins: Mapping[str, Any] | None, metrics: Mapping[str, Any] | None = None) -> bool:
    """True when a diagram has nothing to show: no bins, bins that hold no sample, or NaN metrics."""
    if bins is None:
        return True
    _, _, count, _, _ = _unpack_bins(bins)
    if count.sum() <= 0:
        return True
    _, value = headline(metrics, bins)
    if value is not None and not _finite(value):
        return True
    numeric = [v for v in (metrics or {}).values() if isinstance(v, (float, np.floating))]
    return bool(numeric) and not any(_finite(v) for v in numeric)


def empty_bins(n_bins: int) -> dict[str, Any]:
    """Bins that hold no sample (``n_bins`` equal-width bins over [0, 1])."""
    return {"edges": np.linspace(0.0, 1.0, n_bins + 1), "count": np.zeros(n_bins), "accuracy": np.full(n_bins, np.nan),
            "confidence": np.full(n_bins, np.nan)}


# ---------------------------------------------------------------------------------------------- reliability
def plot_reliability_diagram(
    bins: Mapping[str, Any] | None,
    path: str | Path,
    title: str | None = None,
    metrics: Mapping[str, Any] | None = None,
    dpi: int = DPI,
    reason: str | None = None,
) -> Path:
    """Plot a reliability diagram (accuracy bars, their gap to confidence, the diagonal) above a histogram of samples
    per bin, with the legend and metrics beside them. Returns the saved path.

    Args:
        bins (Mapping | None): ``reliability_bins`` / ``ClassificationCalibration.bins()`` output (``edges``,
            ``count``, ``accuracy``, optionally ``confidence``), drawn as is. None: nothing was measured.
        path (str | Path): Output PNG path (parent directories are created).
        title (str | None): Title prefix, ``"Reliability diagram"`` by default; ``ECE=...`` is appended when measured.
        metrics (Mapping | None): Metrics to list beside the diagram (i.e. ``ClassificationCalibration.compute()``).
        dpi (int): Resolution.
        reason (str | None): Shown on a diagram with nothing measured (:func:`nothing_measured`), in place of an ECE.
    """
    empty = nothing_measured(bins, metrics)
    left, width, count, conf, acc = _unpack_bins(bins if bins is not None else empty_bins(15))
    key, value = headline(metrics, bins)
    head = title or "Reliability diagram"

    with _rc():
        fig = _figure(8.4, 6.6)
        ax = fig.add_axes((0.09, 0.35, 0.58, 0.57))
        axh = fig.add_axes((0.09, 0.08, 0.58, 0.2), sharex=ax)
        handles = [] if empty else _accuracy_bars(ax, left, width, conf, acc, count)
        (diag,) = ax.plot([0, 1], [0, 1], "--", color=GRAY, linewidth=1.5, label="Perfect calibration")
        handles.append(diag)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_ylabel("Accuracy")
        ax.tick_params(labelbottom=False)
        if empty:
            ax.set_title(f"{head}: {NOTHING}")
            ax.text(0.5, 0.62, NOTHING.capitalize(), transform=ax.transAxes, ha="center", va="center",
                    fontsize=FONT_SIZE + 4, color=RED)
            ax.text(0.5, 0.52, reason or "the bins hold no sample", transform=ax.transAxes, ha="center", va="center")
        else:
            ax.set_title(f"{head}  {key.upper()}={value:.4f}" if _finite(value) else head)
        total = float(count.sum())
        handles += _count_histogram(axh, left, width, count, conf, acc, total)
        fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.70, 0.92), frameon=False)
        _metrics_box(fig, total, empty, metrics)
        return _save(fig, path, dpi)


def _accuracy_bars(ax: Any, left: np.ndarray, width: np.ndarray, conf: np.ndarray, acc: np.ndarray,
                   count: np.ndarray) -> list[Any]:
    """The accuracy bars and, over the non-empty bins, the gap between accuracy and confidence: red hatching with no
    fill, so it looks the same over a bar and over the background as in its legend entry. A bin of fewer than
    :data:`FEW_SAMPLES` samples is labelled with its count (its accuracy is a coarse fraction)."""
    nonempty = ~np.isnan(acc)
    bars = [
        ax.bar(left, np.where(nonempty, acc, 0), width, align="edge", color=BLUE, alpha=0.85, edgecolor="white",
               linewidth=0.5, label="Accuracy"),
        ax.bar(left[nonempty], np.abs(conf - acc)[nonempty], width[nonempty], bottom=np.fmin(conf, acc)[nonempty],
               align="edge", facecolor="none", edgecolor=RED, hatch="///", linewidth=0.8, label="Gap to confidence"),
    ]
    for x, w, n, top in zip(left, width, count, np.fmax(conf, acc)):
        if 0 < n < FEW_SAMPLES:
            ax.text(x + w / 2, min(float(top), 0.93) + 0.015, f"n={int(n)}", ha="center", va="bottom",
                    fontsize=FONT_SIZE - 2, color=GRAY)
    return bars


def _count_histogram(axh: Any, left: np.ndarray, width: np.ndarray, count: np.ndarray, conf: np.ndarray,
                     acc: np.ndarray, total: float) -> list[Any]:
    """Samples per bin, with the average accuracy and confidence as vertical lines (their legend handles)."""
    axh.bar(left, count, width, align="edge", color=TEAL, edgecolor="white", linewidth=0.5)
    handles = []
    if total > 0:
        mean_acc = float(np.nansum(acc * count) / total)
        mean_conf = float(np.nansum(conf * count) / total)
        handles.append(axh.axvline(mean_acc, color=BLUE, linewidth=1.5, label=f"Avg. accuracy {mean_acc:.3f}"))
        handles.append(axh.axvline(mean_conf, color=RED, linestyle="--", linewidth=1.5,
                                   label=f"Avg. confidence {mean_conf:.3f}"))
    else:
        axh.set_ylim(0, 1)
    axh.set_xlabel("Confidence")
    axh.set_ylabel("Count")
    return handles


def _metrics_box(fig: Any, total: float, empty: bool, metrics: Mapping[str, Any] | None) -> None:
    """The sample count and the metrics, in a box right of the diagram."""
    lines = [f"samples: {int(total)}"]
    if empty:
        lines.append(NOTHING)
    elif metrics:
        width_k = max(len(str(k)) for k in metrics)
        lines += [f"{str(k).ljust(width_k)} {_fmt(v)}" for k, v in metrics.items()]
    fig.text(0.71, 0.62, "\n".join(lines), ha="left", va="top", fontsize=FONT_SIZE - 1, family="monospace",
             bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "lightgray"})


def plot_reliability_overlay(
    named_bins: Mapping[str, Mapping[str, Any] | None], path: str | Path, title: str | None = None
) -> Path:
    """Overlay the reliability curves (mean confidence vs. accuracy of non-empty bins) of several variants.

    Points are labelled with their bin's sample count; a bin with fewer than :data:`FEW_SAMPLES` samples or under 1%
    of its variant's is drawn hollow. Returns the saved path.

    Args:
        named_bins (Mapping): ``{name: bins}``, each as in :func:`plot_reliability_diagram` (None: nothing measured).
        path (str | Path): Output PNG path (parent directories are created).
        title (str | None): Plot title; ``"Reliability comparison"`` by default.
    """
    with _rc():
        fig = _figure(8.4, 6.0)
        ax = fig.add_axes((0.09, 0.09, 0.58, 0.83))
        ax.plot([0, 1], [0, 1], "--", color=GRAY, linewidth=1.5, label="Perfect calibration")
        for i, (name, bins) in enumerate(named_bins.items()):
            color = PALETTE[i % len(PALETTE)]
            if nothing_measured(bins):
                ax.plot([], [], marker="o", linestyle="none", color=color, label=f"{name}: {NOTHING}")
                continue
            _, _, count, conf, acc = _unpack_bins(bins)
            keep = ~np.isnan(acc)
            x, y, n = conf[keep], acc[keep], count[keep]
            key, value = headline(None, bins)
            label = f"{name} ({key.upper()} {value:.3f})" if _finite(value) else str(name)
            ax.plot(x, y, linewidth=1.5, color=color, label=label)
            few = n < max(FEW_SAMPLES, 0.01 * n.sum())
            size = 12 + 140 * np.sqrt(n / n.max())
            ax.scatter(x[~few], y[~few], s=size[~few], color=color, zorder=3)
            ax.scatter(x[few], y[few], s=size[few], facecolors="white", edgecolors=color, linewidths=1.2, zorder=3)
            for xi, yi, ni in zip(x, y, n):  # each variant's labels at its own offset, so equal points stay legible
                ax.annotate(f"{int(ni)}", (xi, yi), xytext=(6, 6 - 10 * (i % 3)), textcoords="offset points",
                            fontsize=7, color=color)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("Confidence")
        ax.set_ylabel("Accuracy")
        ax.set_title(title or "Reliability comparison")
        fig.legend(*ax.get_legend_handles_labels(), loc="upper left", bbox_to_anchor=(0.69, 0.92), frameon=False)
        fig.text(0.70, 0.45, f"numbers: samples per bin\nmarker area grows with them\nhollow: < {FEW_SAMPLES} "
                 "samples\nor < 1% of the variant's", ha="left", va="top", fontsize=FONT_SIZE - 1, color="dimgray")
        return _save(fig, path)


# --------------------------------------------------------------------------------------------- per-epoch curves
def _grid(fig: Any, n: int, max_cols: int = 3, **margins: float) -> list[Any]:
    """``n`` axes in balanced rows of at most ``max_cols`` with no empty cell (a shorter row has wider panels)."""
    rows = max(math.ceil(n / max_cols), 1)
    counts = [n // rows + (1 if r < n % rows else 0) for r in range(rows)]
    cols = math.lcm(*counts)
    gs = fig.add_gridspec(rows, cols, **margins)
    axes = []
    for r, k in enumerate(counts):
        span = cols // k
        axes += [fig.add_subplot(gs[r, j * span:(j + 1) * span]) for j in range(k)]
    return axes


def _numeric(df: Any, col: str) -> np.ndarray:
    import pandas as pd

    return pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)


def plot_calibration_curves(
    df: Any,
    path: str | Path,
    metrics: Sequence[str | Sequence[str]] = CLASSIFY_PANELS,
    eps_column: str = "label_smoothing",
    best_epoch: int | None = None,
) -> Path:
    """Plot calibration metrics against the (1-based) epoch, one panel per metric or group, plus ε; returns the path.

    Panels fill balanced rows of at most three. A group of metrics (one unit) shares a panel and a legend; the ε panel
    (when ``eps_column`` holds a value) starts at 0; a panel with no finite value says "not measured".

    Args:
        df (pandas.DataFrame): ``epoch`` column (1-based; row number + 1 when missing) and metric columns; column names
            are stripped of surrounding whitespace (as in Ultralytics ``results.csv``).
        path (str | Path): Output PNG path (parent directories are created).
        metrics (Sequence): Metric columns, or tuples of columns drawn in one panel; absent columns are skipped.
        eps_column (str): Column with the label-smoothing ε per epoch.
        best_epoch (int | None): The 1-based epoch best.pt holds, marked in every panel.
    """
    df = df.rename(columns=lambda c: str(c).strip())
    x = _numeric(df, "epoch") if "epoch" in df else np.arange(1, len(df) + 1, dtype=float)
    groups = [[m for m in ((g,) if isinstance(g, str) else g) if m in df.columns] for g in metrics]
    panels: list[list[str]] = [g for g in groups if g]
    eps = _numeric(df, eps_column) if eps_column in df.columns else None
    if eps is not None and bool(np.isfinite(eps).any()):
        panels.append([eps_column])
    rows, cols = math.ceil(max(len(panels), 1) / 3), min(max(len(panels), 1), 3)
    width, height = 3.6 * cols + 0.4, 2.9 * rows + 0.3

    with _rc():
        fig = _figure(width, height)
        axes = _grid(fig, max(len(panels), 1), left=0.65 / width, right=1 - 0.15 / width, bottom=0.5 / height,
                     top=1 - 0.35 / height, wspace=0.35, hspace=0.6)
        if not panels:
            axes[0].set_title("no calibration metrics")
            axes[0].text(0.5, 0.5, "not measured", transform=axes[0].transAxes, ha="center", va="center", color=RED)
        color = iter(PALETTE * 3)
        for ax, names in zip(axes, panels):
            if names == [eps_column]:
                ax.step(x, eps, where="mid", color=GRAY, linewidth=1.5)
                ax.plot(x, eps, "o", color=GRAY, markersize=4)
                ax.set_ylim(*eps_limits(eps))
                ax.set_title(f"label smoothing ε ({eps_column})")
            else:
                _metric_panel(ax, x, names, [_numeric(df, m) for m in names], color)
            if best_epoch is not None:
                ax.axvline(best_epoch, color=GRAY, linestyle=":", linewidth=1.2, zorder=0)
                ax.text(best_epoch, 1.0, " best.pt", transform=ax.get_xaxis_transform(), ha="left", va="top",
                        fontsize=FONT_SIZE - 2, color=GRAY)
            ax.grid(alpha=0.3)
            _epoch_ticks(ax, x)
        return _save(fig, path)


def _metric_panel(ax: Any, x: np.ndarray, names: list[str], ys: list[np.ndarray], color: Any) -> None:
    """One curves panel: a line per metric (colours drawn from ``color``), and a legend with head room above."""
    for m, y in zip(names, ys):
        ax.plot(x, y, marker="o", markersize=4, linewidth=1.5, color=next(color), label=m)
    finite = np.concatenate([y[np.isfinite(y)] for y in ys])
    ax.set_title(" / ".join(names) if len(names) < 3 else "calibration error")
    if not finite.size:
        ax.text(0.5, 0.5, "not measured", transform=ax.transAxes, ha="center", va="center", color=RED)
    elif len(names) > 1:  # head room above the lines for the legend
        lo, hi = min(0.0, float(finite.min())), float(finite.max())
        ax.set_ylim(lo, hi + 0.5 * (hi - lo or 1.0))
        ax.legend(loc="upper left", ncols=min(len(names), 4), fontsize=FONT_SIZE - 2, frameon=False,
                  handlelength=1.2, columnspacing=0.8)


def plot_compare_curves(
    runs: Mapping[str, Sequence[tuple[Any, Any]]], path: str | Path, cal_key: str, acc_col: str,
    acc_label: str | None = None, best: Mapping[str, Sequence[int | None]] | None = None,
) -> Path:
    """The compare report's curves: a calibration and an accuracy metric per epoch, one line per run (every seed of
    a variant in the variant's colour).

    Args:
        runs (Mapping): ``{label: [(calibration_df, results_df) per seed]}``, each with a 1-based ``epoch`` column.
        path (str | Path): Output PNG path.
        cal_key (str): Calibration column (``ece`` or ``d_ece``).
        acc_col (str): Accuracy column of results.csv (``metrics/accuracy_top1``, ``metrics/mAP50-95(B)``).
        acc_label (str | None): Its axis label; the part after the last ``/`` by default.
        best (Mapping | None): ``{label: [epoch per seed]}``: the 1-based epoch each ``best.pt`` holds, ringed.
    """
    acc_label = acc_label or acc_col.split("/")[-1]
    longest = max((len(label) for label in runs), default=10)
    width = 9.0 + 0.6 + 0.085 * max(longest, 14)  # the axes take 9 in; the legend column fits the longest label
    with _rc():
        fig = _figure(width, 4.0)
        ax1, ax2 = (fig.add_axes((1.0 / width, 0.13, 3.3 / width, 0.77)),
                    fig.add_axes((5.55 / width, 0.13, 3.3 / width, 0.77)))
        epochs: list[float] = []
        for i, (label, seeds) in enumerate(runs.items()):
            bests = list((best or {}).get(label) or [])
            for k, (cal, res) in enumerate(seeds):
                b = bests[k] if k < len(bests) else None
                for ax, df, col in ((ax1, cal, cal_key), (ax2, res, acc_col)):
                    if df is not None and col in df:
                        epochs += _variant_curve(ax, df, col, PALETTE[i % len(PALETTE)], label if k == 0 else None,
                                                 b, alpha=1.0 if len(seeds) == 1 else 0.75)
        ax1.set(ylabel=cal_key, title=f"{cal_key} per epoch")
        ax2.set(ylabel=acc_label, title=f"{acc_label} per epoch")
        for ax in (ax1, ax2):
            ax.grid(alpha=0.3)
            _epoch_ticks(ax, epochs)
        if best:
            ax1.scatter([], [], s=90, facecolors="none", edgecolors=GRAY, linewidths=1.6, label="best.pt epoch")
        if any(len(seeds) > 1 for seeds in runs.values()):
            ax1.plot([], [], color=GRAY, label="one line per seed")
        fig.legend(*ax1.get_legend_handles_labels(), loc="upper left", bbox_to_anchor=(9.0 / width, 0.9),
                   frameon=False)
        return _save(fig, path)


def _variant_curve(ax: Any, df: Any, col: str, color: str, label: str | None, best: int | None,
                   alpha: float = 1.0) -> list[float]:
    """One run's line of ``col`` per epoch, ``best`` (its best.pt epoch) ringed; returns the epochs drawn."""
    x = _numeric(df, "epoch")
    ax.plot(x, _numeric(df, col), marker="o", markersize=3, color=color, label=label, alpha=alpha)
    if best is not None:
        ax.scatter(x[x == best], _numeric(df, col)[x == best], s=90, facecolors="none", edgecolors=color,
                   linewidths=1.6, zorder=4)
    return list(x)


# ------------------------------------------------------------------------------------------------------- ε
def plot_smoothing_schedule(
    plan: Sequence[tuple[float, float]],
    results_csv: str | Path | None,
    path: str | Path,
    iterations: Sequence[tuple[float, float]] | None = None,
    on_plot: Callable | None = None,
) -> Path:
    """Plot the planned ε schedule (a step line) against the ε applied per epoch and per iteration; returns the path.

    A value set at fractional 0-based epoch ``f`` (as schedules and ``trainer.ls_applied`` count) is drawn at
    ``f + 0.5`` on the 1-based epoch axis; an epoch's applied value (results.csv's ``label_smoothing``) at the mean x
    of its iterations when they are given, else at the epoch's centre.

    Args:
        plan (Sequence[tuple[float, float]]): (fractional 0-based epoch, ε) pairs, i.e. ``schedule.plan()``.
        results_csv (str | Path | None): The run's results.csv (its ``epoch`` column is 1-based).
        path (str | Path): Where to save the PNG.
        iterations (Sequence[tuple[float, float]] | None): Per-iteration (fractional 0-based epoch, ε) applied.
        on_plot (Callable | None): Ultralytics' ``trainer.on_plot`` to register the plot with loggers.
    """
    from yolo_ls.core.files import read_csv

    values: list[float] = []
    epochs: list[float] = []
    with _rc():
        fig = _figure(7.0, 4.0)
        ax = fig.add_axes((0.1, 0.13, 0.58, 0.77))
        if plan:
            f, y = (np.asarray(v, dtype=float) for v in zip(*plan))
            step = float(np.min(np.diff(f))) if len(f) > 1 and np.all(np.diff(f) > 0) else 1.0
            xs, ys = np.append(f + 0.5, f[-1] + 0.5 + step), np.append(y, y[-1])
            ax.plot(xs, ys, drawstyle="steps-post", color=BLUE, linewidth=2, label="planned")
            values += list(y)
            epochs += [float(np.floor(f[0])) + 1, float(np.ceil(f[-1] + step - 1e-9))]
        it_x = it_y = None
        if iterations:
            f_it, it_y = (np.asarray(v, dtype=float) for v in zip(*iterations))
            it_x = f_it + 0.5
            ax.plot(it_x, it_y, ".", color=PALETTE[4], markersize=3, alpha=0.7, label="applied (per iteration)")
            values += list(it_y)
        df = read_csv(results_csv) if results_csv is not None else None
        if df is not None and "label_smoothing" in df and "epoch" in df:
            df = df.drop_duplicates("epoch", keep="last")
            e = _numeric(df, "epoch")
            x = _epoch_positions(e, it_x)
            ax.plot(x, _numeric(df, "label_smoothing"), "o", color=RED, markersize=6, label="applied (epoch)")
            values += list(_numeric(df, "label_smoothing"))
            epochs += list(e)
        ax.set_ylim(*eps_limits(values))
        _epoch_ticks(ax, epochs or [1.0])
        ax.set_ylabel("label smoothing ε")
        ax.set_title("Label smoothing schedule")
        ax.grid(alpha=0.3)
        fig.legend(*ax.get_legend_handles_labels(), loc="upper left", bbox_to_anchor=(0.7, 0.9), frameon=False)
        path = _save(fig, path)
    if on_plot:
        on_plot(path)
    return path


def _epoch_positions(epochs: np.ndarray, it_x: np.ndarray | None) -> np.ndarray:
    """Where each epoch's value is drawn: the mean x of its iterations (when given and present), else its centre."""
    x = epochs.copy()
    if it_x is not None:
        for j, ej in enumerate(epochs):
            inside = (it_x >= ej - 0.5) & (it_x < ej + 0.5)
            if inside.any():
                x[j] = float(it_x[inside].mean())
    return x


# ----------------------------------------------------------------------------------------------- soft labels
def plot_soft_labels(matrix: Sequence[Sequence[float]], names: Sequence[str], path: str | Path,
                     title: str = "Online soft labels S (row: true class)", on_plot: Callable | None = None) -> Path:
    """Heatmap of a K×K soft-label matrix (``ls_mode=online``'s S, or ``ls_matrix``): row y is the distribution ε
    spreads for true class y; values written in the cells when K <= 12. Returns the saved path."""
    m = np.asarray(matrix, dtype=float)
    k = m.shape[0]
    labels = [str(n) for n in names]
    with _rc():
        side = min(3.0 + 0.45 * k, 12.0)
        fig = _figure(side + 1.2, side)
        ax = fig.add_axes((0.16, 0.14, 0.66, 0.76))
        im = ax.imshow(m, cmap="Blues", vmin=0.0, vmax=max(float(np.nanmax(m)) if m.size else 1.0, 1e-12))
        if k <= 30:
            ax.set_xticks(range(k), labels, rotation=90)
            ax.set_yticks(range(k), labels)
        if k <= 12:
            for i in range(k):
                for j in range(k):
                    ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=FONT_SIZE - 2,
                            color="white" if m[i, j] > 0.6 * np.nanmax(m) else "black")
        ax.set_xlabel("soft target class")
        ax.set_ylabel("true class")
        ax.set_title(title)
        fig.colorbar(im, cax=fig.add_axes((0.85, 0.14, 0.03, 0.76)))
        path = _save(fig, path)
    if on_plot:
        on_plot(path)
    return path
