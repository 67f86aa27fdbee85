"""Calibrated checkpoints on the three regimes of methods_study.py and on digits-det: held-out ECE and NLL before and
after ``yolo-ls calibrate``, 3 seeds each (CPU).

Classify: {hard targets, LS 0.1, auto} × {under, over, noise} (the regimes and settings of ``methods_study.py``),
each best.pt calibrated with ``method=temperature`` (5-fold cross-fit on val: every val image is scored by a
temperature fitted on the other folds). Detection: yolo11n on digits-det with the README's setting (128 px, batch 8,
``nbs=8``, SGD, 10 epochs: mAP50 about 0.7; ``calib_conf`` 0.25), ``ls_mode=fg`` ε=0.05 and hard targets, each
best.pt calibrated with ``temperature`` and ``platt`` and ``target_precision=0.9``; mAP50-95 of the stock validator
before and after.

    python bench/calibrate_study.py --out runs/calibrate_study [--seeds 0,1,2] [--no-detect] [--epochs N]

Trainings reuse ``methods_study.train`` (a run whose final.json exists is reused). Writes ``rows.csv``,
``detect_rows.csv`` and ``calibrate_study.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from methods_study import COMMON, METHODS, REGIMES, build_data, mean_sd, train  # noqa: E402

CLS_METHODS = ("hard", "LS 0.1", "auto")
DET_COMMON = dict(model="yolo11n.yaml", data="digits-det", imgsz=128, batch=8, nbs=8, optimizer="SGD", epochs=10,
                  device="cpu", workers=0, plots=False, calib_plots="off", calib_conf=0.25)
DET_VARIANTS = {"fg": dict(label_smoothing=0.05, ls_mode="fg"), "hard": dict(label_smoothing=0.0)}


def calibrate(run: Path, data: str, method: str, **val: Any) -> dict[str, Any]:
    """``yolo-ls calibrate`` on the run's best.pt in a subprocess (log next to it); the json record."""
    stem = "best" if method == "temperature" else f"best-{method}"
    src = run / "weights" / "best.pt"
    if stem != "best":  # one json per method: calibrate a copy named after the method
        import shutil

        shutil.copy(src, run / "weights" / f"{stem}.pt")
        src = run / "weights" / f"{stem}.pt"
    out = run / "calibration" / ("calibrate.json" if stem == "best" else f"calibrate-{stem}.json")
    if not out.exists():
        cmd = [sys.executable, "-m", "yolo_ls", "calibrate", f"model={src}", f"data={data}", f"method={method}",
               "plots=False", *(f"{k}={v}" for k, v in val.items())]
        with open(run / f"calibrate-{method}.log", "w") as log:
            proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
        if proc.returncode or not out.exists():
            raise SystemExit(f"calibrate failed (exit {proc.returncode}); see {run / f'calibrate-{method}.log'}")
    return json.loads(out.read_text())


def table(rows: list[dict[str, Any]], group: tuple[str, ...], keys: tuple[str, ...]) -> str:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r[g] for g in group), []).append(r)
    lines = ["| " + " | ".join([*group, "seeds", *keys]) + " |", "|" + "---|" * (len(group) + 1 + len(keys))]
    for g, rs in groups.items():
        lines.append("| " + " | ".join([*g, str(len(rs)), *(mean_sd([r.get(k) for r in rs]) for k in keys)]) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/calibrate_study"))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--no-detect", action="store_true")
    ap.add_argument("--no-classify", action="store_true")
    ap.add_argument("--epochs", type=int, default=None, help="override every run's epochs (smoke test)")
    ap.add_argument("--train-only", action="store_true", help="train (or reuse) every run, calibrate none")
    a = ap.parse_args(argv)
    out, seeds, t0 = a.out.resolve(), [int(s) for s in a.seeds.split(",")], time.time()
    rows: list[dict[str, Any]] = []
    det_rows: list[dict[str, Any]] = []
    if not a.no_classify:
        data = build_data(out)
        plan = [(r, m, s) for r in REGIMES for m in CLS_METHODS for s in seeds]
        for i, (regime, method, seed) in enumerate(plan, 1):
            print(f"[{i}/{len(plan)}] {regime} / {method} / seed {seed} ({time.time() - t0:.0f} s)", flush=True)
            run = out / regime / method.replace(" ", "_") / f"seed{seed}"
            args = {**COMMON, **REGIMES[regime], **METHODS[method], "seed": seed}
            args["data"] = data[REGIMES[regime]["data"]]
            args["epochs"] = a.epochs or args["epochs"]
            trained = train(run, args)
            if a.train_only:
                continue
            rec = calibrate(run, args["data"], "temperature", imgsz=32, batch=64, device="cpu", workers=0)
            rows.append({"regime": regime, "method": method, "seed": seed, "top1": trained.get("accuracy"),
                         "ECE raw": rec["before"]["ece"], "ECE calibrated": rec["after"]["ece"],
                         "NLL raw": rec["before"]["nll"], "NLL calibrated": rec["after"]["nll"],
                         "T": rec["parameters"]["temperature"],
                         "overconfidence raw": rec["before"]["confidence"] - rec["before"]["accuracy"],
                         "overconfidence calibrated": rec["after"]["confidence"] - rec["after"]["accuracy"]})
    if not a.no_detect:
        for name, extra in DET_VARIANTS.items():
            for seed in seeds:
                print(f"[detect] {name} seed {seed} ({time.time() - t0:.0f} s)", flush=True)
                run = out / "detect-sgd" / name / f"seed{seed}"
                args = {**DET_COMMON, **extra, "seed": seed}
                args["epochs"] = a.epochs or args["epochs"]
                from yolo_ls.datasets import resolve_data

                data = resolve_data("digits-det")
                train(run, args)
                raw_map = _map_after(run / "weights" / "best.pt", data)
                for method in () if a.train_only else ("temperature", "platt"):
                    rec = calibrate(run, data, method, imgsz=128, batch=8, device="cpu", workers=0,
                                    calib_conf=DET_COMMON["calib_conf"], target_precision=0.9)
                    after_map = _map_after(Path(rec["output"]), data)
                    tp = rec["target_precision"]
                    det_rows.append({"variant": name, "method": method, "seed": seed,
                                     "d_ece raw": rec["before"]["d_ece"], "d_ece calibrated": rec["after"]["d_ece"],
                                     "mAP50-95 raw": raw_map,
                                     "mAP50-95 calibrated": after_map, "boxes": rec["before"]["d_count"],
                                     "threshold for precision 0.9 (raw)": tp["raw"]["threshold"],
                                     "threshold for precision 0.9 (calibrated)": tp["calibrated"]["threshold"],
                                     "mean confidence kept there": tp["calibrated"]["confidence"],
                                     "recall there": tp["calibrated"]["recall"],
                                     "held-out precision there": (tp.get("held_out") or {}).get(
                                         "precision", {}).get("mean")})
    md = ["# Calibrated checkpoints", "", f"`python bench/calibrate_study.py {' '.join(argv or sys.argv[1:])}`", ""]
    import pandas as pd

    if rows:
        pd.DataFrame(rows).to_csv(out / "rows.csv", index=False, float_format="%.6g")
        md += [table(rows, ("regime", "method"), ("top1", "ECE raw", "ECE calibrated", "NLL raw", "NLL calibrated",
                                                  "T", "overconfidence raw",
                                                  "overconfidence calibrated")), ""]
    if det_rows:
        pd.DataFrame(det_rows).to_csv(out / "detect_rows.csv", index=False, float_format="%.6g")
        md += [table(det_rows, ("variant", "method"), ("mAP50-95 raw", "mAP50-95 calibrated", "d_ece raw",
                                                       "d_ece calibrated", "boxes",
                                                       "threshold for precision 0.9 (raw)",
                                                       "threshold for precision 0.9 (calibrated)",
                                                       "mean confidence kept there", "recall there",
                                                       "held-out precision there")), ""]
    (out / "calibrate_study.md").write_text("\n".join(md))
    print("\n".join(md))
    print(f"written to {out / 'calibrate_study.md'} in {time.time() - t0:.0f} s")


def _map_after(ckpt: Path, data: str) -> float:
    """mAP50-95 of a checkpoint from the stock validator at its default conf (a subprocess: nothing of yolo-ls loaded);
    the raw and the calibrated checkpoint are validated the same way."""
    code = ("import sys, tempfile; from ultralytics import YOLO; t = tempfile.mkdtemp(); "
            f"m = YOLO({str(ckpt)!r}).val(data={data!r}, imgsz=128, batch=8, device='cpu', workers=0, plots=False, "
            "project=t, verbose=False); print('MAP', m.results_dict['metrics/mAP50-95(B)'])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    line = [x for x in proc.stdout.splitlines() if x.startswith("MAP ")]
    return float(line[-1].split()[1]) if line else float("nan")


if __name__ == "__main__":
    main()
