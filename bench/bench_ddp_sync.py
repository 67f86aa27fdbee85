"""What one validation's cross-rank calibration step costs under DDP: bytes moved and time, vs K, bins, world size.

    python bench/bench_ddp_sync.py [--worlds 2 4] [--reps 15] [--n-val 10000] [--json out.json]

Each configuration starts ``world`` CPU processes in a gloo group (``torch.multiprocessing.spawn``). Every rank fills
the accumulators the calibration callbacks use with its share of a ``--n-val`` val set (classification: N/world
softmax rows of K classes; detection: 2000 predictions per rank), then the step the callbacks run once per validation
(in the validator's ``gather_stats``) is timed: ``ClassificationCalibration.sync()`` (one all_reduce of the sums, an
all_gather of the per-rank lengths and one of the top-1 confidences for ``ace``) and ``DetectionCalibration.sync()``
(one all_reduce). A sample is the slowest rank's time (all_reduce MAX), on a fresh copy of the filled accumulator.

Reference, interleaved with every candidate: one all_reduce of a single float64 (the latency floor of a collective on
this machine), timed twice (A/A control); candidates are reported as ratios of medians against it.

Bytes: what each rank contributes per validation (the all_reduce payload; the all_gather payloads). NCCL is not run
here (one GPU at most): its cost is computed with the ring formulas ``all_reduce ≈ 2(W-1)/W · S / B + 2(W-1)·α`` and
``all_gather ≈ (W-1)/W · S_total / B + (W-1)·α`` for a stated bus bandwidth ``B`` and per-step latency ``α``.
The final epoch's temperature fit also gathers the val probabilities (N x (K+1) float32, to rank 0), once per run;
its bytes are printed, not timed.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

KS = (10, 100, 1000)
BINS = (15, 100)
DET_PER_RANK = 2000
NCCL_BW = 50e9  # bytes/s: a conservative in-node bus bandwidth (NVLink-class links do several times more)
NCCL_ALPHA = 10e-6  # s per ring step


def cls_bytes(k: int, b: int, n_rank: int, world: int) -> dict[str, int]:
    """Per-rank bytes of ClassificationCalibration.sync: the float64 sums, the length, the padded top-1 pairs."""
    return {"all_reduce": 8 * (3 * b + 2 * k * b + 6), "all_gather": 8 + 2 * 8 * n_rank, "world": world}


def det_bytes(k: int, b: int, world: int) -> dict[str, int]:
    """Per-rank bytes of DetectionCalibration.sync: one float64 all_reduce of the sums."""
    return {"all_reduce": 8 * (3 * b + 3 * k * b), "all_gather": 0, "world": world}


def nccl_seconds(nbytes: dict[str, int]) -> float:
    """Ring-algorithm estimate of the same collectives on NCCL (bandwidth NCCL_BW, latency NCCL_ALPHA per step)."""
    w = nbytes["world"]
    t = 2 * (w - 1) / w * nbytes["all_reduce"] / NCCL_BW + 2 * (w - 1) * NCCL_ALPHA
    if nbytes["all_gather"]:  # two all_gathers: the lengths (latency only) and the top-1 pairs
        t += (w - 1) * nbytes["all_gather"] / NCCL_BW + 2 * (w - 1) * NCCL_ALPHA
    return t


def _worker(rank: int, world: int, init: str, n_val: int, reps: int, out: str) -> None:
    from yolo_ls.calibration import ClassificationCalibration, DetectionCalibration

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method="file://" + init, rank=rank, world_size=world)
    g = torch.Generator().manual_seed(rank)
    n_rank = n_val // world
    filled = {}
    for k in KS:
        probs = (3 * torch.randn(n_rank, k, generator=g)).softmax(1)
        labels = torch.randint(0, k, (n_rank,), generator=g)
        conf, tp = torch.rand(DET_PER_RANK, generator=g), torch.rand(DET_PER_RANK, generator=g) < 0.5
        cls = torch.randint(0, k, (DET_PER_RANK,), generator=g)
        for b in BINS:
            c = ClassificationCalibration(k, b)
            c.update(probs, labels)
            d = DetectionCalibration(k, b, 0.0)
            d.update(conf, tp, cls)
            filled[f"cls K={k} bins={b}"], filled[f"det K={k} bins={b}"] = c, d

    def floor() -> None:
        dist.all_reduce(torch.zeros(1, dtype=torch.float64))

    names = ["ref: all_reduce(1 float64)", "A/A: all_reduce(1 float64)", *filled]
    samples: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(3 + reps):  # 3 warm-up rounds, then interleaved, rotating order
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            acc = filled.get(name)
            fresh = copy.deepcopy(acc) if acc is not None else None  # a sync runs once per accumulator
            dist.barrier()
            t0 = time.perf_counter()
            fresh.sync() if fresh is not None else floor()
            dt = torch.tensor([time.perf_counter() - t0], dtype=torch.float64)
            dist.all_reduce(dt, op=dist.ReduceOp.MAX)  # the slowest rank's time
            if rep >= 3:
                samples[name].append(float(dt))
    if rank == 0:
        Path(out).write_text(json.dumps({"samples": samples, "n_rank": n_rank}))
    dist.destroy_process_group()


def run(world: int, n_val: int, reps: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.json")
        mp.spawn(_worker, args=(world, os.path.join(tmp, "init"), n_val, reps, out), nprocs=world, join=True)
        return json.loads(Path(out).read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worlds", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--n-val", type=int, default=10_000)
    parser.add_argument("--json", type=Path, default=None)
    a = parser.parse_args()
    print(f"CPU: {os.cpu_count()} cores (shared with other jobs while measuring); torch {torch.__version__}; gloo")
    print(f"val set {a.n_val} images (classification), {DET_PER_RANK} kept predictions per rank (detection); "
          f"NCCL estimate: bus {NCCL_BW / 1e9:g} GB/s, {NCCL_ALPHA * 1e6:g} us per ring step\n")
    report = []
    for world in a.worlds:
        res = run(world, a.n_val, a.reps)
        med = {k: statistics.median(v) for k, v in res["samples"].items()}
        ref = med["ref: all_reduce(1 float64)"]
        print(f"world={world}  ref (1-float64 all_reduce) median {ref * 1e3:.3f} ms  "
              f"A/A ratio {med['A/A: all_reduce(1 float64)'] / ref:.2f}")
        print(f"  {'step':<22}{'all_reduce B':>14}{'all_gather B':>14}{'gloo ms':>10}{'x ref':>8}{'NCCL est ms':>13}")
        for name, t in med.items():
            if name.startswith(("ref", "A/A")):
                continue
            task, kk, bb = name.split()
            k, b = int(kk.split("=")[1]), int(bb.split("=")[1])
            nb = cls_bytes(k, b, res["n_rank"], world) if task == "cls" else det_bytes(k, b, world)
            est = nccl_seconds(nb)
            print(f"  {name:<22}{nb['all_reduce']:>14,}{nb['all_gather']:>14,}{t * 1e3:>10.3f}{t / ref:>8.2f}"
                  f"{est * 1e3:>13.3f}")
            report.append({"world": world, "step": name, **nb, "gloo_s": t, "ratio_ref": t / ref, "nccl_est_s": est})
        n, k = a.n_val, max(KS)
        print(f"  final epoch only, temperature fit: gather of N x (K+1) float32 to rank 0 = {n * (k + 1) * 4:,} B in "
              f"all at K={k} (rank 0 receives {(world - 1) * (n // world) * (k + 1) * 4:,} B)\n")
    if a.json:
        a.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
