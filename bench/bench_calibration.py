"""Calibration-metric speed of yolo-ls against torchmetrics (and netcal), as ratios measured interleaved.

    python bench/bench_calibration.py [--device cpu|cuda] [--reps 5] [--json out.json]

For 1M x 10 and 100k x 1000 random probabilities (softmax of seeded random logits; labels drawn from a softer softmax,
so the "model" is over-confident) it times top-label ECE + MCE (15 bins):

* ``yolo-ls ece+mce``: ``yolo_ls.calibration.ece`` and ``mce``, two functional calls (the reference of every ratio);
* ``yolo-ls calibration_errors``: the public one-pass call: the binning ``ece``/``mce`` each do, done once and both
  metrics read from it (same values);
* ``yolo-ls streaming``: ``ClassificationCalibration`` fed in batches of 10k, then ``compute_tensors()``, which
  computes all ten of its metrics (classwise ECE, ACE, Brier, NLL, ... too), so it does more work than the others;
* ``torchmetrics``: ``multiclass_calibration_error`` with ``norm="l1"`` and ``norm="max"`` (two calls, matching our two
  metrics), with ``validate_args=False`` (compute only; the row the target uses) and with its default ``True``;
* ``netcal``: ``netcal.metrics.ECE`` + ``MCE`` on numpy arrays, when netcal is installed.

Values must agree with torchmetrics to 1e-5 (the documented convention difference, a confidence of exactly 1.0, never
occurs with these inputs; the count is printed). Target: torchmetrics (validate_args=False) time / ours >= 1.5.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import environment, interleaved_samples, ratio_table, report  # noqa: E402

N_BINS = 15
STREAM_BATCH = 10_000
SPEEDUP_TARGET = 1.5
ATOL = 1e-5
# (label, N, K, logit scale): the scale spreads the top-label confidences over most of the 15 bins
CASES = (("1M x 10", 1_000_000, 10, 2.0), ("100k x 1000", 100_000, 1000, 4.0))
OURS = "yolo-ls ece+mce"
OURS_AA = "yolo-ls ece+mce again (A/A)"
ONE_PASS = "yolo-ls calibration_errors (ece+mce, one pass)"
STREAM = f"yolo-ls streaming ({STREAM_BATCH // 1000}k batches, all 10 metrics)"
TM = "torchmetrics l1+max (validate_args=False)"
TM_VALIDATE = "torchmetrics l1+max (validate_args=True)"
NETCAL = "netcal ECE+MCE (numpy)"


def make_data(n: int, k: int, scale: float, device: torch.device, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded (N, K) softmax probabilities and (N,) labels drawn from a softer softmax (an over-confident model)."""
    g = torch.Generator().manual_seed(seed)
    probs = torch.empty(n, k)
    labels = torch.empty(n, dtype=torch.long)
    for i in range(0, n, 100_000):  # chunks bound the temporary memory at 100k x 1000
        logits = scale * torch.randn(min(100_000, n - i), k, generator=g)
        probs[i : i + len(logits)] = logits.softmax(1)
        labels[i : i + len(logits)] = torch.multinomial((0.7 * logits).softmax(1), 1, generator=g).squeeze(1)
    return probs.to(device), labels.to(device)


def variants(probs: torch.Tensor, labels: torch.Tensor) -> tuple[dict[str, Callable[[], Any]], dict[str, Any]]:
    """The timed calls, each returning (ece, mce), and a dict of skipped ones with the reason."""
    from torchmetrics.functional.classification import multiclass_calibration_error

    from yolo_ls.calibration import ClassificationCalibration, calibration_errors, ece, mce

    k = probs.shape[1]

    def ours() -> tuple[torch.Tensor, torch.Tensor]:
        return ece(probs, labels, N_BINS), mce(probs, labels, N_BINS)

    def one_pass() -> tuple[torch.Tensor, torch.Tensor]:
        both = calibration_errors(probs, labels, N_BINS)  # one binning pass for both metrics
        return both["ece"], both["mce"]

    def streaming() -> tuple[torch.Tensor, torch.Tensor]:
        cal = ClassificationCalibration(num_classes=k, n_bins=N_BINS, device=probs.device)
        for i in range(0, probs.shape[0], STREAM_BATCH):
            cal.update(probs[i : i + STREAM_BATCH], labels[i : i + STREAM_BATCH])
        out = cal.compute_tensors()
        return out["ece"], out["mce"]

    def tm(validate: bool) -> Callable[[], tuple[torch.Tensor, torch.Tensor]]:
        def call() -> tuple[torch.Tensor, torch.Tensor]:
            return tuple(
                multiclass_calibration_error(probs, labels, k, N_BINS, norm, validate_args=validate)
                for norm in ("l1", "max")
            )  # type: ignore[return-value]

        return call

    fns: dict[str, Callable[[], Any]] = {
        OURS: ours,
        ONE_PASS: one_pass,
        STREAM: streaming,
        TM: tm(False),
        TM_VALIDATE: tm(True),
    }
    skipped: dict[str, Any] = {}
    try:
        from netcal.metrics import ECE, MCE

        p_np, l_np = probs.cpu().numpy(), labels.cpu().numpy()  # converted once, outside the timing

        def netcal() -> tuple[float, float]:
            return ECE(bins=N_BINS).measure(p_np, l_np), MCE(bins=N_BINS).measure(p_np, l_np)

        fns[NETCAL] = netcal
    except ImportError as e:
        skipped[NETCAL] = f"not installed ({e})"
    fns[OURS_AA] = ours
    return fns, skipped


def bench_case(label: str, n: int, k: int, scale: float, device: torch.device, reps: int) -> dict[str, Any]:
    print(f"[{label}] generating {n:,} x {k} probabilities ...", flush=True)
    probs, labels = make_data(n, k, scale, device)
    conf = probs.max(1).values
    fns, skipped = variants(probs, labels)

    print(f"[{label}] checking values (this pass is also the warmup) ...", flush=True)
    values = {name: [float(v) for v in fn()] for name, fn in fns.items()}
    ref = values[OURS]
    diffs = {name: max(abs(a - b) for a, b in zip(v, ref)) for name, v in values.items() if name != OURS}
    n_one = int((conf == 1.0).sum())

    print(f"[{label}] timing {reps} reps of {len(fns)} variants, interleaved ...", flush=True)
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    samples = interleaved_samples(fns, reps=reps, warmup=0, sync=sync)
    times = {name: statistics.median(s) for name, s in samples.items()}

    print(ratio_table(times, OURS, f"[{label}] ECE+MCE, {N_BINS} bins, {reps} reps", samples))
    print(f"  values (ece, mce): ours {ref[0]:.6f}, {ref[1]:.6f}; confidences == 1.0: {n_one}")
    ok_values = True
    for name, d in diffs.items():
        strict = name in (TM, TM_VALIDATE, STREAM, ONE_PASS)
        ok = d <= ATOL or not strict
        ok_values &= ok
        note = "" if strict else " (informational)"
        print(f"  max |diff| vs ours, {name}: {d:.2e}{note}{'' if ok else f'  FAIL (> {ATOL:g})'}")
    for name, why in skipped.items():
        print(f"  skipped {name}: {why}")
    speedup = times[TM] / times[OURS]
    verdict = "OK" if speedup >= SPEEDUP_TARGET else f"MISSED by {100 * (1 - speedup / SPEEDUP_TARGET):.1f}%"
    print(
        f"  speed-up torchmetrics/ours = {speedup:.2f}x: {verdict} (target >= {SPEEDUP_TARGET}); "
        f"with its default validation {times[TM_VALIDATE] / times[OURS]:.2f}x; "
        f"A/A control {times[OURS_AA] / times[OURS]:.3f}"
    )
    return {
        "shape": [n, k],
        "times_s": times,
        "samples_s": samples,
        "values": values,
        "max_abs_diff_vs_ours": diffs,
        "values_ok": ok_values,
        "confidences_equal_to_1": n_one,
        "speedup_vs_torchmetrics": speedup,
        "target": SPEEDUP_TARGET,
        "met": speedup >= SPEEDUP_TARGET,
        "skipped": skipped,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    ap.add_argument("--reps", type=int, default=5, help="timed repetitions per variant (medians are reported)")
    ap.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads on CPU (0: torch's default); ignored on CUDA"
    )
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)
    if args.reps < 5:
        ap.error("--reps must be at least 5")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda but torch.cuda.is_available() is False")
    if device.type == "cpu" and args.threads > 0:
        torch.set_num_threads(args.threads)

    env = environment(str(device))
    print("environment: " + ", ".join(f"{k}={v}" for k, v in env.items()))
    results: dict[str, Any] = {"environment": env, "reps": args.reps, "cases": {}}
    for label, n, k, scale in CASES:
        results["cases"][label] = bench_case(label, n, k, scale, device, args.reps)

    misses = [
        f"{label}: torchmetrics/ours {r['speedup_vs_torchmetrics']:.2f}x < {SPEEDUP_TARGET}"
        for label, r in results["cases"].items()
        if not r["met"]
    ]
    misses += [f"{label}: values differ" for label, r in results["cases"].items() if not r["values_ok"]]
    return report(results, misses, args.json)


if __name__ == "__main__":
    main()
