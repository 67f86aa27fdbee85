"""Whole-training overhead: stock ultralytics.YOLO vs yolo-ls with smoothing + calibration + per-epoch plots.

Each repetition trains yolo11n-cls from scratch on the embedded digits for --epochs epochs, once per variant, in a
rotating order, each in a fresh subprocess (so no variant inherits another's warm caches). The reported number is the
median wall time of ``trainer.train()`` per variant and its ratio to stock.

    python bench/bench_training.py --epochs 3 --reps 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

VARIANTS = {
    "stock ultralytics.YOLO": "import ultralytics as u; M = u.YOLO; extra = {}",
    "yolo-ls ε=0.1 + calibration + plots=all": (
        "import yolo_ls as u; M = u.YOLO; extra = dict(label_smoothing=0.1, calib_plots='all')"
    ),
    "yolo-ls ε=0.1 + calibration, calib_plots=off": (
        "import yolo_ls as u; M = u.YOLO; extra = dict(label_smoothing=0.1, calib_plots='off')"
    ),
    "yolo-ls ε=0.1, calibration=False": (
        "import yolo_ls as u; M = u.YOLO; extra = dict(label_smoothing=0.1, calibration=False)"
    ),
}

SCRIPT = """
import time
{setup}
from yolo_ls.datasets import digits
data = str(digits(imgsz=32))
m = M("yolo11n-cls.yaml")
t = time.perf_counter()
m.train(data=data, epochs={epochs}, imgsz=32, batch=64, device="cpu", workers=0, seed=0, plots=True, verbose=False,
        project={project!r}, name="run", exist_ok=True, **extra)
print("ELAPSED", time.perf_counter() - t)
"""


def main() -> None:
    """Run the repetitions and print the table (and JSON with --json)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    times: dict[str, list[float]] = {k: [] for k in VARIANTS}
    names = list(VARIANTS)
    for rep in range(a.reps):
        order = names[rep % len(names):] + names[: rep % len(names)]
        for name in order:
            with tempfile.TemporaryDirectory() as tmp:
                code = SCRIPT.format(setup=VARIANTS[name], epochs=a.epochs, project=tmp)
                proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
                if proc.returncode:
                    raise SystemExit(proc.stderr[-3000:])
                elapsed = float(next(x for x in proc.stdout.splitlines() if x.startswith("ELAPSED")).split()[1])
            times[name].append(elapsed)
            print(f"rep {rep + 1}/{a.reps} {name}: {elapsed:.2f} s", flush=True)
    base = statistics.median(times[names[0]])
    print(f"\n{'variant':48s} {'median s':>9s} {'ratio':>7s}")
    rows = []
    for name in names:
        med = statistics.median(times[name])
        rows.append({"variant": name, "median_s": med, "ratio": med / base, "times": times[name]})
        print(f"{name:48s} {med:9.2f} {med / base:7.3f}")
    if a.json:
        a.json.write_text(json.dumps({"epochs": a.epochs, "reps": a.reps, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
