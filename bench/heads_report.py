"""Detection calibration of two heads at equal epochs: yolo11n (v8 head, NMS) against yolo26n (end-to-end head).

Reads two finished run folders of bench/detection_study.py's kind (same data, epochs, seed, ε=0) and writes a
compare-style report (report.md/csv, overlaid reliability.png, curves.png) beside them:

    python bench/heads_report.py --runs runs/study --v8 eps0 --e2e yolo26n-eps0 --out runs/study/heads
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path


def main() -> None:
    """Build the report."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default="runs/study")
    ap.add_argument("--v8", default="eps0")
    ap.add_argument("--e2e", default="yolo26n-eps0")
    ap.add_argument("--out", default="runs/study/heads")
    a = ap.parse_args()

    from yolo_ls.compare.runner import variant_summary, write_report
    from yolo_ls.engine.callbacks.calibration import save_final_json
    from yolo_ls.model import YOLO

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for label, name in (("yolo11n (v8 head)", a.v8), ("yolo26n (end-to-end head)", a.e2e)):
        dst = out / name
        src = Path(a.runs) / name
        if not dst.exists():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("weights"))
        final = dst / "calibration" / "final.json"
        if not final.exists():  # runs made before final.json existed: validate best.pt once more for its bins
            train_args = YOLO(str(src / "weights" / "best.pt")).ckpt["train_args"]
            m = YOLO(str(src / "weights" / "best.pt")).val(data=train_args["data"], imgsz=train_args["imgsz"],
                                                          batch=16, device="cpu", plots=False, verbose=False)
            save_final_json(final, {"metrics": m.calibration, "bins": m.calibration_bins})
        rows.append({"variant": name, "label": label, "label_smoothing": 0.0, **variant_summary(dst, "detect")})
    best = min(rows, key=lambda r: r["d_ece"])
    other = rows[1] if best is rows[0] else rows[0]
    text = (
        f"At {rows[0]['epochs']} epochs on digits-det (ε=0, same seed), {best['label']} is the better calibrated head: "
        f"d_ece {best['d_ece']:.4f} against {other['d_ece']:.4f}, with mAP50-95 {best['mAP50-95']:.4f} against "
        f"{other['mAP50-95']:.4f}. Its kept predictions (conf ≥ 0.25) average confidence {best['d_confidence']:.3f} at "
        f"precision {best['d_accuracy']:.3f}; the other head's {other['d_confidence']:.3f} at "
        f"{other['d_accuracy']:.3f}."
    )
    write_report(out, rows, "detect", title="Detection calibration: v8 head vs YOLO26 end-to-end head", text=text)
    print((out / "report.md").read_text())


if __name__ == "__main__":
    main()
