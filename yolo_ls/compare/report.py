"""The ``yolo-ls compare`` report: each run scored on ``best.pt``, variants as mean ± sd over seeds, a plain reading.

What is scored is the checkpoint a user deploys, ``weights/best.pt``. Ultralytics saves it at the epoch whose fitness
is the highest so far (strictly higher: of equal epochs the first is kept; classify fitness = (top1 + top5) / 2,
detect = mAP50-95) and validates it once more at the end of training; yolo-ls's calibration callback writes that
validation to ``calibration/final.json`` (calibration metrics, ``ece_ts``/``nll_ts`` after temperature scaling, the
reliability bins and the validator's accuracy metrics). The report reads those numbers, names best.pt's epoch (found
by matching best.pt's own ``train_metrics`` to a row of results.csv) and shows the last epoch's accuracy and ECE as
secondary columns. ``reliability.png`` overlays the same best.pt validations, and ``curves.png`` rings best.pt's epoch
on each variant's per-epoch curves.

With several seeds, ``report.csv`` holds one row per run and ``report.md`` one row per variant: mean ± sample sd over
its seeds, the best mean of each headline column in bold, and ``≈`` on a mean whose distance to the best is within
the seed spread (no larger than the larger sd of the two), so that a difference the seeds do not resolve is not read
as one.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from yolo_ls.calibration import registry
from yolo_ls.core.files import read_csv, read_json

# The columns of one run, best.pt first, then temperature scaling, then the last epoch (secondary).
CLASSIFY_COLUMNS = ("top1", "ece", "mce", "brier", "nll", "overconfidence", "ece_ts", "nll_ts", "top1_last", "ece_last")
DETECT_COLUMNS = ("mAP50-95", "mAP50", "d_ece", "d_mce", "d_confidence", "d_accuracy", "d_ece_ts", "mAP50-95_last",
                  "d_ece_last")
# How report.md heads a column, where the key alone would not say it: *_ts is measured after temperature scaling
# cross-fitted on val, each image scored by a temperature fitted without it.
HEADERS = {"ece_ts": "ece_ts (held-out)", "nll_ts": "nll_ts (held-out)", "d_ece_ts": "d_ece_ts (held-out)"}

DETECT_ACC = "metrics/mAP50-95(B)"
# Ultralytics' fitness per task, as columns of results.csv (the fallback when best.pt cannot be read)
FITNESS = {
    "classify": (("metrics/accuracy_top1", 0.5), ("metrics/accuracy_top5", 0.5)),
    "detect": (("metrics/mAP50-95(B)", 1.0),),
    "obb": (("metrics/mAP50-95(B)", 1.0),),
    "segment": (("metrics/mAP50-95(B)", 1.0), ("metrics/mAP50-95(M)", 1.0)),
    "pose": (("metrics/mAP50-95(B)", 1.0), ("metrics/mAP50-95(P)", 1.0)),
}
NOT_MATCHED = ("epoch", "time", "fitness")


def _num(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f


def _close(a: float, b: float) -> bool:
    """Equal as results.csv writes them (``%.6g``; the epoch's validation rounds to 5 decimals)."""
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=2e-5, abs_tol=2e-5)


def best_epoch(run: Path, task: str, res: Any = None) -> int | None:
    """The 1-based epoch ``best.pt`` holds.

    best.pt keeps its epoch's ``train_metrics`` (Ultralytics' strip keeps them); the epoch is the first row of
    results.csv that equals them in every shared column. Without a readable best.pt it is the first epoch of maximal
    fitness computed from results.csv, as Ultralytics picks it.
    """
    res = read_csv(run / "results.csv") if res is None else res
    if res is None or not len(res):
        return None
    ckpt = run / "weights" / "best.pt"
    metrics: dict[str, Any] = {}
    if ckpt.is_file():
        import torch

        try:
            metrics = torch.load(ckpt, map_location="cpu", weights_only=False).get("train_metrics") or {}
        except Exception:  # an unreadable checkpoint: fall back to the fitness rule
            metrics = {}
    shared = [k for k in metrics if k in res.columns and k not in NOT_MATCHED]
    if shared:
        for _, row in res.iterrows():
            if all(_close(_num(row[k]), _num(metrics[k])) for k in shared):
                return int(row["epoch"])
    terms = [(c, w) for c, w in FITNESS.get(task, FITNESS["detect"]) if c in res.columns]
    if not terms:
        return int(res["epoch"].iloc[-1])
    fitness = sum(w * res[c].astype(float) for c, w in terms)
    return int(res["epoch"].iloc[int(fitness.to_numpy().argmax())])


def variant_summary(run: Path, task: str) -> dict[str, Any]:
    """The numbers of one finished run: its ``best.pt`` (final validation, ``calibration/final.json``) and, as
    ``*_last``, its last epoch (results.csv, calibration.csv)."""
    res, cal = read_csv(run / "results.csv"), read_csv(run / "calibration.csv")
    final_path = run / "calibration" / "final.json"
    final = read_json(final_path) if final_path.is_file() else {}
    metrics, val = final.get("metrics") or {}, final.get("val_metrics") or {}
    best = best_epoch(run, task, res)
    at_best = res[res["epoch"] == best].iloc[0] if best is not None else res.iloc[-1]
    last_res, last_cal = res.iloc[-1], cal.iloc[-1]
    row: dict[str, Any] = {"best_epoch": best, "epochs": int(last_res["epoch"])}

    def acc(col: str) -> float:  # the final validation's own number; best epoch's row if final.json lacks it
        return _num(val[col]) if col in val else _num(at_best.get(col))

    if task == "classify":
        row["top1"] = acc("metrics/accuracy_top1")
        for k in _calibration_columns(task):
            row[k] = _num(metrics.get(k))
        row["ece_ts"], row["nll_ts"] = _num(final.get("ece_ts")), _num(final.get("nll_ts"))
        row["top1_last"], row["ece_last"] = _num(last_res["metrics/accuracy_top1"]), _num(last_cal["ece"])
    else:
        row["mAP50-95"], row["mAP50"] = acc("metrics/mAP50-95(B)"), acc("metrics/mAP50(B)")
        for k in _calibration_columns(task):
            row[k] = _num(metrics.get(k))
        row["d_ece_ts"] = _num(final.get("d_ece_ts"))
        row["mAP50-95_last"], row["d_ece_last"] = _num(last_res["metrics/mAP50-95(B)"]), _num(last_cal["d_ece"])
    return row


def _label(row: dict[str, Any]) -> str:
    return str(row["label"]) if row.get("label") else f"ε={row['label_smoothing']:g}"


def metric_columns(task: str) -> tuple[str, ...]:
    """The metric columns of a run's row, in report order."""
    return CLASSIFY_COLUMNS if task == "classify" else DETECT_COLUMNS


def _calibration_columns(task: str) -> tuple[str, ...]:
    """The columns of a run's row that are best.pt's calibration metrics, as ``compute()`` names them."""
    return tuple(c for c in metric_columns(task) if c in registry.names(task))


def aggregate(rows: list[dict[str, Any]], task: str) -> list[dict[str, Any]]:
    """One row per variant from the per-run rows: for each metric ``mean`` and ``sd`` (sample sd over the variant's
    seeds, None for one seed), ``n`` seeds and the best epochs of its runs."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r["variant"], []).append(r)
    out = []
    for runs in groups.values():
        first = runs[0]
        agg: dict[str, Any] = {k: v for k, v in first.items() if k not in (*metric_columns(task), "seed", "run",
                                                                           "best_epoch", "epochs")}
        agg["n"] = len(runs)
        agg["seeds"] = [r.get("seed") for r in runs]
        agg["best_epochs"] = [r.get("best_epoch") for r in runs]
        agg["epochs"] = first.get("epochs")
        stats = {}
        for k in metric_columns(task):
            vals = [float(r[k]) for r in runs if k in r and r[k] is not None and math.isfinite(float(r[k]))]
            mean = statistics.fmean(vals) if vals else math.nan
            sd = statistics.stdev(vals) if len(vals) > 1 else None
            stats[k] = (mean, sd)
            agg[k] = mean
        agg["stats"] = stats
        out.append(agg)
    return out


def headline(task: str) -> tuple[str, str]:
    """(calibration key, accuracy key) of a task's report."""
    cal = next(m for m in registry.METRICS if m.headline and m.name in registry.names(task)).name
    return cal, ("top1" if task == "classify" else "mAP50-95")


def within_spread(a: tuple[float, float | None], b: tuple[float, float | None]) -> bool:
    """True when two (mean, sd) differ by no more than the larger sd; False when either has no sd (one seed)."""
    if a[1] is None or b[1] is None or not (math.isfinite(a[0]) and math.isfinite(b[0])):
        return False
    return abs(a[0] - b[0]) <= max(a[1], b[1])


def _best_of(variants: list[dict[str, Any]], key: str, lower: bool) -> dict[str, Any] | None:
    finite = [v for v in variants if math.isfinite(v["stats"][key][0])]
    if not finite:
        return None
    return (min if lower else max)(finite, key=lambda v: v["stats"][key][0])


def _base(column: str) -> str:
    """The metric a column reports: ``ece_ts`` (after temperature scaling) and ``ece_last`` (last epoch) report ece."""
    for suffix in ("_ts", "_last"):
        if column.endswith(suffix):
            return column[: -len(suffix)]
    return column


#: The report columns of a calibration error, whose best is the lowest (the rest, accuracy and mAP, the highest).
LOWER_IS_BETTER = {
    c for c in (*CLASSIFY_COLUMNS, *DETECT_COLUMNS) if getattr(registry.by_name(_base(c)), "lower_is_better", False)
}


def _cell(stat: tuple[float, float | None], show_sd: bool) -> str:
    mean, sd = stat
    if not math.isfinite(mean):
        return "—"
    if not show_sd:
        return f"{mean:.4f}"
    return f"{mean:.4f} ± {sd:.4f}" if sd is not None else f"{mean:.4f} ± —"


def console_columns(task: str) -> list[str]:
    """The metric columns of the console table (it fits 100 columns; report.md keeps them all)."""
    cal_key, acc_key = headline(task)
    return [acc_key, cal_key, registry.ts_key(task)]



def variant_table(variants: list[dict[str, Any]], task: str, keys: list[str] | None = None,
                  columns: list[str] | None = None) -> str:
    """report.md's table: one row per variant, ``mean ± sd`` when any variant has several seeds, the best mean of
    each headline column (and of ``ece_ts``) in bold, ``≈`` where a mean is within seed spread of that best.
    ``columns`` picks the metric columns (default: all of the task's)."""
    keys = keys or []
    columns = metric_columns(task) if columns is None else columns
    show_sd = any(v["n"] > 1 for v in variants)
    cal_key, acc_key = headline(task)
    marked = {acc_key, cal_key, registry.ts_key(task)} & set(columns)
    best = {k: _best_of(variants, k, k in LOWER_IS_BETTER) for k in marked}
    cols = ["variant", *keys, "seeds", "best.pt epoch", *(HEADERS.get(c, c) for c in columns)]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for v in variants:
        cells = [v["variant"], *("—" if v.get(k) is None else f"{v[k]:g}" if isinstance(v[k], float) else str(v[k])
                                 for k in keys)]
        cells.append(str(v["n"]))
        cells.append("/".join("—" if e is None else str(e) for e in v["best_epochs"]) + f" of {v.get('epochs')}")
        for k in columns:
            text = _cell(v["stats"][k], show_sd)
            b = best.get(k)
            if b is v and text != "—":
                text = f"**{text}**"
            elif b is not None and within_spread(v["stats"][k], b["stats"][k]):
                text = f"≈ {text}"
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def reading(rows: list[dict[str, Any]], task: str) -> str:
    """One plain paragraph on the variants' best.pt: which is best calibrated, what it cost in accuracy, how it
    stands against hard targets and temperature scaling, and whether the seeds resolve the differences.

    ``rows`` are variant rows (:func:`aggregate`, or any dicts with the metric keys, ``label_smoothing`` and
    optionally ``label``, ``hard``, ``stats``)."""
    cal_key, acc_key = headline(task)
    finite = [r for r in rows if math.isfinite(r[cal_key])]
    if not finite:
        return "No variant produced a calibration measurement (empty val split?)."
    best_cal = min(finite, key=lambda r: r[cal_key])
    best_acc = max(rows, key=lambda r: r[acc_key] if math.isfinite(r[acc_key]) else -math.inf)
    hard = next((r for r in rows if r.get("hard", r["label_smoothing"] == 0)), None)

    def spread(a: dict[str, Any], b: dict[str, Any], key: str) -> bool:
        sa, sb = a.get("stats", {}).get(key), b.get("stats", {}).get(key)
        return sa is not None and sb is not None and within_spread(sa, sb)

    text = f"Scored on best.pt. The best calibrated variant is {_label(best_cal)} ({cal_key} {best_cal[cal_key]:.4f}). "
    if best_cal is best_acc:
        text += f"It is also the most accurate ({acc_key} {best_acc[acc_key]:.4f}), so it cost nothing in accuracy. "
    else:
        cost = best_acc[acc_key] - best_cal[acc_key]
        text += (f"It gives up {cost:.4f} {acc_key} against the most accurate variant, "
                 f"{_label(best_acc)} ({acc_key} {best_acc[acc_key]:.4f})")
        text += ", a difference within the seed spread. " if spread(best_cal, best_acc, acc_key) else ". "
    if hard is not None and hard is not best_cal:
        delta = hard[cal_key] - best_cal[cal_key]
        text += (f"Against hard targets ({_label(hard)}, {cal_key} {hard[cal_key]:.4f}) it lowers {cal_key} by "
                 f"{delta:.4f}")
        text += (", but that is within the seed spread: these seeds do not separate the two. "
                 if spread(best_cal, hard, cal_key) else ". ")
    elif hard is best_cal:
        rivals = [r for r in finite if r is not hard and spread(hard, r, cal_key)]
        if rivals:
            text += (f"Hard targets (ε=0) have the lowest mean {cal_key}, but {_label(rivals[0])} ({cal_key} "
                     f"{rivals[0][cal_key]:.4f}) is within the seed spread: these seeds do not separate them. ")
        elif len(finite) > 1 and all(r.get("n", 1) > 1 for r in finite):
            text += ("Hard targets (ε=0) were the best calibrated here, beyond the seed spread: smoothing did not help "
                     "calibration on this data. ")
        else:
            text += f"Hard targets (ε=0) have the lowest {cal_key} here. "
    tk = registry.ts_key(task)
    ts = [r for r in rows if math.isfinite(r.get(tk, math.nan))]
    if ts:
        best_ts = min(ts, key=lambda r: r[tk])
        text += (f"Temperature scaling, cross-fitted on val (each image scored by a temperature fitted without it), "
                 f"brings the variants to {cal_key} {min(r[tk] for r in ts):.4f}–{max(r[tk] for r in ts):.4f} "
                 f"(lowest: {_label(best_ts)})")
        if hard is not None and math.isfinite(hard.get(tk, math.nan)):
            text += f"; hard targets plus temperature scaling reach {hard[tk]:.4f}"
        text += (": that one-parameter post-hoc fix is the yardstick for what smoothing bought ('yolo-ls calibrate' "
                 "folds it into a checkpoint). ")
    if rows and all(r.get("n", 1) == 1 for r in rows):
        text += "One seed per variant: differences this small can be seed noise (seeds=0,1,2 shows the spread)."
    return text.strip()


def pooled_bins(finals: Any) -> dict[str, Any] | None:
    """The reliability bins of several runs (each ``final.json``) pooled: counts added, the per-bin confidence and
    accuracy averaged with the counts as weights, ECE and MCE of the pooled bins. None when no run has bins."""
    import numpy as np

    parts = []
    for f in finals:
        bins = read_json(f).get("bins") if f.exists() else None
        if bins:
            parts.append(bins)
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    count = np.sum([np.asarray(b["count"], float) for b in parts], axis=0)
    out: dict[str, Any] = {"edges": parts[0]["edges"], "count": count.astype(int).tolist()}
    with np.errstate(invalid="ignore", divide="ignore"):
        for key in ("confidence", "accuracy"):
            total = np.nansum([np.nan_to_num(np.asarray(b[key], float)) * np.asarray(b["count"], float)
                               for b in parts], axis=0)
            out[key] = np.where(count > 0, total / count, np.nan).tolist()
    gap = np.abs(np.asarray(out["accuracy"]) - np.asarray(out["confidence"]))
    n = count.sum()
    out["ece"] = float(np.nansum(gap * count) / n) if n else math.nan
    out["mce"] = float(np.nanmax(np.where(count > 0, gap, np.nan))) if n else math.nan
    return out


def _run_dir(out: Path, row: dict[str, Any]) -> Path:
    return out / str(row.get("run") or row["variant"])


def write_report(
    out: Path,
    rows: list[dict[str, Any]],
    task: str,
    command: dict[str, Any] | None = None,
    title: str = "Label smoothing vs hard targets",
    text: str | None = None,
    keys: list[str] | None = None,
    notes: list[str] | None = None,
) -> list[dict[str, Any]]:
    """report.md, report.csv, reliability.png and curves.png from per-run rows; returns the variant rows.

    Each row names its ``variant`` and its folder ``run`` under ``out`` (default: the variant's name), and may carry
    ``seed``, a ``label`` for the plots (default ``ε=<label_smoothing>``) and the varied ``keys``. ``text`` replaces
    the automatic reading; ``notes`` are lines printed under the table (i.e. which combinations collapsed).
    """
    import pandas as pd

    from yolo_ls.plots.figures import plot_compare_curves, plot_reliability_overlay

    pd.DataFrame([{k: v for k, v in r.items() if k != "label"} for r in rows]).to_csv(
        out / "report.csv", index=False, float_format="%.6g")
    variants = aggregate(rows, task)
    by_label = {_label(v): [r for r in rows if r["variant"] == v["variant"]] for v in variants}
    named_bins = {label: pooled_bins(_run_dir(out, r) / "calibration" / "final.json" for r in runs)
                  for label, runs in by_label.items()}
    named_bins = {label: bins for label, bins in named_bins.items() if bins}
    pooled = any(len(runs) > 1 for runs in by_label.values())
    if named_bins:
        plot_reliability_overlay(named_bins, out / "reliability.png",
                                 title=f"Reliability (best.pt of each variant{', seeds pooled' if pooled else ''})")
    cal_key, acc_col = ("ece", "metrics/accuracy_top1") if task == "classify" else ("d_ece", DETECT_ACC)
    curves = {label: [(read_csv(_run_dir(out, r) / "calibration.csv"), read_csv(_run_dir(out, r) / "results.csv"))
                      for r in runs] for label, runs in by_label.items()}
    plot_compare_curves(curves, out / "curves.png", cal_key, acc_col,
                        best={label: [r.get("best_epoch") for r in runs] for label, runs in by_label.items()})
    legend = ("Every number is the final validation of each run's best.pt (the epoch named in `best.pt epoch`); "
              "`*_last` columns are the last epoch's. ")
    if any(v["n"] > 1 for v in variants):
        legend += ("Cells are mean ± sd over the seeds; **bold**: the best mean of the column; ≈: within seed spread "
                   "of that best (the means differ by no more than the larger of the two sds). ")
    legend += ("reliability.png pools the best.pt bins of every seed of a variant; curves.png draws every run, "
               "one line per seed; one row per run in report.csv.")
    md = [f"# {title}", "", variant_table(variants, task, keys), "", legend, ""]
    md += [f"- {n}" for n in notes or []] + ([""] if notes else [])
    md += [text or reading(variants, task), ""]
    md += ["![reliability](reliability.png)", "", "![curves](curves.png)", ""]
    if command:
        md += ["Arguments: `" + " ".join(f"{k}={v}" for k, v in command.items()) + "`", ""]
    (out / "report.md").write_text("\n".join(md), encoding="utf-8")
    return variants
