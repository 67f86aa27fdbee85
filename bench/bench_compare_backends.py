"""Wall time of one ``yolo-ls compare`` on the sequential backend against a local Ray with two workers.

    python bench/bench_compare_backends.py --epochs 3 --out runs/bench-backends

Four variants (label_smoothing=0,0.05,0.1,0.2), yolo11n-cls from scratch on the embedded digits at imgsz 32. Each
backend trains into its own fresh compare folder (nothing reused); the Ray run includes starting and stopping Ray.
The per-run numbers of the two report.csv files are compared too (same seed: same numbers).
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path


def main() -> None:
    """Run both backends and print the times."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--fraction", type=float, default=1.0)
    ap.add_argument("--out", default="runs/bench-backends")
    a = ap.parse_args()

    import pandas as pd

    from yolo_ls.compare.runner import compare
    from yolo_ls.datasets import digits

    out = Path(a.out).resolve()
    shutil.rmtree(out, ignore_errors=True)
    data = digits(out / "digits-32", imgsz=32)
    kw = dict(imgsz=32, epochs=a.epochs, batch=64, fraction=a.fraction, workers=0, seed=0, deterministic=True,
              plots=False, device="cpu", verbose=False, amp=False, project=str(out))
    times = {}
    for backend in ("local", "ray"):
        extra = {"backend": "ray", "cpu_per_variant": 1} if backend == "ray" else {}
        t0 = time.perf_counter()
        compare("yolo11n-cls.yaml", str(data), "0,0.05,0.1,0.2", name=backend, **extra, **kw)
        times[backend] = time.perf_counter() - t0
    a_csv, b_csv = pd.read_csv(out / "local" / "report.csv"), pd.read_csv(out / "ray" / "report.csv")
    diff = max(float((a_csv[c] - b_csv[c]).abs().max()) for c in ("top1", "ece", "nll", "ece_ts"))
    print(f"cpus: {os.cpu_count()}, load average (1, 5, 15 min) at the end: {os.getloadavg()}")
    print(f"sequential (backend=local): {times['local']:.1f} s")
    print(f"local Ray, 2 workers (backend=ray cpu_per_variant=1): {times['ray']:.1f} s")
    print(f"speed-up: {times['local'] / times['ray']:.2f}x; largest per-run difference (top1/ece/nll/ece_ts): {diff:g}")


if __name__ == "__main__":
    main()
