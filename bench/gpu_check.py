"""One command that checks and times yolo-ls on a GPU, and leaves its numbers behind (issue #25).

    python bench/gpu_check.py [--device cuda|cuda:N|cpu] [--quick|--full] [--budget-s 480] [--only a,b] [--skip a,b]
                              [--out runs/gpu_check/gpu_check.json] [--compile-backend inductor]

The checks run in order, each wrapped so that one failure does not stop the others, within a time budget (a check
whose estimate no longer fits is skipped, saying so). Each returns a status (pass, fail or skipped), a reason when not
passed, a one-line summary and its figures:

``cuda_tests``
    ``pytest -m cuda`` on the loss and calibration test files: the CUDA case of every device-parametrised test.
``host_syncs``
    Under ``torch.cuda.set_sync_debug_mode("error")``: training steps (forward, backward, gradient clipping, optimizer
    step) of yolo11n-cls with the smoothed loss and a per-iteration ε schedule, also under autocast with a GradScaler,
    and of yolo11n/yolo26n with the smoothed detection loss, each against the same stock step (``compare_syncs`` of
    bench_losses.py: if stock is sync-free the plugin must be too, else the plugin may add none); and on their own,
    strictly: the smoothed BCE term on real assigner targets, the ε schedule step, and the calibration accumulators'
    ``update`` (float32 and float16, folds included). A synchronising call fails the check and is named (file:line).
``recompile``
    ``torch.compile`` of a smoothed classification + detection loss, ε changed every step: one graph, no recompile.
``timing_cls_loss`` / ``timing_det_loss`` / ``timing_calibration``
    Ratios against stock timed interleaved in this process, with an A/A control and ``torch.cuda.synchronize()``
    around each timed block, in float32 and under AMP: the classification loss (B=256, K=1000), the detection loss of
    yolo11n and yolo26n (640 px, batch 16, nc=80), and the accumulator against torchmetrics' ECE (1M x 10, 100k x
    1000; float16 probabilities for AMP). A missed speed target is reported (summary and ``targets_missed``), not a
    failure; wrong values are a failure.
``training``
    yolo11n-cls on digits and yolo11n on digits-det, 3 epochs, AMP on: stock, yolo-ls defaults (ε=0.1) and stock again
    (A/A), each variant in a fresh subprocess, in that order. The whole-run ratio (yolo-ls against the mean of the two
    stock runs, so a linear drift of the machine cancels); ε (``label_smoothing``) and every ``calib/*`` column in
    results.csv; the run's ``calibration/final.json`` against a plain ``val()`` of its best.pt.
``multi_gpu``
    With two or more GPUs: the yolo-ls trainings with ``device=0,1`` (detection boxes scored from ``calib_conf=0``),
    and their ``final.json`` calibration sums against a one-GPU ``val()`` of the same best.pt.

On a machine without CUDA, ``--device cpu`` (implies ``--quick``: tiny shapes, 1 epoch, few repetitions) runs the same
code on the CPU wherever it can: the CUDA test cases, the sync debug mode, the CUDA timings, AMP and multi-GPU report
skipped, each with a one-line reason (the training steps of ``host_syncs`` and the timing code still run once at tiny
sizes; their figures are no measurements). ``tests/test_gpu_check.py`` runs that dry run. The script writes ``--out``
(JSON) and ``summary.txt`` next to it, prints the summary, and exits 1 if a check failed.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import itertools
import json
import logging
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("YOLO_OFFLINE", "1")  # a GPU machine may have no network: nothing here downloads
os.environ.setdefault("MPLBACKEND", "Agg")

import torch  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]  # the bench helpers, and this checkout's yolo_ls (not an installed copy)

# ---- every yolo-ls and bench import, in one place -------------------------------------------------------------------
import bench_calibration as bench_cal  # noqa: E402
import bench_losses as bench_loss  # noqa: E402
from _timing import environment, interleaved_samples, paired_ratios, ratio_table  # noqa: E402
from bench_training import DEFAULT, STOCK, STOCK_AA, VARIANTS  # noqa: E402

import yolo_ls  # noqa: E402
from yolo_ls.calibration import (  # noqa: E402
    CLASSIFICATION_METRICS,
    DETECTION_METRICS,
    ClassificationCalibration,
    DetectionCalibration,
)
from yolo_ls.core.losses import LabelSmoothingState, SmoothedBCEWithLogits, SmoothedClassificationLoss  # noqa: E402
from yolo_ls.core.schedules import build_schedule, fractional_epoch  # noqa: E402
from yolo_ls.datasets import digits, digits_detection  # noqa: E402
from yolo_ls.engine.compat import has_model_yaml  # noqa: E402
from yolo_ls.engine.inject import install_smoothing  # noqa: E402

# ---------------------------------------------------------------------------------------------------------------------
CLS_YAML, DET_YAMLS = "yolo11n-cls.yaml", ("yolo11n.yaml", "yolo26n.yaml")
TEST_FILES = ("tests/test_losses.py", "tests/test_detection_losses.py", "tests/test_calibration_metrics.py")
PASS, FAIL, SKIP = "pass", "fail", "skipped"
RESULT_TAG = "GPU_CHECK_RESULT "

# Sizes: the full run (a GPU) and --quick (the CPU dry run, or a fast smoke run on a GPU).
FULL = {
    "cls_loss": (256, 1000), "det_loss": (16, 640, 80), "loss_reps": (15, 20), "det_reps": (10, 3),
    "calib_cases": bench_cal.CASES, "calib_reps": 5,
    "sync_cls": (32, 64, 1000), "sync_det": (4, 320, 80), "sync_acc": (4096, 1000, 20),
    "compile": (256, 1000, 80, 64), "compile_steps": 8,
    "epochs": 3, "cls_train": {"imgsz": 32, "batch": 64}, "det_train": {"imgsz": 128, "batch": 16},
    "det_data": {"imgsz": 128}, "train_variants": (STOCK, DEFAULT, STOCK_AA),
}
QUICK = {
    "cls_loss": (64, 100), "det_loss": (2, 64, 10), "loss_reps": (3, 1), "det_reps": (3, 1),
    "calib_cases": (("1M x 10", 20_000, 10, 2.0), ("100k x 1000", 2_000, 100, 4.0)), "calib_reps": 3,
    "sync_cls": (4, 32, 10), "sync_det": (2, 64, 10), "sync_acc": (512, 10, 3),
    "compile": (32, 10, 4, 16), "compile_steps": 5,
    "epochs": 1, "cls_train": {"imgsz": 32, "batch": 64, "fraction": 0.3},
    "det_train": {"imgsz": 64, "batch": 16, "mosaic": 0.0},
    "det_data": {"imgsz": 64, "n_train": 48, "n_val": 16}, "train_variants": (STOCK, DEFAULT),
}


@dataclass
class Ctx:
    """What every check needs: the device, the sizes, the work folder and the clock."""

    device: torch.device
    quick: bool
    out_dir: Path
    work: Path
    budget_s: float
    compile_backend: str
    t0: float = field(default_factory=time.perf_counter)

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def size(self) -> dict[str, Any]:
        return QUICK if self.quick else FULL

    @property
    def amp_dtype(self) -> torch.dtype:
        """The autocast dtype of an AMP training here: float16 on CUDA (Ultralytics' choice), bfloat16 on the CPU."""
        return torch.float16 if self.cuda else torch.bfloat16

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def remaining(self) -> float:
        return self.budget_s - self.elapsed()

    def log(self, msg: str) -> None:
        print(f"[gpu-check {self.elapsed():6.1f}s] {msg}", flush=True)

    def env(self, **extra: str) -> dict[str, str]:
        """Environment of a subprocess: this checkout first on the path, a settings folder of its own, offline."""
        path = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
        env = {**os.environ, "PYTHONPATH": path, "YOLO_CONFIG_DIR": str(self.work / "cfg"), "YOLO_OFFLINE": "1",
               "MPLBACKEND": "Agg"}
        if not self.cuda:
            env["CUDA_VISIBLE_DEVICES"] = ""  # a CPU run stays on the CPU even on a GPU machine
        return {**env, **extra}

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)

    @property
    def yolo_device(self) -> str:
        """The device as an Ultralytics ``device=`` argument."""
        return "cpu" if not self.cuda else str(self.device.index or 0)


def result(status: str, summary: str = "", reason: str = "", **figures: Any) -> dict[str, Any]:
    """A check's outcome."""
    return {"status": status, "summary": summary, "reason": reason, "figures": figures}


def _autocast(ctx: Ctx, fn: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        with torch.autocast(ctx.device.type, dtype=ctx.amp_dtype):
            return fn()

    return run


def _ratios(times: dict[str, float], samples: dict[str, list[float]], ref: str) -> dict[str, Any]:
    """Ratio of medians and the paired median [IQR] of every row against ``ref``."""
    return {n: {"ratio": t / times[ref], "paired": list(paired_ratios(samples, n, ref))} for n, t in times.items()}


# ------------------------------------------------------------------------------------------------------ cuda_tests
def check_cuda_tests(ctx: Ctx) -> dict[str, Any]:
    """The CUDA case of every device-parametrised loss and calibration test (``pytest -m cuda``)."""
    xml = ctx.out_dir / "cuda_tests.xml"
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider", f"--junitxml={xml}",
           *TEST_FILES]
    proc = subprocess.run(cmd, cwd=ROOT, env=ctx.env(), capture_output=True, text=True,
                          timeout=max(60.0, ctx.remaining()))
    if not xml.is_file():
        return result(FAIL, reason=f"pytest wrote no report (exit {proc.returncode}): {proc.stdout[-500:]}")
    cases = ET.parse(xml).getroot().iter("testcase")
    outcome: dict[str, list[str]] = {"passed": [], "failed": [], "skipped": []}
    for case in cases:
        name = f"{case.get('classname')}::{case.get('name')}"
        kind = ("failed" if case.find("failure") is not None or case.find("error") is not None
                else "skipped" if case.find("skipped") is not None else "passed")
        outcome[kind].append(name)
    counts = {k: len(v) for k, v in outcome.items()}
    figures = {"counts": counts, "failed": outcome["failed"], "exit_code": proc.returncode, "files": list(TEST_FILES)}
    line = f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"
    if sum(counts.values()) == 0:
        return result(FAIL, reason="no test case is marked cuda: the device parametrisation is gone", **figures)
    if counts["failed"] or proc.returncode not in (0, 5):
        return result(FAIL, line, reason=f"{line}: {', '.join(outcome['failed'][:5])}", **figures)
    if not ctx.cuda:
        return result(SKIP, line, reason=f"no CUDA device: {counts['skipped']} CUDA test cases collected, all skipped",
                      **figures)
    if counts["skipped"]:
        return result(FAIL, line, reason=f"{line}: CUDA cases skipped on a CUDA machine", **figures)
    return result(PASS, f"{line} ({', '.join(TEST_FILES)})", **figures)


# ------------------------------------------------------------------------------------------------------ host_syncs
def _per_iteration_eps(state: LabelSmoothingState, steps_per_epoch: int = 2, epochs: int = 10) -> Callable[[], float]:
    """A closure setting the next step's ε from a cosine schedule with a 1-epoch warmup, ``ls_per_iter`` style: a new
    value every step for the first ``steps_per_epoch * (epochs - 1)`` steps."""
    schedule = build_schedule("cosine", 0.1, epochs, final=0.0, warmup_epochs=1)
    counter = itertools.count()

    def step() -> float:
        i = next(counter) % (steps_per_epoch * epochs)
        eps = schedule(fractional_epoch(i // steps_per_epoch, i % steps_per_epoch, steps_per_epoch, True))
        state.set_(eps)
        return eps

    return step


def _train_step(ctx: Ctx, model: torch.nn.Module, batch: dict[str, torch.Tensor], set_eps: Callable[[], Any] | None,
                amp: bool, acc: ClassificationCalibration | None = None) -> Callable[[], None]:
    """One training step as Ultralytics' trainer takes it: (ε), forward + loss under autocast, backward (scaled
    with AMP on CUDA), gradient clipping, optimizer step; optionally the val accumulator fed with the logits."""
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, nesterov=True)
    scaler = torch.amp.GradScaler("cuda") if amp and ctx.cuda else None

    def step() -> None:
        if set_eps is not None:
            set_eps()
        with torch.autocast(ctx.device.type, dtype=ctx.amp_dtype, enabled=amp):
            preds = model(batch["img"])
            loss, _ = model.loss(batch, preds)
        opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss.sum()).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=10.0)
            scaler.step(opt)
            scaler.update()
        else:
            loss.sum().backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=10.0)
            opt.step()
        if acc is not None:
            acc.update(preds.detach().float().softmax(1), batch["cls"])

    return step


def _cls_models(ctx: Ctx, b: int, imgsz: int, k: int, amp: bool) -> tuple[Callable[[], None], Callable[[], None]]:
    """Stock and plugin yolo11n-cls training steps on the same random batch (same initial weights)."""
    from ultralytics.nn.tasks import ClassificationModel

    g = torch.Generator().manual_seed(0)
    batch = {"img": torch.rand(b, 3, imgsz, imgsz, generator=g).to(ctx.device),
             "cls": torch.randint(0, k, (b,), generator=g).to(ctx.device)}
    steps = []
    for plugin in (False, True):
        torch.manual_seed(0)
        model = ClassificationModel(CLS_YAML, nc=k, verbose=False).to(ctx.device).train()
        if not plugin:
            steps.append(_train_step(ctx, model, batch, None, amp))
            continue
        state = LabelSmoothingState(0.0, ctx.device)
        install_smoothing(model, state, task="classify", mode="uniform", num_classes=k)
        acc = ClassificationCalibration(k, device=ctx.device)
        steps.append(_train_step(ctx, model, batch, _per_iteration_eps(state), amp, acc))
    return steps[0], steps[1]


def _det_models(ctx: Ctx, yaml: str, b: int, imgsz: int, nc: int) -> tuple[Callable[[], None], Callable[[], None]]:
    """Stock and plugin (``ls_mode=fg``) detection training steps on the same random batch."""
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.utils import DEFAULT_CFG

    batch = bench_loss.detection_batch(ctx.device, b=b, imgsz=imgsz, nc=nc)
    steps = []
    for plugin in (False, True):
        torch.manual_seed(0)
        model = DetectionModel(yaml, nc=nc, verbose=False).to(ctx.device).train()
        model.args = get_cfg(DEFAULT_CFG)
        if not plugin:
            model.criterion = model.init_criterion()
            steps.append(_train_step(ctx, model, batch, None, False))
            continue
        state = LabelSmoothingState(0.0, ctx.device)
        install_smoothing(model, state, task="detect", mode="fg", num_classes=nc)
        steps.append(_train_step(ctx, model, batch, _per_iteration_eps(state), False))
    return steps[0], steps[1]


def _plugin_only_steps(ctx: Ctx) -> dict[str, Callable[[], Any]]:
    """The plugin's own code on its own: must be sync-free whatever stock does."""
    n, k, batches = ctx.size["sync_acc"]
    g = torch.Generator().manual_seed(1)
    probs = (2 * torch.randn(n, k, generator=g)).softmax(1).to(ctx.device)
    labels = torch.randint(0, k, (n,), generator=g).to(ctx.device)
    conf = torch.rand(n, generator=g).to(ctx.device)
    tp = (torch.rand(n, 10, generator=g) < 0.5).to(ctx.device)
    pred_cls = torch.randint(0, 10, (n,), generator=g).to(ctx.device)
    # enough batches to pass FOLD_SAMPLES at the full size, so the fold's kernels run under the check too
    fold = max(1, -(-ClassificationCalibration.FOLD_SAMPLES // n)) if not ctx.quick else batches

    def accumulate(dtype: torch.dtype) -> Callable[[], None]:
        acc = ClassificationCalibration(k, device=ctx.device)
        p = probs.to(dtype)
        return lambda: [acc.update(p, labels) for _ in range(fold)]

    det_acc = DetectionCalibration(10, device=ctx.device)
    state = LabelSmoothingState(0.0, ctx.device)
    SmoothedClassificationLoss(state, k)  # registers its ε-derived terms, which set_ then refreshes
    b, imgsz, nc = ctx.size["sync_det"]
    stock, plugin, preds, batch, _, _ = bench_loss.detection_setup(DET_YAMLS[0], ctx.device, b=b, imgsz=imgsz, nc=nc)
    bce = bench_loss.bce_steps(stock, plugin, preds, batch)["plugin fg eps=0.1"]
    return {
        "ε schedule step (cosine, per iteration)": _per_iteration_eps(state),
        "SmoothedBCEWithLogits fwd+bwd on assigner targets": bce,
        f"ClassificationCalibration.update x{fold} float32 ({n}x{k})": accumulate(torch.float32),
        f"ClassificationCalibration.update x{fold} float16 ({n}x{k})": accumulate(torch.float16),
        f"DetectionCalibration.update ({n} boxes)": lambda: det_acc.update(conf, tp, pred_cls),
    }


def check_host_syncs(ctx: Ctx) -> dict[str, Any]:
    """No host sync from the plugin: training steps against stock, and the plugin's own parts strictly."""
    b, imgsz, k = ctx.size["sync_cls"]
    pairs: dict[str, tuple[Callable[[], None], Callable[[], None]]] = {
        f"yolo11n-cls train step (B={b}, K={k}, ε per iteration, accumulator)": _cls_models(ctx, b, imgsz, k, False),
        f"yolo11n-cls train step, AMP + GradScaler (B={b}, K={k})": _cls_models(ctx, b, imgsz, k, True),
    }
    db, dimg, nc = ctx.size["sync_det"]
    for yaml in DET_YAMLS:
        if has_model_yaml(yaml):
            pairs[f"{yaml} train step (B={db}, {dimg}px, ε per iteration)"] = _det_models(ctx, yaml, db, dimg, nc)
    strict = _plugin_only_steps(ctx)
    if not ctx.cuda:
        for stock_fn, plugin_fn in pairs.values():
            stock_fn(), plugin_fn()
        for fn in strict.values():
            fn()
        return result(SKIP, reason=f"torch.cuda.set_sync_debug_mode needs CUDA (its {len(pairs)} step pairs and "
                                   f"{len(strict)} plugin parts ran once on the CPU)")
    out = prove_sync_free(pairs, strict)
    failed = [f"{n}: {r['summary']}" for n, r in out.items() if not r["ok"]]
    stock_syncs = [n for n, r in out.items() if "stock" in r and not r["stock"]["error_mode_ok"]]
    line = f"{len(out) - len(failed)}/{len(out)} sync-free or no added sync (stock itself syncs in {len(stock_syncs)})"
    return result(FAIL if failed else PASS, line, reason="; ".join(failed), checks=out)


def prove_sync_free(pairs: dict[str, tuple[Callable[[], Any], Callable[[], Any]]],
                    strict: dict[str, Callable[[], Any]]) -> dict[str, dict[str, Any]]:
    """Each (stock, plugin) pair through ``compare_syncs``; each strict part must not synchronise at all (CUDA)."""
    out: dict[str, Any] = {}
    for name, (stock_fn, plugin_fn) in pairs.items():
        out[name] = bench_loss.compare_syncs(name, stock_fn, plugin_fn)
    for name, fn in strict.items():
        fn()
        torch.cuda.synchronize()
        r = bench_loss.sync_profile(fn)
        ok = r["error_mode_ok"] and r["warn_count"] == 0
        how = "sync-free" if ok else f"synchronises at {r['where'] or r['warn_sites']}"
        print(f"  {name}: {'PASS' if ok else 'FAIL'}: {how}")
        out[name] = {"ok": ok, "plugin": r, "summary": how}
    return out


# ------------------------------------------------------------------------------------------------------- recompile
def check_recompile(ctx: Ctx) -> dict[str, Any]:
    """``torch.compile`` of the smoothed losses with ε changed every step: one graph, no recompile."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    b, k, nc, feat = ctx.size["compile"]
    torch._dynamo.reset()
    counters.clear()
    state = LabelSmoothingState(0.0, ctx.device)
    cls_loss = SmoothedClassificationLoss(state, k)
    bce = SmoothedBCEWithLogits(state, "fg")
    torch.manual_seed(0)
    net = torch.nn.ModuleDict({"cls": torch.nn.Linear(feat, k), "det": torch.nn.Linear(feat, nc)}).to(ctx.device)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)

    def loss_fn(x: torch.Tensor, labels: torch.Tensor, feats: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return cls_loss(net["cls"](x), {"cls": labels})[0] + bce(net["det"](feats), targets).mean()

    g = torch.Generator().manual_seed(0)
    x, labels = torch.randn(b, feat, generator=g), torch.randint(0, k, (b,), generator=g)
    feats, targets = torch.randn(2, 400, feat, generator=g), torch.rand(2, 400, nc, generator=g)
    x, labels, feats, targets = (t.to(ctx.device) for t in (x, labels, feats, targets))
    compiled = torch.compile(loss_fn, backend=ctx.compile_backend)
    set_eps = _per_iteration_eps(state)
    values, eps_values, max_diff = [], [], 0.0
    t = time.perf_counter()
    for _ in range(ctx.size["compile_steps"]):
        eps_values.append(set_eps())
        loss = compiled(x, labels, feats, targets)
        with torch.no_grad():
            values.append(float(loss.detach()))
            max_diff = max(max_diff, abs(values[-1] - float(loss_fn(x, labels, feats, targets))))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    wall = time.perf_counter() - t
    graphs = int(counters["stats"]["unique_graphs"])
    recompiles = {str(k): v for k, v in counters["recompiles"].items()}
    breaks = {str(k): v for k, v in counters["graph_break"].items()}
    torch._dynamo.reset()
    figures = {"backend": ctx.compile_backend, "steps": len(values), "eps": eps_values, "losses": values,
               "unique_graphs": graphs, "recompiles": recompiles, "graph_breaks": breaks,
               "max_abs_diff_vs_eager": max_diff, "wall_s": wall}
    line = (f"{ctx.compile_backend}: {graphs} graph(s), {sum(recompiles.values())} recompiles over "
            f"{len(values)} steps with {len(set(eps_values))} ε values; |compiled - eager| <= {max_diff:.1e}")
    problems = []
    if graphs != 1 or recompiles:
        problems.append(f"{graphs} graphs, recompiles {recompiles}")
    if len(set(eps_values)) < len(eps_values) - 1:
        problems.append("ε did not change every step")
    if max_diff > 1e-4 * max(1.0, max(abs(v) for v in values)):
        problems.append(f"compiled loss differs from eager by {max_diff:.2e}")
    return result(FAIL if problems else PASS, line, reason="; ".join(problems), **figures)


# --------------------------------------------------------------------------------------------------------- timings
def _timing_result(ctx: Ctx, line: str, problems: list[str], figures: dict[str, Any]) -> dict[str, Any]:
    """Fail on wrong values; off CUDA the timing is skipped (it is a CUDA timing) with its CPU figures kept."""
    if problems:
        return result(FAIL, line, reason="; ".join(problems), **figures)
    if not ctx.cuda:
        what = "quick sizes: the code ran, the figures are no measurement" if ctx.quick else "CPU figures in the JSON"
        return result(SKIP, line, reason=f"CUDA timing needs CUDA; ran on the CPU ({what})", **figures)
    return result(PASS, line, **figures)


def _target_note(ctx: Ctx, ratio: float, target: float) -> tuple[str, bool | None]:
    if ctx.quick or not ctx.cuda:
        return "", None
    met = ratio <= target
    return ("" if met else f" MISSED target <= {target}"), met


def check_timing_cls_loss(ctx: Ctx) -> dict[str, Any]:
    """Classification loss fwd+bwd, stock vs plugin (ε=0.1, ε=0) vs builtin, float32 and AMP, with an A/A row."""
    b, k = ctx.size["cls_loss"]
    reps, number = ctx.size["loss_reps"]
    out, parts, problems = {}, [], []
    for amp in (False, True):
        label = f"AMP ({str(ctx.amp_dtype).split('.')[-1]})" if amp else "float32"
        steps, checks = bench_loss.classification_setup(ctx.device, b=b, k=k,
                                                        dtype=ctx.amp_dtype if amp else torch.float32)
        if amp:
            steps = {n: _autocast(ctx, f) for n, f in steps.items()}
        names = list(steps)
        times, samples = bench_loss._timed(steps, ctx.device, reps, number)
        print(ratio_table(times, names[0], f"classification loss fwd+bwd, B={b}, K={k}, {label}", samples))
        ratios = _ratios(times, samples, names[0])
        ratio, aa = ratios[names[1]]["ratio"], ratios[bench_loss.AA]["ratio"]
        note, met = _target_note(ctx, max(ratio, ratios[names[2]]["ratio"]), bench_loss.CLS_TARGET)
        tol = 1e-4 if not amp else 5e-2
        bad = {n: v for n, v in checks.items() if not (math.isfinite(v) and v <= tol)}
        if bad:
            problems.append(f"{label}: values differ {bad}")
        out[label] = {"times_s": times, "ratios": ratios, "samples_s": samples, "checks": checks,
                      "target": bench_loss.CLS_TARGET, "met": met}
        parts.append(f"{label} plugin/stock {ratio:.3f} (ε=0 {ratios[names[2]]['ratio']:.3f}, A/A {aa:.3f}){note}")
    return _timing_result(ctx, f"B={b} K={k}: " + "; ".join(parts), problems, out)


def check_timing_det_loss(ctx: Ctx) -> dict[str, Any]:
    """Detection loss fwd+bwd on detached head outputs, stock vs plugin (fg, ε=0.1), float32 and AMP, A/A row."""
    b, imgsz, nc = ctx.size["det_loss"]
    reps, number = ctx.size["det_reps"]
    out: dict[str, Any] = {}
    parts, problems, skipped = [], [], []
    for yaml in DET_YAMLS:
        if not has_model_yaml(yaml):
            skipped.append(f"{yaml} not in this Ultralytics")
            continue
        for amp in (False, True):
            label = f"{yaml} " + (f"AMP ({str(ctx.amp_dtype).split('.')[-1]})" if amp else "float32")
            with torch.autocast(ctx.device.type, dtype=ctx.amp_dtype, enabled=amp):  # the loss calls of the setup too
                setup = bench_loss.detection_setup(yaml, ctx.device, b=b, imgsz=imgsz, nc=nc,
                                                   amp_dtype=ctx.amp_dtype if amp else None)
                stock, plugin, preds, batch, leaves, checks = setup
                bce = bench_loss.bce_steps(stock, plugin, preds, batch)
            steps = bench_loss.detection_steps(stock, plugin, preds, batch, leaves)
            if amp:
                steps = {n: _autocast(ctx, f) for n, f in steps.items()}
                bce = {n: _autocast(ctx, f) for n, f in bce.items()}
            times, samples = bench_loss._timed(steps, ctx.device, reps, number)
            bce_times, _ = bench_loss._timed(bce, ctx.device, reps, 4 * number)
            print(ratio_table(times, "stock", f"detection loss fwd+bwd, {label}, B={b}, {imgsz}px, nc={nc}", samples))
            ratios = _ratios(times, samples, "stock")
            ratio, aa = ratios["plugin fg eps=0.1"]["ratio"], ratios[bench_loss.AA]["ratio"]
            branches = 2 if checks["criterion"] == "E2ELoss" else 1
            added = branches * (bce_times["plugin fg eps=0.1"] - bce_times["stock"])
            implied = 1 + added / times["stock"]
            note, met = _target_note(ctx, ratio, bench_loss.DET_TARGET)
            if not amp and not checks["non-cls items identical"]:
                problems.append(f"{label}: box/dfl loss items differ from stock")
            out[label] = {"times_s": times, "ratios": ratios, "samples_s": samples, "bce_times_s": bce_times,
                          "implied_ratio_from_bce": implied, "checks": checks, "target": bench_loss.DET_TARGET,
                          "met": met}
            parts.append(f"{label} {ratio:.3f} (A/A {aa:.3f}, implied {implied:.3f}){note}")
    line = f"B={b} {imgsz}px nc={nc}: " + "; ".join(parts) + (f"; {', '.join(skipped)}" if skipped else "")
    return _timing_result(ctx, line, problems, out)


def check_timing_calibration(ctx: Ctx) -> dict[str, Any]:
    """The accumulator (all ten metrics) against torchmetrics' top-label ECE, float32 and float16 (AMP val)."""
    reps = ctx.size["calib_reps"]
    out: dict[str, Any] = {}
    parts, problems = [], []
    for label, n, k, scale in ctx.size["calib_cases"]:
        probs32, labels = bench_cal.make_data(n, k, scale, ctx.device)
        shape = f"{n // 1000}k x {k}" if n < 1_000_000 else f"{n // 1_000_000}M x {k}"
        for dtype in (torch.float32, torch.float16):
            name = f"{shape} {str(dtype).split('.')[-1]}"
            fns = bench_cal.variants(probs32.to(dtype), labels)
            values = {v: float(fn()) for v, fn in fns.items()}  # the value check is also the warmup pass
            diffs = {v: abs(x - values[bench_cal.TM]) for v, x in values.items() if v != bench_cal.TM}
            samples = interleaved_samples(fns, reps=reps, warmup=0, sync=ctx.sync if ctx.cuda else None)
            times = {v: sorted(s)[len(s) // 2] for v, s in samples.items()}
            print(ratio_table(times, bench_cal.TM, f"calibration {name}, {bench_cal.N_BINS} bins", samples))
            ratios = _ratios(times, samples, bench_cal.TM)
            ratio, aa = ratios[bench_cal.STREAM]["ratio"], ratios[bench_cal.TM_AA]["ratio"]
            note, met = _target_note(ctx, ratio, bench_cal.TARGETS[label]) if dtype == torch.float32 else ("", None)
            if dtype == torch.float32 and max(diffs.values()) > bench_cal.ATOL:
                problems.append(f"{name}: ECE differs from torchmetrics by {max(diffs.values()):.2e}")
            out[name] = {"times_s": times, "ratios": ratios, "samples_s": samples, "ece_values": values,
                         "abs_diff_vs_torchmetrics": diffs, "target": bench_cal.TARGETS[label], "met": met}
            parts.append(f"{name} {ratio:.3f} (A/A {aa:.3f}){note}")
        del probs32, labels
    return _timing_result(ctx, "accumulator/torchmetrics ECE: " + "; ".join(parts), problems, out)


# -------------------------------------------------------------------------------------------------------- training
DRIVER = """
import json, sys, time
spec = json.loads(sys.argv[1])
from ultralytics.utils import SETTINGS
SETTINGS.update({{k: False for k in ("clearml", "comet", "dvc", "mlflow", "neptune", "raytune", "tensorboard", "wandb")
                  if k in SETTINGS}})
{setup}
out = {{}}
for run in spec["runs"]:
    t = time.perf_counter()
    M(run["model"]).train(**run["train"], **extra)
    out[run["name"]] = {{"elapsed_s": time.perf_counter() - t}}
    if run.get("ref_val") and "label_smoothing" in extra:
        import numpy as np
        ref = M(run["best"]).val(**run["ref_val"])
        bins = {{k: np.asarray(v, dtype=float).tolist() for k, v in ref.calibration_bins.items()}}
        out[run["name"]]["ref"] = {{"calibration": ref.calibration, "bins": bins}}
print({tag!r} + json.dumps(out))
"""


def _datasets(ctx: Ctx) -> dict[str, Path]:
    return {"classify": digits(ctx.work / "digits-32", imgsz=32),
            "detect": digits_detection(ctx.work / "digits-det", **ctx.size["det_data"])}


def _runs(ctx: Ctx, data: dict[str, Path], project: Path, device: str, world: int = 1,
          det_calib_conf: float | None = None) -> list[dict[str, Any]]:
    """The training specs (one per task) of a driver subprocess, with the reference val of best.pt.

    ``det_calib_conf`` (yolo-ls runs only) scores the detection boxes above it instead of the default ``calib_conf``:
    a model trained for a few epochs has few boxes above 0.25.
    """
    amp = ctx.cuda
    common = {"epochs": ctx.size["epochs"], "workers": 0, "seed": 0, "device": device, "amp": amp,
              "plots": not ctx.quick, "verbose": False, "project": str(project), "exist_ok": True}
    runs = []
    for task, model, extra in (("classify", CLS_YAML, ctx.size["cls_train"]), ("detect", "yolo11n.yaml",
                                                                              ctx.size["det_train"])):
        name = "cls" if task == "classify" else "det"
        train = {**common, **extra, "data": str(data[task]), "name": name}
        ref_val = {"data": str(data[task]), "imgsz": extra["imgsz"], "batch": extra["batch"] // world * 2,
                   "device": device.split(",")[0], "half": amp, "plots": False, "verbose": False,
                   "project": str(project), "name": f"{name}-ref", "exist_ok": True}
        if task == "detect" and det_calib_conf is not None:
            train["calib_conf"] = ref_val["calib_conf"] = det_calib_conf
        runs.append({"name": name, "task": task, "model": model, "train": train, "ref_val": ref_val,
                     "best": str(project / name / "weights" / "best.pt")})
    return runs


def _drive(ctx: Ctx, variant: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Run one variant's trainings in a fresh subprocess; its per-run wall times (and reference vals)."""
    code = DRIVER.format(setup=VARIANTS[variant], tag=RESULT_TAG)
    proc = subprocess.run([sys.executable, "-c", code, json.dumps({"runs": runs})], cwd=ctx.work, env=ctx.env(),
                          capture_output=True, text=True, timeout=max(60.0, ctx.remaining() + 60))
    line = next((x for x in proc.stdout.splitlines() if x.startswith(RESULT_TAG)), None)
    if proc.returncode or line is None:
        raise RuntimeError(f"{variant}: exit {proc.returncode}: {(proc.stderr or proc.stdout)[-2000:]}")
    return json.loads(line[len(RESULT_TAG):])


def _inspect_run(run: dict[str, Any], ref: dict[str, Any] | None, tol: float) -> tuple[dict, list[str]]:
    """ε and ``calib/*`` in results.csv; ``calibration/final.json`` against the reference val of best.pt."""
    import pandas as pd

    folder = Path(run["train"]["project"]) / run["name"]
    df = pd.read_csv(folder / "results.csv")
    df.columns = [c.strip() for c in df.columns]
    keys = CLASSIFICATION_METRICS if run["task"] == "classify" else DETECTION_METRICS
    problems = []
    missing = [f"calib/{k}" for k in keys if f"calib/{k}" not in df.columns]
    if missing:
        problems.append(f"{run['name']}: results.csv lacks {missing}")
    if "label_smoothing" not in df.columns:
        problems.append(f"{run['name']}: results.csv lacks label_smoothing")
    elif not all(abs(v - 0.1) < 1e-6 for v in df["label_smoothing"]):
        problems.append(f"{run['name']}: label_smoothing column {df['label_smoothing'].tolist()} != 0.1")
    last = {k: float(df[f"calib/{k}"].iloc[-1]) for k in keys if f"calib/{k}" in df.columns}
    if run["task"] == "classify" and not all(math.isfinite(v) for v in last.values()):
        problems.append(f"{run['name']}: calib/* not measured in the last epoch: {last}")
    figures: dict[str, Any] = {"epochs": len(df), "label_smoothing": df.get("label_smoothing", pd.Series()).tolist(),
                               "calib_last_epoch": last}
    if ref is not None:
        final = json.loads((folder / "calibration" / "final.json").read_text())
        counts_equal = [round(c) for c in final["bins"]["count"]] == [round(c) for c in ref["bins"]["count"]]
        diffs = {}
        for k in keys:
            a, b = final["metrics"].get(k), ref["calibration"].get(k)
            a = math.nan if a is None else float(a)
            b = math.nan if b is None else float(b)
            diffs[k] = 0.0 if (math.isnan(a) and math.isnan(b)) else abs(a - b)
        worst = max(diffs.values())
        figures["final_vs_val"] = {"bin_counts_equal": counts_equal, "n": sum(final["bins"]["count"]),
                                   "abs_diffs": diffs, "tolerance": tol}
        if not counts_equal or not worst <= tol:
            problems.append(f"{run['name']}: final.json vs val() of best.pt: counts equal {counts_equal}, "
                            f"largest metric difference {worst:.2e} (tolerance {tol:g})")
    return figures, problems


def check_training(ctx: Ctx) -> dict[str, Any]:
    """Stock vs yolo-ls defaults (and stock again), whole trainings in fresh subprocesses, AMP on a GPU."""
    data = _datasets(ctx)
    variants = ctx.size["train_variants"]
    elapsed: dict[str, dict[str, float]] = {}
    inspected, problems = {}, []
    for variant in variants:
        project = ctx.work / "train" / variant.split()[0].replace("ε", "eps") / str(len(elapsed))
        runs = _runs(ctx, data, project, ctx.yolo_device)
        ctx.log(f"  training: {variant} ({', '.join(r['name'] for r in runs)})")
        got = _drive(ctx, variant, runs)
        elapsed[variant] = {name: r["elapsed_s"] for name, r in got.items()}
        if variant == DEFAULT:
            tol = 1e-6 if not ctx.cuda else 1e-4  # GPU kernels may pick other algorithms between the two runs
            for run in runs:
                figures, bad = _inspect_run(run, got[run["name"]].get("ref"), tol)
                inspected[run["name"]] = figures
                problems += bad
    # yolo-ls ran between the two stock runs: against their mean, a linear drift of the machine cancels
    stocks = [elapsed[v] for v in (STOCK, STOCK_AA) if v in elapsed]
    ratios = {n: elapsed[DEFAULT][n] / (sum(s[n] for s in stocks) / len(stocks)) for n in elapsed[STOCK]}
    aa = {name: elapsed[STOCK_AA][name] / elapsed[STOCK][name] for name in elapsed.get(STOCK_AA, {})}
    amp = "AMP on" if ctx.cuda else "AMP off (CPU)"
    parts = [f"{n} {ratios[n]:.3f}" + (f" (A/A {aa[n]:.3f})" if n in aa else "") for n in ratios]
    line = f"{ctx.size['epochs']} epoch(s), {amp}: yolo-ls/stock whole run " + ", ".join(parts)
    if not problems:
        scored = {n: r["final_vs_val"]["n"] for n, r in inspected.items()}
        line += (f"; ε and calib/* in results.csv; final.json == val(best.pt) ({scored['cls']} val samples, "
                 f"{scored['det']} boxes scored)")
    return result(FAIL if problems else PASS, line, reason="; ".join(problems), elapsed_s=elapsed,
                  ratio_vs_stock=ratios, aa_control=aa, runs=inspected)


def _gpu_count(ctx: Ctx) -> int:
    return torch.cuda.device_count() if ctx.cuda else 0


def needs_two_gpus(ctx: Ctx) -> str | None:
    """The skip reason of the multi-GPU check on a machine with fewer than two GPUs."""
    return None if _gpu_count(ctx) >= 2 else f"needs 2 CUDA devices, found {_gpu_count(ctx)}"


def check_multi_gpu(ctx: Ctx) -> dict[str, Any]:
    """yolo-ls trainings with ``device=0,1``; final.json against a one-GPU val of the same best.pt."""
    n = _gpu_count(ctx)
    data = _datasets(ctx)
    runs = _runs(ctx, data, ctx.work / "train" / "ddp", "0,1", world=2, det_calib_conf=0.0)  # sums over many boxes
    got = _drive(ctx, DEFAULT, runs)
    inspected, problems = {}, []
    for run in runs:
        figures, bad = _inspect_run(run, got[run["name"]].get("ref"), 1e-4)
        inspected[run["name"]] = {**figures, "elapsed_s": got[run["name"]]["elapsed_s"]}
        problems += bad
    line = f"device=0,1 ({n} GPUs): " + ", ".join(
        f"{r} {f['final_vs_val']['n']} val samples/boxes" for r, f in inspected.items())
    return result(FAIL if problems else PASS, line, reason="; ".join(problems), runs=inspected)


# ------------------------------------------------------------------------------------------------------------ main
# (name, function, estimated seconds of the full run on one GPU, of --quick, precondition: a skip reason or None)
CHECKS: tuple[tuple[str, Callable[[Ctx], dict[str, Any]], float, float, Callable[[Ctx], str | None]], ...] = (
    ("cuda_tests", check_cuda_tests, 90, 5, lambda ctx: None),
    ("host_syncs", check_host_syncs, 30, 3, lambda ctx: None),
    ("recompile", check_recompile, 60, 2, lambda ctx: None),
    ("timing_cls_loss", check_timing_cls_loss, 20, 2, lambda ctx: None),
    ("timing_det_loss", check_timing_det_loss, 45, 3, lambda ctx: None),
    ("timing_calibration", check_timing_calibration, 60, 3, lambda ctx: None),
    ("training", check_training, 150, 20, lambda ctx: None),
    ("multi_gpu", check_multi_gpu, 120, 60, needs_two_gpus),
)


def _git_commit() -> str | None:
    try:
        proc = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        return proc.stdout.strip() or None
    except OSError:
        return None


def run_checks(ctx: Ctx, names: list[str]) -> dict[str, dict[str, Any]]:
    """Run the named checks in order, each wrapped, within the budget."""
    results: dict[str, dict[str, Any]] = {}
    for name, fn, est_full, est_quick, precondition in CHECKS:
        if name not in names:
            continue
        est = est_quick if ctx.quick else est_full
        why = precondition(ctx)
        if why is None and ctx.remaining() < est:
            why = f"budget: {ctx.remaining():.0f} s left, needs about {est:.0f} s"
        if why is not None:
            results[name] = {**result(SKIP, reason=why), "elapsed_s": 0.0}
            ctx.log(f"{name}: skipped ({why})")
            continue
        ctx.log(f">> {name} (about {est:.0f} s, {ctx.remaining():.0f} s of budget left)")
        gc.freeze()  # what is alive now is never garbage: the timing helpers' gc.collect() then costs microseconds
        t = time.perf_counter()
        try:
            r = fn(ctx)
        except Exception as e:  # one check's failure must not stop the others
            tb = traceback.format_exc(limit=-4)
            r = result(FAIL, reason=f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}",
                       traceback=tb)
            print(tb, flush=True)
        finally:
            if ctx.cuda:
                torch.cuda.empty_cache()
        r["elapsed_s"] = round(time.perf_counter() - t, 2)
        results[name] = r
        ctx.log(f"<< {name}: {r['status'].upper()} in {r['elapsed_s']:.1f} s  {r['summary'] or r['reason']}")
    return results


def summary_text(env: dict[str, Any], results: dict[str, dict[str, Any]]) -> str:
    """The short text summary: where and when, then one line per check."""
    head = [
        f"yolo-ls gpu_check {env['date']} (commit {env['git_commit']}, {'quick' if env['quick'] else 'full'} run, "
        f"{env['wall_s']:.0f} s of a {env['budget_s']:.0f} s budget)"
        + ("; quick: tiny sizes, the figures show that the code ran and are no measurement" if env["quick"] else ""),
        f"device: {env['device']} = {env['device_name']} (CUDA devices: {env['cuda_devices']})",
        f"torch {env['torch']}, CUDA {env['cuda_runtime']}, cuDNN {env['cudnn']}, ultralytics {env['ultralytics']}, "
        f"Python {env['python']}, yolo-ls {env['yolo_ls']}",
    ]
    width = max((len(n) for n in results), default=10) + 2
    lines = [f"{n:<{width}}{r['status'].upper():<8}{r.get('elapsed_s', 0):6.1f}s  "
             + (r["summary"] if r["status"] == PASS else r["reason"] or r["summary"]) for n, r in results.items()]
    failed = [n for n, r in results.items() if r["status"] == FAIL]
    return "\n".join(head + lines + ["result: " + (f"FAILED: {', '.join(failed)}" if failed else "no check failed")])


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run the checks, write the JSON and summary.txt; 1 if any check failed."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (the dry run; implies --quick)")
    ap.add_argument("--quick", action="store_true", help="tiny shapes, 1 epoch, few repetitions")
    ap.add_argument("--full", action="store_true", help="full sizes even on the CPU")
    ap.add_argument("--budget-s", type=float, default=480.0, help="time budget; checks that no longer fit are skipped")
    ap.add_argument("--out", type=Path, default=None,
                    help="the JSON to write (default: runs/gpu_check/gpu_check.json in the repository)")
    ap.add_argument("--only", default="", help="comma-separated check names to run (default: all)")
    ap.add_argument("--skip", default="", help="comma-separated check names to leave out")
    ap.add_argument("--compile-backend", default=None,
                    help="torch.compile backend of the recompile check (default: inductor on CUDA, aot_eager on CPU)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads on the CPU (0: torch's default)")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error("no CUDA device here: run the CPU dry run with --device cpu")
    known = [c[0] for c in CHECKS]
    only = [s for s in args.only.split(",") if s] or known
    skip = [s for s in args.skip.split(",") if s]
    unknown = sorted(set(only + skip) - set(known))
    if unknown:
        ap.error(f"unknown check(s) {unknown}; known: {', '.join(known)}")
    if device.type == "cpu" and args.threads > 0:
        torch.set_num_threads(args.threads)
    quick = args.quick or (device.type == "cpu" and not args.full)
    out = args.out.resolve() if args.out else ROOT / "runs" / "gpu_check" / "gpu_check.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        backend = args.compile_backend or ("inductor" if device.type == "cuda" else "aot_eager")
        ctx = Ctx(device, quick, out.parent, Path(tmp), args.budget_s, backend)
        env = {
            **environment(str(device)),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "git_commit": _git_commit(),
            "yolo_ls": yolo_ls.__version__,
            "cuda_runtime": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
            "cuda_devices": torch.cuda.device_count() if torch.cuda.is_available() else 0,
            "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            if torch.cuda.is_available() else [],
            "quick": quick,
            "budget_s": args.budget_s,
            "compile_backend": backend,
            "host": platform.node(),
        }
        from ultralytics.utils import LOGGER

        LOGGER.setLevel(logging.WARNING)  # quiet the model summaries and "Overriding model.yaml nc=..." of each build
        ctx.log(f"{env['device_name']}, torch {env['torch']}, CUDA {env['cuda_runtime']}, "
                f"{'quick' if quick else 'full'} run, budget {args.budget_s:.0f} s")
        results = run_checks(ctx, [n for n in only if n not in skip])
    env["wall_s"] = ctx.elapsed()
    missed = [f"{check}: {row}" for check, r in results.items() for row, v in r["figures"].items()
              if isinstance(v, dict) and v.get("met") is False]
    report = {"environment": env, "checks": results, "targets_missed": missed,
              "failed": [n for n, r in results.items() if r["status"] == FAIL]}
    out.write_text(json.dumps(report, indent=1, default=str))
    text = summary_text(env, results)
    (out.parent / "summary.txt").write_text(text + "\n")
    print("\n" + text)
    print(f"wrote {out} and {out.parent / 'summary.txt'}")
    return 1 if report["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
