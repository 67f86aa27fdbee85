"""Shared timing helper for the yolo-ls benchmarks: interleaved medians, so every number can be read as a ratio.

The machines these benchmarks run on are shared (few cores, other jobs), so absolute times drift by tens of percent
over a run. :func:`interleaved` therefore runs the candidates in alternation inside one process (A, B, C, then B, C, A,
...) and reports the median of each; a ratio of two such medians is what the benchmarks compare against their targets.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ("environment", "fmt_ms", "interleaved", "interleaved_samples", "paired_ratios", "ratio_table")


def interleaved_samples(
    fns: dict[str, Callable[[], Any]],
    reps: int = 15,
    warmup: int = 3,
    sync: Callable[[], Any] | None = None,
    number: int = 1,
) -> dict[str, list[float]]:
    """Time each function ``reps`` times, alternating them, and return every sample (seconds per call).

    Args:
        fns: Name -> zero-argument callable. Dict order is the order of the first repetition.
        reps: Timed repetitions per function (after warmup).
        warmup: Untimed repetitions per function, also interleaved, run first.
        sync: Called before starting and before stopping the clock (e.g. ``torch.cuda.synchronize``), so
            asynchronous device work is counted in the call that queued it.
        number: Calls per sample; a sample is their total time divided by ``number`` (use it for very short calls).

    Returns:
        Name -> list of ``reps`` per-call times in seconds, in repetition order.
    """
    if reps < 1 or warmup < 0 or number < 1:
        raise ValueError(f"need reps >= 1, warmup >= 0, number >= 1, got {reps}, {warmup}, {number}")
    names = list(fns)
    samples: dict[str, list[float]] = {n: [] for n in names}
    gc_was_enabled = gc.isenabled()
    try:
        for rep in range(warmup + reps):
            shift = rep % len(names)
            for name in names[shift:] + names[:shift]:  # rotate the order every repetition
                fn = fns[name]
                gc.collect()
                gc.disable()
                if sync is not None:
                    sync()
                t0 = time.perf_counter()
                for _ in range(number):
                    fn()
                if sync is not None:
                    sync()
                dt = (time.perf_counter() - t0) / number
                if gc_was_enabled:
                    gc.enable()
                if rep >= warmup:
                    samples[name].append(dt)
    finally:
        if gc_was_enabled:
            gc.enable()
    return samples


def interleaved(
    fns: dict[str, Callable[[], Any]],
    reps: int = 15,
    warmup: int = 3,
    sync: Callable[[], Any] | None = None,
    number: int = 1,
) -> dict[str, float]:
    """Median seconds per call of each function, timed in alternation (see :func:`interleaved_samples`)."""
    samples = interleaved_samples(fns, reps=reps, warmup=warmup, sync=sync, number=number)
    return {name: statistics.median(s) for name, s in samples.items()}


def fmt_ms(seconds: float) -> str:
    """Format seconds as milliseconds with 3 significant-ish digits."""
    ms = seconds * 1e3
    return f"{ms:.3f}" if ms < 10 else f"{ms:.2f}" if ms < 100 else f"{ms:.1f}"


def paired_ratios(samples: dict[str, list[float]], name: str, ref: str) -> tuple[float, float, float]:
    """Median, 25th and 75th percentiles of the per-repetition ratios ``samples[name][i] / samples[ref][i]``.

    Repetition ``i`` of every function ran back to back, so these paired ratios cancel slow drift of the machine; their
    spread, and an A/A control (the reference timed twice), show how far a ratio can be trusted.
    """
    r = sorted(a / b for a, b in zip(samples[name], samples[ref]))
    if len(r) < 2:
        return r[0], r[0], r[0]
    q = statistics.quantiles(r, n=4, method="inclusive")
    return statistics.median(r), q[0], q[2]


def ratio_table(
    times: dict[str, float], ref: str, title: str = "", samples: dict[str, list[float]] | None = None
) -> str:
    """A plain-text table of median times and the ratio of medians against ``times[ref]``.

    With ``samples`` (from :func:`interleaved_samples`) a last column gives the median and interquartile range of the
    paired per-repetition ratios.
    """
    width = max(len(n) for n in times) + 2
    lines = [title] if title else []
    head = f"  {'name':<{width}}{'median ms':>11}{'ratio':>8}"
    lines.append(head + ("   paired ratio [IQR]" if samples else "") + f"   (ratios vs '{ref}')")
    for name, t in times.items():
        line = f"  {name:<{width}}{fmt_ms(t):>11}{t / times[ref]:>8.3f}"
        if samples:
            med, lo, hi = paired_ratios(samples, name, ref)
            line += f"   {med:.3f} [{lo:.3f}, {hi:.3f}]"
        lines.append(line)
    return "\n".join(lines)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: str = "cpu") -> dict[str, Any]:
    """Where the numbers came from: device name, library versions, thread counts."""
    import torch

    try:
        import ultralytics

        ul_version = ultralytics.__version__
    except ImportError:
        ul_version = None
    dev = str(device)
    if dev.startswith("cuda") and torch.cuda.is_available():
        name = torch.cuda.get_device_name(torch.device(dev))
    else:
        name = _cpu_model()
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count()
    return {
        "device": dev,
        "device_name": name,
        "cpu": _cpu_model(),
        "cpus_available": cpus,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda if dev.startswith("cuda") else None,
        "ultralytics": ul_version,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def report(results: dict[str, Any], misses: list[str], json_path: Path | None) -> dict[str, Any]:
    """Print the one-line target summary and, when asked, write every result (raw samples included) as JSON."""
    print("summary: " + ("all targets met" if not misses else "MISSED: " + "; ".join(misses)))
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(results, indent=2, default=str))
        print(f"wrote {json_path}")
    return results
