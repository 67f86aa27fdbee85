"""Plots that are not calibration plots: the ε schedule. matplotlib only, written beside Ultralytics' own PNGs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path


def plot_smoothing_schedule(
    plan: Sequence[tuple[float, float]],
    results_csv: str | Path,
    path: str | Path,
    iterations: Sequence[tuple[float, float]] | None = None,
    on_plot: Callable | None = None,
) -> Path:
    """Plot the planned ε schedule against the ε applied per epoch (the ``label_smoothing`` column of results.csv).

    Args:
        plan (Sequence[tuple[float, float]]): (fractional epoch, ε) pairs of the schedule, i.e. ``schedule.plan()``.
        results_csv (str | Path): The run's results.csv; its ``epoch`` column is 1-based as Ultralytics writes it.
        path (str | Path): Where to save the PNG.
        iterations (Sequence[tuple[float, float]] | None): Per-iteration applied values, drawn when given.
        on_plot (Callable | None): Ultralytics' ``trainer.on_plot`` to register the plot with loggers.
    """
    import pandas as pd
    from matplotlib.figure import Figure  # object API: no pyplot state, no backend switching

    path = Path(path)
    fig = Figure(figsize=(6, 4), tight_layout=True)
    ax = fig.subplots(1, 1)
    if plan:
        x, y = zip(*plan)
        ax.plot(x, y, "-", color="#1f77b4", linewidth=2, label="planned")
    if iterations:
        x, y = zip(*iterations)
        ax.plot(x, y, ".", color="#ff7f0e", markersize=2, alpha=0.6, label="applied (per iteration)")
    csv = Path(results_csv)
    if csv.exists():
        df = pd.read_csv(csv)
        df.columns = [c.strip() for c in df.columns]
        if "label_smoothing" in df:
            df = df.drop_duplicates("epoch", keep="last")
            ax.plot(df["epoch"] - 1, df["label_smoothing"], "o", color="#d62728", markersize=6, label="applied (epoch)")
    ax.set_xlabel("epoch (0-based)")
    ax.set_ylabel("label smoothing ε")
    ax.set_title("Label smoothing schedule")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=200)
    if on_plot:
        on_plot(path)
    return path
