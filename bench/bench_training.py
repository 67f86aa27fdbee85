"""Whole-training overhead of yolo-ls against stock ``ultralytics.YOLO``, and what the end-of-run plots cost.

Section 1 trains yolo11n-cls from scratch on the embedded digits (imgsz 32, batch 64, CPU, plots=True) for --epochs
epochs, once per variant per repetition, each in a fresh subprocess (no variant inherits another's warm caches), in an
order that rotates every repetition. Variants: stock (the reference), stock again (the A/A control: how far two
identical runs differ on this machine today), yolo-ls with ε=0.1 and everything else at its default (calibration on,
``calib_plots`` default), and for information ``calib_plots=off`` (and ``calib_plots=all`` with --with-all). Logger
integrations (MLflow, TensorBoard, ...) are switched off in a settings folder of the benchmark's own. It reports the
median wall time of ``model.train()`` per variant, the ratio of medians against stock, and the median and IQR of the
paired per-repetition ratios. Target: default yolo-ls / stock <= 1.08.

Section 2 times, in this process and interleaved, the end-of-training figures (best.pt reliability diagram, calibration
curves, ε schedule: what a default run draws before ``train()`` returns) and ``yolo-ls plot RUN`` (every per-epoch
diagram plus those) from a synthetic run folder, at 1x the digits val size (360 samples, 15 bins), 10x the samples and
10x the bins. Section 1 is skipped with --plots-only.

    python bench/bench_training.py --epochs 3 --reps 5 [--json out.json] [--plots-only] [--with-all]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import environment, interleaved_samples, paired_ratios, ratio_table, report  # noqa: E402

TARGET = 1.08
STOCK, STOCK_AA, DEFAULT = "stock ultralytics.YOLO", "stock ultralytics.YOLO (A/A)", "yolo-ls ε=0.1, defaults"
VARIANTS = {
    STOCK: "import ultralytics as u; M = u.YOLO; extra = {}",
    STOCK_AA: "import ultralytics as u; M = u.YOLO; extra = {}",
    DEFAULT: "import yolo_ls as u; M = u.YOLO; extra = dict(label_smoothing=0.1)",
    "yolo-ls ε=0.1, calib_plots=off": (
        "import yolo_ls as u; M = u.YOLO; extra = dict(label_smoothing=0.1, calib_plots='off')"
    ),
    "yolo-ls ε=0.1, calib_plots=all": (
        "import yolo_ls as u; M = u.YOLO; extra = dict(label_smoothing=0.1, calib_plots='all')"
    ),
}

SCRIPT = """
import os, time
os.environ["YOLO_CONFIG_DIR"] = {cfg!r}  # a settings file of the benchmark's own, logger integrations off
from ultralytics.utils import SETTINGS
SETTINGS.update({{k: False for k in ("clearml", "comet", "dvc", "mlflow", "neptune", "raytune", "tensorboard", "wandb")
                  if k in SETTINGS}})
{setup}
from yolo_ls.datasets import digits
data = str(digits({data!r}, imgsz=32))
m = M("yolo11n-cls.yaml")
t = time.perf_counter()
m.train(data=data, epochs={epochs}, imgsz=32, batch=64, device="cpu", workers=0, seed=0, plots=True, verbose=False,
        project={project!r}, name="run", exist_ok=True, **extra)
print("ELAPSED", time.perf_counter() - t)
"""


def trainings(epochs: int, reps: int, with_all: bool) -> dict[str, Any]:
    """Section 1: whole trainings in fresh subprocesses, rotating order; medians and paired ratios vs stock."""
    names = [n for n in VARIANTS if with_all or not n.endswith("calib_plots=all")]
    times: dict[str, list[float]] = {k: [] for k in names}
    with tempfile.TemporaryDirectory() as root:
        data = str(Path(root) / "digits-32")
        for rep in range(reps):
            order = names[rep % len(names):] + names[: rep % len(names)]
            for name in order:
                with tempfile.TemporaryDirectory(dir=root) as tmp:
                    code = SCRIPT.format(setup=VARIANTS[name], epochs=epochs, project=tmp, data=data,
                                         cfg=str(Path(root) / "cfg"))
                    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp)
                    if proc.returncode:
                        raise SystemExit(proc.stderr[-3000:])
                    line = next(x for x in proc.stdout.splitlines() if x.startswith("ELAPSED"))
                times[name].append(float(line.split()[1]))
                print(f"rep {rep + 1}/{reps} {name}: {times[name][-1]:.2f} s", flush=True)
    base = statistics.median(times[STOCK])
    print(f"\n{'variant':36s} {'median s':>9s} {'ratio':>7s}   paired ratio [IQR] (vs stock)")
    rows = []
    for name in names:
        med = statistics.median(times[name])
        pr, lo, hi = paired_ratios(times, name, STOCK)
        rows.append({"variant": name, "median_s": med, "ratio": med / base, "paired": [pr, lo, hi],
                     "times": times[name]})
        print(f"{name:36s} {med:9.2f} {med / base:7.3f}   {pr:.3f} [{lo:.3f}, {hi:.3f}]")
    return {"epochs": epochs, "reps": reps, "rows": rows}


def _run_folder(root: Path, n: int, n_bins: int, epochs: int = 3, seed: int = 0) -> tuple[Path, dict[str, Any]]:
    """A synthetic classification run folder (calibration.csv, results.csv, epochs.json) and a final result."""
    import pandas as pd
    import torch

    from yolo_ls.calibration import ClassificationCalibration
    from yolo_ls.core.epoch_bins import save_epoch_bins
    from yolo_ls.engine.callbacks.calibration import CLS_KEYS

    g = torch.Generator().manual_seed(seed)
    run = root / f"n{n}-b{n_bins}"
    rows, result = [], None
    for e in range(1, epochs + 1):
        probs = (torch.randn(n, 10, generator=g) * e).softmax(1)
        labels = torch.randint(0, 10, (n,), generator=g)
        acc = ClassificationCalibration(10, n_bins)
        acc.update(probs, labels)
        metrics = {k: acc.compute()[k] for k in CLS_KEYS}
        result = {"metrics": metrics, "bins": acc.bins(), "ece_ts": float("nan")}
        rows.append({"epoch": e, "label_smoothing": 0.1, **metrics, "ece_ts": float("nan")})
        save_epoch_bins(run / "calibration" / "epochs.json",
                        {"epoch": e, "label_smoothing": 0.1, "metrics": metrics, "bins": result["bins"]},
                        task="classify", calib_conf=0.25, calib_bins=n_bins)
    pd.DataFrame(rows).to_csv(run / "calibration.csv", index=False)
    pd.DataFrame({"epoch": range(1, epochs + 1), "label_smoothing": 0.1}).to_csv(run / "results.csv", index=False)
    return run, result


def end_of_run_plots(reps: int) -> dict[str, Any]:
    """Section 2: the final figures and ``yolo-ls plot RUN`` at 1x/10x samples and 10x bins, interleaved."""
    import time

    from yolo_ls.engine.callbacks.calibration import CalibrationCallbacks
    from yolo_ls.plots import plot_smoothing_schedule, render_run

    cases = {"1x (360 samples, 15 bins)": (360, 15), "10x samples (3600, 15 bins)": (3600, 15),
             "10x bins (360 samples, 150 bins)": (360, 150)}
    with tempfile.TemporaryDirectory() as tmp:
        folders = {name: _run_folder(Path(tmp), n, b) for name, (n, b) in cases.items()}

        def final(run: Path, result: dict[str, Any]) -> None:  # what a default run draws before train() returns
            cb = CalibrationCallbacks(15, "final", 0.25)
            cb.task = "classify"
            cb._final_plots(run, result)
            plot_smoothing_schedule([(0.0, 0.1), (1.0, 0.1), (2.0, 0.1)], run / "results.csv", run / "ls.png")

        run0, result0 = folders[next(iter(cases))]
        t0 = time.perf_counter()
        final(run0, result0)  # the first figure of a process pays matplotlib's font loading
        first = time.perf_counter() - t0
        fns: dict[str, Any] = {}
        for name, (run, result) in folders.items():
            fns[f"final figures, {name}"] = lambda r=run, x=result: final(r, x)
        ref = next(iter(fns))
        fns[f"{ref} (A/A)"] = fns[ref]
        for name, (run, _) in folders.items():
            fns[f"yolo-ls plot RUN (3 epochs), {name}"] = lambda r=run: render_run(r)
        samples = interleaved_samples(fns, reps=reps, warmup=1)
    times = {k: statistics.median(v) for k, v in samples.items()}
    print(f"\nfirst final-figures call in a fresh process: {first * 1e3:.0f} ms (font loading included)")
    print(ratio_table(times, ref, "End-of-run plotting, interleaved medians", samples))
    return {"first_call_s": first, "medians_s": times, "samples": samples}


def main() -> None:
    """Run the sections and print the tables (and JSON with --json)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--plot-reps", type=int, default=7)
    ap.add_argument("--plots-only", action="store_true", help="skip the trainings (section 1)")
    ap.add_argument("--with-all", action="store_true", help="also time calib_plots=all (one more variant)")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    results: dict[str, Any] = {"environment": environment("cpu")}
    print(json.dumps(results["environment"]))
    misses = []
    if not a.plots_only:
        results["trainings"] = trainings(a.epochs, a.reps, a.with_all)
        ratio = next(r["ratio"] for r in results["trainings"]["rows"] if r["variant"] == DEFAULT)
        if ratio > TARGET:
            misses.append(f"default yolo-ls / stock = {ratio:.3f} > {TARGET}")
    results["plots"] = end_of_run_plots(a.plot_reps)
    report(results, misses, a.json)


if __name__ == "__main__":
    main()
