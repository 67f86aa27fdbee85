"""Calibration speed of yolo-ls against torchmetrics, as ratios measured interleaved, plus growth with the val size.

    python bench/bench_calibration.py [--device cpu|cuda] [--reps 5] [--json out.json]

1. For 1M x 10 and 100k x 1000 seeded probabilities (softmax of random logits; labels drawn from a softer softmax, so
   the "model" is over-confident) every row is timed against **torchmetrics' top-label ECE alone**
   (``multiclass_calibration_error(norm="l1", validate_args=False)``, one call), with an A/A control (that call timed
   twice):

   * ``yolo-ls accumulator``: ``ClassificationCalibration`` fed in batches of 10k, then ``compute_tensors()``: all ten
     metrics (ECE, MCE, ACE, classwise ECE, Brier, NLL, accuracy, confidence, overconfidence, entropy). Targets:
     <= 1.0x torchmetrics at 1M x 10, <= 1.5x at 100k x 1000, with the same ECE (1e-5);
   * ``yolo-ls ece`` and ``calibration_errors`` (ECE + MCE from one binning pass), for reference.

2. Growth: the accumulator and ``fit_temperature`` on a val set of 10k x 100 and on 10x that (100k x 100), timed
   interleaved; a ratio near 10 is linear growth.

Values: torchmetrics' float32 ``linspace`` edges differ from the exact edges only at values that sit on an edge, which
random softmax outputs never do, so the ECEs must agree to 1e-5 (the number of confidences equal to 1.0, the other
documented difference, is printed).
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
TARGETS = {"1M x 10": 1.0, "100k x 1000": 1.5}
ATOL = 1e-5
# (label, N, K, logit scale): the scale spreads the top-label confidences over most of the 15 bins
CASES = (("1M x 10", 1_000_000, 10, 2.0), ("100k x 1000", 100_000, 1000, 4.0))
GROWTH = ((10_000, 100), (100_000, 100))  # a val set and 10x it
TM = "torchmetrics top-label ECE (l1, validate_args=False)"
TM_AA = "torchmetrics again (A/A)"
STREAM = f"yolo-ls accumulator ({STREAM_BATCH // 1000}k batches, all 10 metrics)"
ECE = "yolo-ls ece"
ONE_PASS = "yolo-ls calibration_errors (ece+mce)"


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


def accumulate(probs: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """All ten metrics of ``ClassificationCalibration`` fed in ``STREAM_BATCH`` batches (0-d tensors)."""
    from yolo_ls.calibration import ClassificationCalibration

    cal = ClassificationCalibration(num_classes=probs.shape[1], n_bins=N_BINS, device=probs.device)
    for i in range(0, probs.shape[0], STREAM_BATCH):
        cal.update(probs[i : i + STREAM_BATCH], labels[i : i + STREAM_BATCH])
    return cal.compute_tensors()


BASELINE = "yolo-ls accumulator, baseline CPU kernels (--baseline-kernels)"
_baseline_module: Any = None  # another version of yolo_ls/calibration/_cpu.py, loaded by --baseline-kernels


def load_baseline_kernels(path: Path) -> None:
    """Load another ``_cpu.py`` (i.e. ``git show REV:yolo_ls/calibration/_cpu.py``) to time it in the same run."""
    import importlib.util

    global _baseline_module
    spec = importlib.util.spec_from_file_location("yolo_ls_cpu_baseline", path)
    _baseline_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(_baseline_module)


def accumulate_with(kernels: Any, probs: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """:func:`accumulate` with the accumulator and metrics modules calling ``kernels`` instead of their ``_cpu``."""
    from yolo_ls.calibration import accumulator, metrics

    saved = accumulator._cpu, metrics._cpu
    accumulator._cpu = metrics._cpu = kernels
    try:
        return accumulate(probs, labels)
    finally:
        accumulator._cpu, metrics._cpu = saved


def variants(probs: torch.Tensor, labels: torch.Tensor) -> dict[str, Callable[[], Any]]:
    """The timed calls, each returning its ECE (a 0-d tensor)."""
    from torchmetrics.functional.classification import multiclass_calibration_error

    from yolo_ls.calibration import calibration_errors, ece

    k = probs.shape[1]

    def tm() -> torch.Tensor:
        return multiclass_calibration_error(probs, labels, k, N_BINS, "l1", validate_args=False)

    fns = {
        TM: tm,
        STREAM: lambda: accumulate(probs, labels)["ece"],
        ECE: lambda: ece(probs, labels, N_BINS),
        ONE_PASS: lambda: calibration_errors(probs, labels, N_BINS)["ece"],
        TM_AA: tm,
    }
    if _baseline_module is not None:
        fns[BASELINE] = lambda: accumulate_with(_baseline_module, probs, labels)["ece"]
    return fns


def bench_case(label: str, n: int, k: int, scale: float, device: torch.device, reps: int) -> dict[str, Any]:
    print(f"[{label}] generating {n:,} x {k} probabilities ...", flush=True)
    probs, labels = make_data(n, k, scale, device)
    n_one = int((probs.max(1).values == 1.0).sum())
    fns = variants(probs, labels)

    print(f"[{label}] checking values (this pass is also the warmup) ...", flush=True)
    values = {name: float(fn()) for name, fn in fns.items()}
    diffs = {name: abs(v - values[TM]) for name, v in values.items() if name != TM}

    print(f"[{label}] timing {reps} reps of {len(fns)} variants, interleaved ...", flush=True)
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    samples = interleaved_samples(fns, reps=reps, warmup=0, sync=sync)
    times = {name: statistics.median(s) for name, s in samples.items()}

    title = f"[{label}] {N_BINS} bins, {reps} reps; ratios are time / torchmetrics' time"
    print(ratio_table(times, TM, title, samples))
    ok_values = all(d <= ATOL for d in diffs.values())
    print(f"  ECE: torchmetrics {values[TM]:.6f}; max |diff| of the others {max(diffs.values()):.2e}"
          f"{'' if ok_values else f'  FAIL (> {ATOL:g})'}; confidences == 1.0: {n_one}")
    ratio, aa, target = times[STREAM] / times[TM], times[TM_AA] / times[TM], TARGETS[label]
    verdict = "OK" if ratio <= target else f"MISSED by {100 * (ratio / target - 1):.1f}%"
    print(f"  accumulator (all metrics) / torchmetrics ECE = {ratio:.3f}: {verdict} (target <= {target}); "
          f"A/A control {aa:.3f}")
    if BASELINE in times:
        print(f"  accumulator / baseline kernels = {times[STREAM] / times[BASELINE]:.3f} "
              f"(baseline / torchmetrics {times[BASELINE] / times[TM]:.3f})")
    return {
        "shape": [n, k],
        "times_s": times,
        "samples_s": samples,
        "ece_values": values,
        "abs_diff_vs_torchmetrics": diffs,
        "values_ok": ok_values,
        "confidences_equal_to_1": n_one,
        "accumulator_over_torchmetrics": ratio,
        "aa_control": aa,
        "target": target,
        "met": ratio <= target,
    }


def bench_growth(device: torch.device, reps: int) -> dict[str, Any]:
    """Accumulator and temperature fit on a val set and on 10x it, interleaved."""
    from yolo_ls.calibration import fit_temperature

    data = {f"{n // 1000}k x {k}": make_data(n, k, 3.0, device, seed=1) for n, k in GROWTH}
    fns: dict[str, Callable[[], Any]] = {}
    for name, (p, y) in data.items():
        logits = p.clamp_min(1e-12).log()
        fns[f"accumulator {name}"] = lambda p=p, y=y: accumulate(p, y)
        fns[f"fit_temperature {name}"] = lambda z=logits, y=y: fit_temperature(z, y, is_probs=False)
    print(f"[growth] timing {reps} reps of {len(fns)} calls, interleaved ...", flush=True)
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    samples = interleaved_samples(fns, reps=reps, warmup=1, sync=sync)
    times = {name: statistics.median(s) for name, s in samples.items()}
    small, big = list(data)
    print(ratio_table(times, f"accumulator {small}", "[growth] val set and 10x it", samples))
    growth = {w: times[f"{w} {big}"] / times[f"{w} {small}"] for w in ("accumulator", "fit_temperature")}
    print("  growth for 10x the samples: " + ", ".join(f"{w} {g:.2f}x" for w, g in growth.items()))
    return {"times_s": times, "samples_s": samples, "growth_for_10x": growth}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    ap.add_argument("--reps", type=int, default=5, help="timed repetitions per variant (medians are reported)")
    ap.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads on CPU (0: torch's default); ignored on CUDA"
    )
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--baseline-kernels", type=Path, default=None,
                    help="another version of yolo_ls/calibration/_cpu.py, timed in the same run (an A/B row)")
    args = ap.parse_args(argv)
    if args.baseline_kernels is not None:
        load_baseline_kernels(args.baseline_kernels)
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
    results["growth"] = bench_growth(device, args.reps)

    misses = [
        f"{label}: accumulator/torchmetrics {r['accumulator_over_torchmetrics']:.3f} > {r['target']}"
        for label, r in results["cases"].items()
        if not r["met"]
    ]
    misses += [f"{label}: values differ" for label, r in results["cases"].items() if not r["values_ok"]]
    return report(results, misses, args.json)


if __name__ == "__main__":
    main()
