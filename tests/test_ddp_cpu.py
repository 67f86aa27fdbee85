"""A real 2-process DDP training on the CPU (gloo), through Ultralytics' own multi-GPU path.

The launching process runs ``model.train(trainer=CPUDDPClassificationTrainer)``; Ultralytics writes its DDP file and
starts two workers with ``torch.distributed.run``; each validates its share of the val set and the calibration is
reduced across them. What Ultralytics hard-wires to CUDA is patched in :mod:`tests.ddp_cpu`, nothing else.

Checked against independent references:
    - the final validation (best.pt, both ranks) equals a single-process ``val()`` of the same best.pt on the full val
      set: every ``calib/*`` metric, the reliability bins and ``ece_ts`` (a temperature fitted on all probabilities);
    - every epoch's bins count the whole val set (not one rank's half) and ``auto`` steered from that reading;
    - ε is the same on both ranks every epoch (``ls_schedule=auto``: ε changes after epoch 1);
    - results.csv and calibration.csv hold each epoch once.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT, TINY_CLS, TINY_DET, results, run_python

pytestmark = pytest.mark.training

# The launching process: train with 2 CPU workers, then validate best.pt in one process on the full val set.
DRIVER = """
import json, sys
from pathlib import Path
import numpy as np
from yolo_ls import YOLO
from tests.ddp_cpu import CPUDDPClassificationTrainer

data, out, args = sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3])
YOLO("yolo11n-cls.yaml").train(trainer=CPUDDPClassificationTrainer, data=data, project=str(out), name="ddp", **args)
best = out / "ddp" / "weights" / "best.pt"
val_batch = args["batch"] // 2 * 2  # the per-rank val batch of the DDP run: batch // world_size * 2
ref = YOLO(str(best)).val(data=data, imgsz=args["imgsz"], batch=val_batch, device="cpu", plots=False,
                          project=str(out), name="ref", verbose=False)
bins = {k: np.asarray(v, dtype=float).tolist() for k, v in ref.calibration_bins.items()}
(out / "ref.json").write_text(json.dumps({"calibration": ref.calibration, "bins": bins, "top1": ref.top1}))
"""


def _csv(path: Path):
    import pandas as pd

    df = pd.read_csv(path)
    df.columns = [c.strip() for c in df.columns]
    return df


def test_two_process_cpu_ddp_calibrates_the_whole_val_set(tmp_path: Path, digits_root: Path) -> None:
    from yolo_ls.callbacks.calibration import CLS_KEYS

    # The val set is class-sorted and Ultralytics' val sampler gives each rank a contiguous half (rank 0: digits 0-4),
    # so one rank's share alone has a different accuracy, class-wise ECE and bin counts from the whole set.
    args = {**TINY_CLS, "epochs": 2, "fraction": 0.1, "ls_schedule": "auto", "label_smoothing": 0.1}
    eps_dir = tmp_path / "eps"
    eps_dir.mkdir()
    t0 = time.perf_counter()
    argv = [str(digits_root), str(tmp_path), json.dumps(args)]
    env = dict(YOLO_CONFIG_DIR=str(tmp_path / "cfg"), YOLO_LS_EPS_DIR=str(eps_dir), YOLO_LS_TEST_WORLD="2",
               PYTHONPATH=str(ROOT), YOLO_OFFLINE="1", MPLBACKEND="Agg")
    proc = run_python(f"import sys\nsys.argv[1:] = {argv!r}\n" + DRIVER, 900, **env)
    wall = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-8000:]
    print(f"2-process CPU DDP run + reference val: {wall:.1f} s")
    run = tmp_path / "ddp"
    ref = json.loads((tmp_path / "ref.json").read_text())
    n_val = sum(1 for d in (digits_root / "val").iterdir() for _ in d.iterdir())

    # each epoch once, in both files
    assert results(run)["epoch"].tolist() == [1, 2]
    cal = _csv(run / "calibration.csv")
    assert cal["epoch"].tolist() == [1, 2]

    # every epoch measured the whole val set (one rank alone holds about half of it)
    epochs = json.loads((run / "calibration" / "epochs.json").read_text())["epochs"]
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert [sum(e["bins"]["count"]) for e in epochs] == [n_val, n_val]

    # the final validation of best.pt on both ranks == one process validating best.pt on the full val set
    final = json.loads((run / "calibration" / "final.json").read_text())
    assert sum(final["bins"]["count"]) == n_val == sum(ref["bins"]["count"])
    assert final["bins"]["count"] == ref["bins"]["count"]
    for k in CLS_KEYS:
        assert final["metrics"][k] == pytest.approx(ref["calibration"][k], abs=1e-6, rel=1e-6), k
    assert math.isfinite(final["ece_ts"])
    assert final["ece_ts"] == pytest.approx(ref["calibration"]["ece_ts"], abs=1e-4), "temperature fit on all probs"

    # ε: the same on both ranks every epoch, equal to the logged one; auto stepped from the full-val reading
    per_rank = [[tuple(map(float, line.split())) for line in (eps_dir / f"eps_rank{r}.txt").read_text().splitlines()]
                for r in (0, 1)]
    assert [e for e, _ in per_rank[0]] == [1, 2]
    assert per_rank[0] == per_rank[1]
    assert [round(v, 6) for _, v in per_rank[0]] == cal["label_smoothing"].tolist()
    assert per_rank[0][0][1] == pytest.approx(0.1) and per_rank[0][1][1] != pytest.approx(0.1)  # auto moved ε
    from yolo_ls.trainers import checkpoint_plugin_state

    history = checkpoint_plugin_state(run / "weights" / "last.pt")["state"]["auto"]["history"]
    assert [h["epoch"] for h in history] == [0, 1]
    for h, (_, row) in zip(history, cal.iterrows()):
        assert (h["confidence"], h["accuracy"]) == pytest.approx((row["confidence"], row["accuracy"]), abs=1e-6)
    assert history[0]["next_eps"] == pytest.approx(per_rank[1][1][1], abs=1e-9)


DET_DRIVER = """
import json, sys
from pathlib import Path
import numpy as np
from yolo_ls import YOLO
from tests.ddp_cpu import CPUDDPDetectionTrainer

data, out, args = sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3])
YOLO("yolo11n.yaml").train(trainer=CPUDDPDetectionTrainer, data=data, project=str(out), name="ddp", **args)
best = out / "ddp" / "weights" / "best.pt"
ref = YOLO(str(best)).val(data=data, imgsz=args["imgsz"], batch=args["batch"] // 2 * 2, device="cpu", plots=False,
                          calib_conf=args["calib_conf"], project=str(out), name="ref", verbose=False)
bins = {k: np.asarray(v, dtype=float).tolist() for k, v in ref.calibration_bins.items()}
(out / "ref.json").write_text(json.dumps({"calibration": ref.calibration, "bins": bins}))
"""


def test_two_process_cpu_ddp_detection_calibration(tmp_path: Path, digits_det_yaml: Path) -> None:
    from yolo_ls.callbacks.calibration import DET_KEYS

    args = {**TINY_DET, "label_smoothing": 0.1, "calib_conf": 0.0}  # conf 0: an untrained model's boxes are scored
    argv = [str(digits_det_yaml), str(tmp_path), json.dumps(args)]
    env = dict(YOLO_CONFIG_DIR=str(tmp_path / "cfg"), YOLO_LS_TEST_WORLD="2", PYTHONPATH=str(ROOT), YOLO_OFFLINE="1",
               MPLBACKEND="Agg")
    proc = run_python(f"import sys\nsys.argv[1:] = {argv!r}\n" + DET_DRIVER, 900, **env)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-8000:]
    run = tmp_path / "ddp"
    ref = json.loads((tmp_path / "ref.json").read_text())
    assert results(run)["epoch"].tolist() == [1] and _csv(run / "calibration.csv")["epoch"].tolist() == [1]
    final = json.loads((run / "calibration" / "final.json").read_text())
    assert sum(ref["bins"]["count"]) > 0  # something was scored
    assert final["bins"]["count"] == ref["bins"]["count"]
    for k in DET_KEYS:
        assert final["metrics"][k] == pytest.approx(ref["calibration"][k], abs=1e-6, rel=1e-6), k
