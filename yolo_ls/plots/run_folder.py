"""A run folder's figures redrawn from its files: what ``yolo-ls plot RUN`` does (:func:`render_run`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from yolo_ls.calibration import registry
from yolo_ls.plots.figures import (
    _finite,
    _numeric,
    plot_calibration_curves,
    plot_reliability_diagram,
    plot_smoothing_schedule,
    plot_soft_labels,
)

RUN_FILES = ("calibration.csv", "calibration/epochs.json", "calibration/final.json", "soft_labels.csv")


def is_run_folder(run: str | Path) -> bool:
    """Whether ``run`` is a folder a yolo-ls training (or calibration callbacks) wrote: it has one of RUN_FILES."""
    run = Path(run)
    return run.is_dir() and any((run / f).is_file() for f in RUN_FILES)


def empty_reason(task: str | None, conf: float | None) -> str:
    """Why a validation may have measured nothing, in words for an empty diagram."""
    if task and task != "classify":
        return f"no prediction with confidence ≥ calib_conf={conf:g}" if conf is not None else "no prediction"
    return "no validation sample"


def _schedule_plan(run: Path, epochs: int) -> list[tuple[float, float]]:
    """The planned ε of a run, rebuilt from its args.yaml (empty when it cannot be: auto or a callable schedule)."""
    import yaml

    from yolo_ls.core.args import PLUGIN_KEYS, build_schedule_from_args, resolve_plugin_args

    args_file = run / "args.yaml"
    if not args_file.is_file():
        return []
    try:
        args = yaml.safe_load(args_file.read_text()) or {}
        plugin = {k: v for k, v in args.items() if k in PLUGIN_KEYS}
        if "label_smoothing" not in plugin or str(plugin.get("ls_schedule")) == "auto":
            return []
        sched = build_schedule_from_args(resolve_plugin_args(plugin, args.get("task", "detect")), epochs)
        return sched.plan(points_per_epoch=50 if plugin.get("ls_per_iter") else 1)
    except Exception:  # a callable schedule that cannot be imported here, an args.yaml from another version
        return []


def render_run(run: str | Path) -> list[Path]:
    """Redraw a run folder's figures from its files: what ``yolo-ls plot RUN`` does.

    Writes ``calibration/reliability_epoch{E:03d}.png`` for every epoch in ``calibration/epochs.json``,
    ``calibration/reliability.png`` from ``calibration/final.json``, ``calibration/calibration_curves.png`` from
    ``calibration.csv``, ``label_smoothing.png`` from results.csv (with the plan rebuilt from args.yaml when it can
    be) and, for ``ls_mode=online``, ``soft_labels.png`` from ``soft_labels.csv``. Nothing is trained or validated.

    Raises:
        FileNotFoundError: When ``run`` is not a yolo-ls run folder (see :func:`is_run_folder`).

    Returns:
        The paths written.
    """

    from yolo_ls.core.epoch_bins import load_epoch_bins
    from yolo_ls.core.files import read_csv, read_json

    run = Path(run)
    if not is_run_folder(run):
        raise FileNotFoundError(f"{run} is not a yolo-ls run folder: it has none of {list(RUN_FILES)}")
    out: list[Path] = []
    log = load_epoch_bins(run / "calibration" / "epochs.json")
    task, conf = log.get("task"), log.get("calib_conf")
    reason = empty_reason(task, conf)
    for entry in log.get("epochs", []):
        e = int(entry["epoch"])
        eps = entry.get("label_smoothing")
        eps_text = f", ε={eps:g}" if _finite(eps) else ""
        out.append(plot_reliability_diagram(entry.get("bins"), run / "calibration" / f"reliability_epoch{e:03d}.png",
                                            title=f"Epoch {e}{eps_text}", metrics=entry.get("metrics"),
                                            reason=reason))
    final = run / "calibration" / "final.json"
    if final.is_file():
        data = read_json(final)
        metrics = {k: (math.nan if v is None else v) for k, v in (data.get("metrics") or {}).items()}
        out.append(plot_reliability_diagram(data.get("bins"), run / "calibration" / "reliability.png",
                                            title="Reliability diagram (best.pt)", metrics=metrics, reason=reason))
    cal = read_csv(run / "calibration.csv")
    if cal is not None and len(cal):
        out.append(plot_calibration_curves(cal, run / "calibration" / "calibration_curves.png",
                                           metrics=curve_metrics(cal)))
    res = read_csv(run / "results.csv")
    if res is not None and "label_smoothing" in res and len(res):
        epochs = int(_numeric(res, "epoch").max())
        out.append(plot_smoothing_schedule(_schedule_plan(run, epochs), run / "results.csv",
                                           run / "label_smoothing.png"))
    if (run / "soft_labels.csv").is_file():  # ls_mode=online
        from yolo_ls.core.checks import read_matrix_csv

        names, rows = read_matrix_csv(run / "soft_labels.csv")
        out.append(plot_soft_labels(rows, names, run / "soft_labels.png"))
    return out


# The panels of calibration_curves.png: a tuple shares one panel (same unit), a string has its own.
CURVE_METRICS = tuple(g[0] if len(g) == 1 else g for g in registry.panels())


def curve_metrics(df: Any) -> list[tuple[str, ...]]:
    """The panels :func:`plot_calibration_curves` draws for a run: the groups of CURVE_METRICS its csv has."""
    groups = [tuple(m for m in ((g,) if isinstance(g, str) else g) if m in df) for g in CURVE_METRICS]
    return [g for g in groups if g]
