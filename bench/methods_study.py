"""The label-smoothing family on three regimes, 3 seeds each: yolo11n-cls from scratch on the embedded digits (CPU).

Regimes (imgsz 32, batch 64):

- ``under``: under-confident. The demo settings: digits with 1,437 train / 360 val images, Ultralytics' default
  augmentation, 8 epochs.
- ``over``: over-confident. Little data: digits split 20/80 (359 train / 1,438 val images), augmentation off,
  30 epochs.
- ``noise``: memorisation. The same 359 train images with 40% symmetric label noise (val clean), augmentation off,
  30 epochs (the hard-target model fits the noise: its train loss keeps falling while val NLL rises).

Methods: hard targets (ε=0), uniform LS ε=0.1, ``ls_schedule=auto`` from 0.1, MbLS (``ls_mode=margin``, λ=0.1,
m=10), OLS (``ls_mode=online``, ε=0.5: the paper's equal mix of hard and learned soft targets) and, under noise,
negative smoothing (ε=-0.2, ``ls_negative=True``). Each run scores ``best.pt`` (its final validation: top-1, ECE, NLL,
Brier, and ECE after a temperature fitted on val, the post-hoc yardstick).

Detection (``--detect``): yolo11n on digits-det (128 px, 15 epochs, boxes scored from ``calib_conf=0.1``: at 5 epochs
nothing reached the default 0.25), ``ls_mode=fg`` against ``ls_mode=matrix`` with a class-confusion matrix (row y:
how often scikit-learn's logistic regression mistakes digit y for each other digit, 5-fold cross-validated on the 8x8
digits, diagonal 0), ε=0.1, 3 seeds.

    python bench/methods_study.py --out runs/methods_study [--regimes under,over,noise] [--detect] [--seeds 0,1,2]

Each run trains in its own ``yolo-ls train`` subprocess (log: ``<run>/train.log``); a run whose ``final.json`` exists is
reused when the command is run again, an unfinished one is trained again from scratch. Writes ``rows.csv`` (one row
per run) and ``methods_study.md`` (mean ± sd per regime and method) into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

NO_AUG = dict(hsv_h=0.0, hsv_s=0.0, hsv_v=0.0, fliplr=0.0, erasing=0.0, auto_augment=None, scale=0.0, translate=0.0)
COMMON = dict(model="yolo11n-cls.yaml", imgsz=32, batch=64, device="cpu", workers=0, plots=False, calib_plots="off")
REGIMES = {
    "under": dict(data="digits", epochs=8),
    "over": dict(data="small", epochs=30, **NO_AUG),
    "noise": dict(data="small-noise40", epochs=30, **NO_AUG),
}
METHODS = {
    "hard": dict(label_smoothing=0.0),
    "LS 0.1": dict(label_smoothing=0.1),
    "auto": dict(label_smoothing=0.1, ls_schedule="auto"),
    "MbLS": dict(label_smoothing=0.1, ls_mode="margin"),
    "OLS": dict(label_smoothing=0.5, ls_mode="online"),
    "NLS -0.2": dict(label_smoothing=-0.2, ls_negative=True),
}
ONLY_UNDER_NOISE = {"NLS -0.2"}
DET_COMMON = dict(model="yolo11n.yaml", data="digits-det", imgsz=128, batch=16, epochs=15, device="cpu", workers=0,
                  plots=False, calib_plots="off", label_smoothing=0.1, calib_conf=0.1)
CLS_KEYS = ("accuracy", "ece", "nll", "brier", "ece_ts")
DET_KEYS = ("mAP50-95", "d_ece", "d_mce", "d_count")


def build_data(out: Path) -> dict[str, str]:
    """The three datasets (built once under ``out/data``; an identical one is reused)."""
    from yolo_ls.datasets import add_label_noise, digits

    small = digits(out / "data" / "digits-20-80", imgsz=32, val_fraction=0.8, seed=0)
    noisy = out / "data" / "digits-20-80-noise40"
    if not (noisy / "train").is_dir():
        add_label_noise(small, noisy, rate=0.4, kind="symmetric", seed=0)
    return {"digits": str(digits(imgsz=32)), "small": str(small), "small-noise40": str(noisy)}


def confusion_matrix_csv(path: Path) -> Path:
    """Row-normalised off-diagonal confusion of a 5-fold cross-validated logistic regression on sklearn's digits."""
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import confusion_matrix
    from sklearn.model_selection import cross_val_predict

    x, y = load_digits(return_X_y=True)
    pred = cross_val_predict(LogisticRegression(max_iter=2000), x / 16.0, y, cv=5)
    m = confusion_matrix(y, pred).astype(float)
    np.fill_diagonal(m, 0.0)
    m += 1e-3  # every row has some mass even where the regression never erred
    np.fill_diagonal(m, 0.0)
    m /= m.sum(1, keepdims=True)
    names = [str(i) for i in range(10)]
    lines = ["," + ",".join(names)] + [names[i] + "," + ",".join(f"{v:.6f}" for v in row) for i, row in enumerate(m)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def train(run: Path, args: dict[str, Any]) -> dict[str, Any]:
    """Train one run in a ``yolo-ls train`` subprocess (or reuse a finished one); its best.pt final validation."""
    final = run / "calibration" / "final.json"
    if not final.exists():
        if run.exists():
            shutil.rmtree(run)  # unfinished: no stale rows may survive
        run.mkdir(parents=True)
        full = {**args, "project": str(run.parent), "name": run.name, "exist_ok": True}
        cmd = [sys.executable, "-m", "yolo_ls", "train", *(f"{k}={v}" for k, v in full.items())]
        with open(run / "train.log", "w") as log:
            proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
        if proc.returncode or not final.exists():
            raise SystemExit(f"training failed (exit {proc.returncode}); see {run / 'train.log'}")
    from yolo_ls.compare.report import best_epoch
    from yolo_ls.core.files import read_csv

    result = json.loads(final.read_text())
    row = {**result["metrics"], "ece_ts": result.get("ece_ts")}
    res = read_csv(run / "results.csv")
    row["best_epoch"] = best_epoch(run, "detect" if "metrics/mAP50-95(B)" in res.columns else "classify", res)
    row["epochs"] = len(res)
    if "metrics/mAP50-95(B)" in res.columns:  # best.pt's mAP, from its row of results.csv; its scored boxes
        row["mAP50-95"] = float(res.loc[res["epoch"] == row["best_epoch"], "metrics/mAP50-95(B)"].iloc[0])
        row["d_count"] = int(sum((result.get("bins") or {}).get("count") or []))
    return row


def mean_sd(values: list[float]) -> str:
    v = [x for x in values if x is not None and math.isfinite(x)]
    if not v:
        return "—"
    return f"{statistics.mean(v):.4f} ± {statistics.stdev(v):.4f}" if len(v) > 1 else f"{v[0]:.4f}"


def table(rows: list[dict[str, Any]], keys: tuple[str, ...], group: tuple[str, ...]) -> str:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r[g] for g in group), []).append(r)
    head = [*group, "seeds", *keys, "best epoch"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for g, rs in groups.items():
        cells = [*g, str(len(rs)), *(mean_sd([r.get(k) for r in rs]) for k in keys),
                 ", ".join(str(r["best_epoch"]) for r in rs)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/methods_study"))
    ap.add_argument("--regimes", default=",".join(REGIMES))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--detect", action="store_true", help="also run the detection fg vs matrix comparison")
    ap.add_argument("--no-classify", action="store_true", help="skip the classification regimes")
    ap.add_argument("--epochs", type=int, default=None, help="override every run's epochs (smoke test)")
    a = ap.parse_args(argv)
    out = a.out.resolve()
    seeds = [int(s) for s in a.seeds.split(",")]
    regimes = [r for r in a.regimes.split(",") if r]
    unknown = [r for r in regimes if r not in REGIMES]
    if unknown:
        ap.error(f"unknown regime(s) {unknown}; choose from {list(REGIMES)}")
    rows: list[dict[str, Any]] = []
    t0 = time.time()
    if not a.no_classify:
        data = build_data(out)
        plan = [(r, m, s) for r in regimes for m in METHODS if r == "noise" or m not in ONLY_UNDER_NOISE for s in seeds]
        for i, (regime, method, seed) in enumerate(plan, 1):
            run = out / regime / method.replace(" ", "_") / f"seed{seed}"
            rargs = dict(REGIMES[regime])
            args = {**COMMON, **rargs, "data": data[rargs["data"]], **METHODS[method], "seed": seed}
            args["epochs"] = a.epochs or args["epochs"]
            print(f"[{i}/{len(plan)}] {regime} / {method} / seed {seed} ({time.time() - t0:.0f} s)", flush=True)
            rows.append({"regime": regime, "method": method, "seed": seed, **train(run, args)})
    det_rows: list[dict[str, Any]] = []
    if a.detect:
        matrix = confusion_matrix_csv(out / "data" / "digits_confusion.csv")
        for mode, extra in (("fg", {}), ("matrix", {"ls_matrix": str(matrix)})):
            for seed in seeds:
                print(f"[detect] ls_mode={mode} seed {seed} ({time.time() - t0:.0f} s)", flush=True)
                run = out / "detect" / mode / f"seed{seed}"
                args = {**DET_COMMON, "ls_mode": mode, **extra, "seed": seed}
                args["epochs"] = a.epochs or args["epochs"]
                det_rows.append({"ls_mode": mode, "seed": seed, **train(run, args)})
    command = " ".join(argv if argv is not None else sys.argv[1:])
    md = ["# Label-smoothing methods on three regimes", "", f"`python bench/methods_study.py {command}`", ""]
    if rows:
        import pandas as pd

        pd.DataFrame(rows).to_csv(out / "rows.csv", index=False, float_format="%.6g")
        md += [table(rows, CLS_KEYS, ("regime", "method")), ""]
    if det_rows:
        import pandas as pd

        pd.DataFrame(det_rows).to_csv(out / "detect_rows.csv", index=False, float_format="%.6g")
        md += [table(det_rows, DET_KEYS, ("ls_mode",)), ""]
    (out / "methods_study.md").write_text("\n".join(md))
    print("\n".join(md))
    print(f"written to {out / 'methods_study.md'} in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
