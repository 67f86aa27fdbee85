"""Label smoothing against hard targets, measured on your data: ``yolo-ls compare``.

Trains one variant per ε from the same seed, one after another, then writes ``report.md``, ``report.csv``,
``reliability.png`` (the variants' final reliability curves overlaid) and ``curves.png`` (ECE and accuracy against
epoch) into the compare folder. A finished variant is reused when the command runs again, and an interrupted one is
resumed from its ``last.pt``, so nothing is lost on interruption.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from yolo_ls.config import PluginArgumentError
from yolo_ls.utils import read_csv

DONE = "compare_done.json"


def parse_eps_list(value: Any) -> list[float]:
    """``0,0.05,0.1`` (string, tuple or list) -> [0.0, 0.05, 0.1], each checked like ``label_smoothing``."""
    from yolo_ls.config import ARG_TABLE

    items = value.split(",") if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else [value]
    out = []
    for v in items:
        if isinstance(v, str):
            try:
                v = float(v)
            except ValueError:
                msg = f"'label_smoothing={value}' must be a comma-separated list of floats, i.e. 0,0.05,0.1"
                raise PluginArgumentError(msg) from None
        out.append(ARG_TABLE["label_smoothing"].check("label_smoothing", v))
    if len(out) < 2 or len(set(out)) != len(out):
        raise PluginArgumentError(f"compare needs at least two different ε values, got label_smoothing={value}")
    return out


def variant_name(eps: float) -> str:
    """Folder name of a variant."""
    return f"eps{eps:g}"


def variant_summary(run: Path, task: str) -> dict[str, Any]:
    """The numbers of one finished variant, read from its own results.csv and calibration.csv (last epoch)."""
    res, cal = read_csv(run / "results.csv"), read_csv(run / "calibration.csv")
    last_res, last_cal = res.iloc[-1], cal.iloc[-1]
    row: dict[str, Any] = {"epochs": int(last_res["epoch"])}
    if task == "classify":
        row["top1"] = float(last_res["metrics/accuracy_top1"])
        for k in ("ece", "mce", "brier", "nll", "overconfidence", "ece_ts"):
            row[k] = float(last_cal[k])
    else:
        row["mAP50-95"] = float(last_res["metrics/mAP50-95(B)"])
        row["mAP50"] = float(last_res["metrics/mAP50(B)"])
        for k in ("d_ece", "d_mce", "d_confidence", "d_accuracy"):
            row[k] = float(last_cal[k])
    return row


def reading(rows: list[dict[str, Any]], task: str) -> str:
    """One plain paragraph: which variant is best calibrated, and what it cost in accuracy."""
    cal_key, acc_key = ("ece", "top1") if task == "classify" else ("d_ece", "mAP50-95")
    finite = [r for r in rows if math.isfinite(r[cal_key])]
    if not finite:
        return "No variant produced a calibration measurement (empty val split?)."
    best_cal = min(finite, key=lambda r: r[cal_key])
    best_acc = max(rows, key=lambda r: r[acc_key])
    hard = next((r for r in rows if r["label_smoothing"] == 0), None)
    text = (f"The best calibrated variant is ε={best_cal['label_smoothing']:g} ({cal_key} {best_cal[cal_key]:.4f}). ")
    if best_cal is best_acc:
        text += f"It is also the most accurate ({acc_key} {best_acc[acc_key]:.4f}), so it cost nothing in accuracy. "
    else:
        cost = best_acc[acc_key] - best_cal[acc_key]
        text += (f"It gives up {cost:.4f} {acc_key} against the most accurate variant, "
                 f"ε={best_acc['label_smoothing']:g} ({acc_key} {best_acc[acc_key]:.4f}). ")
    if hard is not None and hard is not best_cal:
        delta = hard[cal_key] - best_cal[cal_key]
        text += f"Against hard targets (ε=0, {cal_key} {hard[cal_key]:.4f}) it lowers {cal_key} by {delta:.4f}. "
    elif hard is best_cal:
        text += "Hard targets (ε=0) were the best calibrated here: smoothing did not help calibration on this data. "
    if task == "classify":
        ts = [r for r in rows if math.isfinite(r["ece_ts"])]
        if ts:
            best_ts = min(ts, key=lambda r: r["ece_ts"])
            text += (f"Temperature scaling fitted on val brings the variants to ECE "
                     f"{min(r['ece_ts'] for r in ts):.4f}–{max(r['ece_ts'] for r in ts):.4f} "
                     f"(lowest: ε={best_ts['label_smoothing']:g})")
            if hard is not None and math.isfinite(hard["ece_ts"]):
                text += f"; hard targets plus temperature scaling reach {hard['ece_ts']:.4f}"
            text += ": that one-parameter post-hoc fix is the yardstick for what smoothing bought."
    return text.strip()


def _markdown_table(rows: list[dict[str, Any]]) -> str:
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in r.values()) + " |")
    return "\n".join(lines)


def compare(
    model: str,
    data: str,
    label_smoothing: Sequence[float] | str = (0.0, 0.05, 0.1),
    project: str | None = None,
    name: str = "compare",
    **train_args: Any,
) -> Path:
    """Train one variant per ε (same seed), then write the comparison report. Returns the compare folder.

    Args:
        model (str): Model to train from, i.e. ``yolo11n-cls.yaml``.
        data (str): Dataset (``digits``, ``digits-det`` or your own).
        label_smoothing (Sequence[float] | str): The ε values, i.e. ``0,0.05,0.1``.
        project (str | None): Parent folder; default ``runs/<task>``.
        name (str): Compare folder name.
        **train_args (Any): Any other train argument (epochs, imgsz, ls_mode, ls_schedule, ...), the same for all.
    """
    from ultralytics.utils import LOGGER, colorstr

    from yolo_ls.config import check_keys, resolve_plugin_args, split_plugin_args
    from yolo_ls.datasets import resolve_data
    from yolo_ls.model import YOLO

    eps_list = parse_eps_list(label_smoothing)
    stock, plugin = split_plugin_args(train_args)
    check_keys(stock)
    task = YOLO(model).task
    resolve_plugin_args({**plugin, "label_smoothing": eps_list[-1]}, task)  # fail before training anything
    if plugin.get("calibration") is False:
        raise PluginArgumentError("compare reads each variant's calibration: 'calibration=False' cannot be used here")
    data = resolve_data(data)
    out = Path(project or f"runs/{task}") / name
    out.mkdir(parents=True, exist_ok=True)
    seed = stock.pop("seed", 0)
    prefix = colorstr("yolo-ls compare:")
    rows = []
    for i, eps in enumerate(eps_list, 1):
        vname = variant_name(eps)
        run = out / vname
        done = run / DONE
        if done.exists():
            LOGGER.info(f"{prefix} [{i}/{len(eps_list)}] ε={eps:g}: reusing the finished variant in {run}")
        else:
            last = run / "weights" / "last.pt"
            if last.exists():
                LOGGER.info(f"{prefix} [{i}/{len(eps_list)}] ε={eps:g}: resuming the interrupted variant")
                YOLO(str(last)).train(resume=True)
            else:
                LOGGER.info(f"{prefix} [{i}/{len(eps_list)}] ε={eps:g}: training")
                YOLO(model).train(data=data, seed=seed, project=str(out), name=vname, exist_ok=True,
                                  label_smoothing=eps, **plugin, **stock)
            done.write_text(json.dumps({"label_smoothing": eps}))
        rows.append({"variant": vname, "label_smoothing": eps, **variant_summary(run, task)})
    write_report(out, rows, task, command=train_args | {"model": model, "data": data})
    LOGGER.info(f"{prefix} report written to {out / 'report.md'}")
    return out


def _label(row: dict[str, Any]) -> str:
    return str(row["label"]) if "label" in row else f"ε={row['label_smoothing']:g}"


def write_report(
    out: Path,
    rows: list[dict[str, Any]],
    task: str,
    command: dict[str, Any] | None = None,
    title: str = "Label smoothing vs hard targets",
    text: str | None = None,
) -> None:
    """report.md, report.csv, reliability.png and curves.png from the variants' run folders (``out/<variant>``).

    A row may carry a ``label`` for the plots (default ``ε=<label_smoothing>``) and ``text`` replaces the automatic
    reading of the table.
    """
    import pandas as pd

    from yolo_ls.plots import plot_reliability_overlay

    pd.DataFrame(rows).to_csv(out / "report.csv", index=False, float_format="%.6g")
    named_bins = {}
    for r in rows:
        final = out / r["variant"] / "calibration" / "final.json"
        if final.exists():
            bins = json.loads(final.read_text()).get("bins")
            if bins:
                named_bins[_label(r)] = bins
    if named_bins:
        plot_reliability_overlay(named_bins, out / "reliability.png", title="Reliability (best.pt of each variant)")
    _plot_curves(out, rows, task)
    md = [f"# {title}", "", _markdown_table(rows), "", text or reading(rows, task), ""]
    md += ["![reliability](reliability.png)", "", "![curves](curves.png)", ""]
    if command:
        md += ["Arguments: `" + " ".join(f"{k}={v}" for k, v in command.items()) + "`", ""]
    (out / "report.md").write_text("\n".join(md), encoding="utf-8")


def _plot_curves(out: Path, rows: list[dict[str, Any]], task: str) -> None:
    from yolo_ls.plots import plot_compare_curves

    cal_key, acc_col = ("ece", "metrics/accuracy_top1") if task == "classify" else ("d_ece", "metrics/mAP50-95(B)")
    runs = {_label(r): (read_csv(out / r["variant"] / "calibration.csv"), read_csv(out / r["variant"] / "results.csv"))
            for r in rows}
    plot_compare_curves(runs, out / "curves.png", cal_key, acc_col)
