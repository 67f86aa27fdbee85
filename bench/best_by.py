"""best.pt chosen by fitness (stock), by val NLL, and by val NLL within fitness_tol=0.02 of the best fitness so far.

yolo11n-cls from scratch on the embedded digits, ε=0, fraction=0.3 (~430 train images), 15 epochs, imgsz 32, seed 0,
deterministic: the three runs train identically and differ only in which epoch becomes best.pt. Prints, per run, the
epoch best.pt holds (matched by its NLL in results.csv) and its top-1, ECE and NLL, then the run's per-epoch table.

    python bench/best_by.py --out runs/best_by
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch

VARIANTS = [("fitness", {}), ("nll", {"best_by": "nll"}), ("nll-tol0.02", {"best_by": "nll", "fitness_tol": 0.02})]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/best_by")
    parser.add_argument("--device", default="cpu")
    out = Path(parser.parse_args().out).resolve()
    device = parser.parse_args().device
    from yolo_ls import YOLO

    for name, kw in VARIANTS:
        YOLO("yolo11n-cls.yaml").train(data="digits", epochs=15, imgsz=32, fraction=0.3, batch=64, seed=0,
                                       deterministic=True, workers=0, device=device, plots=False, label_smoothing=0.0,
                                       project=str(out), name=name, exist_ok=True, **kw)
        df = pd.read_csv(out / name / "results.csv")
        df.columns = [c.strip() for c in df.columns]
        best = torch.load(out / name / "weights" / "best.pt", map_location="cpu", weights_only=False)["train_metrics"]
        epoch = int((df["calib/nll"] - best["calib/nll"]).abs().idxmin()) + 1
        print(f"ROW {name}: best.pt epoch {epoch}; top1 {best['metrics/accuracy_top1']:.4f} "
              f"ece {best['calib/ece']:.4f} nll {best['calib/nll']:.4f}", flush=True)
        print(df[["epoch", "metrics/accuracy_top1", "metrics/accuracy_top5", "calib/ece", "calib/nll"]].to_string())


if __name__ == "__main__":
    main()
