"""Detection study: ε x ls_mode on digits-det, trained from scratch on the CPU.

Reports, at the epoch with the best mAP50-95: mAP50, mAP50-95, the detection calibration error d_ece (predictions
with conf >= 0.25; correct = true positive at IoU 0.5) with the mean confidence and precision of those predictions,
and the score floor: the mean max-class score on background anchors (anchor centres outside every ground-truth box)
of the val images of best.pt, i.e. how far smoothing lifts the scores of what is not an object.

    python bench/detection_study.py --epochs 40 --out runs/study

Finished variants are reused when the command is re-run (their best.pt and results.csv stay in --out).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch


def background_score_floor(weights: Path, data_yaml: Path, imgsz: int) -> float:
    """Mean over val images and background anchors of the max class score (sigmoid), from the raw head output."""
    import cv2
    import yaml
    from ultralytics import YOLO

    model = YOLO(str(weights)).model.float().eval()
    data = yaml.safe_load(Path(data_yaml).read_text())
    root = Path(data["path"])
    strides = [int(s) for s in model.stride.tolist()]
    centres = torch.cat(
        [
            torch.stack(torch.meshgrid(torch.arange(imgsz // s), torch.arange(imgsz // s), indexing="ij"), -1)
            .flip(-1)
            .reshape(-1, 2)
            .float()
            .add(0.5)
            .mul(s)
            for s in strides
        ]
    )  # (A, 2) x, y in pixels, in the head's anchor order
    floors = []
    for img_path in sorted((root / data["val"]).glob("*.png")):
        im = cv2.imread(str(img_path))[:, :, ::-1].copy()
        x = torch.from_numpy(im).permute(2, 0, 1)[None].float() / 255
        with torch.inference_mode():
            out = model(x)
        y = out[0] if isinstance(out, (list, tuple)) else out
        if y.shape[1] != 4 + len(model.names):  # end-to-end heads return (B, max_det, 6) after their own top-k
            raise ValueError("score floor needs the raw (B, 4+nc, A) head output of a v8-style head")
        scores = y[0, 4:, :].max(0).values  # (A,)
        lbl = root / "labels" / Path(data["val"]).name / (img_path.stem + ".txt")
        boxes = np.loadtxt(lbl, ndmin=2) if lbl.exists() and lbl.stat().st_size else np.zeros((0, 5))
        inside = torch.zeros(len(centres), dtype=torch.bool)
        for _, cx, cy, w, h in boxes:
            x1, y1, x2, y2 = (cx - w / 2) * imgsz, (cy - h / 2) * imgsz, (cx + w / 2) * imgsz, (cy + h / 2) * imgsz
            inside |= (centres[:, 0] >= x1) & (centres[:, 0] <= x2) & (centres[:, 1] >= y1) & (centres[:, 1] <= y2)
        floors.append(scores[~inside].mean().item())
    return float(np.mean(floors))


def main() -> None:
    """Train every variant (or reuse it), then print and save the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="yolo11n.yaml")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--imgsz", type=int, default=128)
    ap.add_argument("--n-train", type=int, default=400)
    ap.add_argument("--n-val", type=int, default=100)
    ap.add_argument("--eps", default="0,0.05,0.1")
    ap.add_argument("--modes", default="fg,all")
    ap.add_argument("--out", default="runs/study")
    ap.add_argument("--data-root", default=None, help="where digits-det is built (default: Ultralytics datasets_dir)")
    a = ap.parse_args()

    import pandas as pd

    from yolo_ls import YOLO
    from yolo_ls.datasets import digits_detection

    data = digits_detection(a.data_root, imgsz=a.imgsz, n_train=a.n_train, n_val=a.n_val)
    out = Path(a.out).resolve()
    variants = []
    for eps in (float(e) for e in a.eps.split(",")):
        for mode in a.modes.split(","):
            if eps == 0 and variants and variants[0][0] == 0:
                continue  # ε=0 is the same run for every mode
            variants.append((eps, mode))
    rows = []
    for i, (eps, mode) in enumerate(variants, 1):
        name = "eps0" if eps == 0 else f"eps{eps:g}-{mode}"
        run = out / name
        done = run / "study.json"
        print(f"[{i}/{len(variants)}] {name}: " + ("reusing finished run" if done.exists() else "training"), flush=True)
        if not done.exists():
            YOLO(a.model).train(data=str(data), epochs=a.epochs, imgsz=a.imgsz, batch=16, device="cpu", workers=0,
                                seed=0, deterministic=True, project=str(out), name=name, exist_ok=True, plots=False,
                                label_smoothing=eps, ls_mode=mode, verbose=False)
            df = pd.read_csv(run / "results.csv")
            df.columns = [c.strip() for c in df.columns]
            best = df.loc[df["metrics/mAP50-95(B)"].idxmax()]
            row = {"variant": name, "eps": eps, "ls_mode": mode if eps else "-", "best_epoch": int(best["epoch"]),
                   "mAP50": float(best["metrics/mAP50(B)"]), "mAP50-95": float(best["metrics/mAP50-95(B)"]),
                   "d_ece": float(best["calib/d_ece"]), "d_confidence": float(best["calib/d_confidence"]),
                   "d_precision": float(best["calib/d_accuracy"]),
                   "score_floor": background_score_floor(run / "weights" / "best.pt", data, a.imgsz)}
            done.write_text(json.dumps(row))
        rows.append(json.loads(done.read_text()))
    df = pd.DataFrame(rows)
    df.to_csv(out / "study.csv", index=False)
    table = df.to_string(index=False, float_format=lambda v: f"{v:.4f}")
    (out / "study.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
