"""Loss overhead of yolo-ls against stock Ultralytics, as ratios measured interleaved in one process.

    python bench/bench_losses.py [--device cpu|cuda] [--reps 15] [--only cls|det] [--json out.json] [--profile]

1. Classification, forward + backward, B=256, K=1000: stock ``v8ClassificationLoss`` vs the plugin's
   ``SmoothedClassificationLoss`` (public torch ops only) at ε=0.1 and ε=0 vs ``F.cross_entropy(label_smoothing=0.1)``.
   Target: plugin/stock <= 1.10 at both ε. Checks: ε=0 loss equals stock bit for bit, its gradient to a few ulp
   (stock's fused log-softmax backward has its own vectorised exp, the plugin torch.exp); ε=0.1 equals the built-in.
2. Detection, forward + backward of the loss only (head outputs computed once, then detached into leaf tensors),
   B=8, 320 px, nc=10: stock criterion vs the plugin-installed one (``ls_mode=fg``, ε=0.1) for ``yolo11n.yaml``
   (v8DetectionLoss) and ``yolo26n.yaml`` (E2ELoss). Target: plugin/stock <= 1.05.
3. ``--device cuda`` only: host-sync check. Each plugin loss is run under ``torch.cuda.set_sync_debug_mode("error")``
   after its stock counterpart; when stock itself synchronises, the synchronising calls of stock and plugin are
   counted under ``"warn"`` instead and the plugin must not add any.
"""

from __future__ import annotations

import argparse
import copy
import logging
import statistics
import sys
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import environment, interleaved_samples, ratio_table, report  # noqa: E402

CLS_B, CLS_K, EPS = 256, 1000, 0.1
DET_B, DET_IMGSZ, DET_NC = 8, 320, 10
DET_MODELS = ("yolo11n.yaml", "yolo26n.yaml")
CLS_TARGET, DET_TARGET = 1.10, 1.05
AA = "stock again (A/A)"
SYNC_MSG = "synchronizing CUDA operation"


# ---------------------------------------------------------------------------------------------------------- helpers
def _sync_fn(device: torch.device) -> Callable[[], None] | None:
    return torch.cuda.synchronize if device.type == "cuda" else None


def _grad_step(loss_fn: Callable[[], torch.Tensor], leaves: list[torch.Tensor]) -> Callable[[], None]:
    """A closure doing one loss forward + backward into ``leaves`` (no .grad accumulation, no optimizer)."""

    def step() -> None:
        loss = loss_fn()
        torch.autograd.grad(loss.sum(), leaves, allow_unused=True)

    return step


def _timed(
    steps: dict[str, Callable[[], None]], device: torch.device, reps: int, number: int
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Interleaved medians and samples, with an A/A control: the first (stock) step timed a second time."""
    first = next(iter(steps))
    steps = {**steps, AA: steps[first]}
    samples = interleaved_samples(steps, reps=reps, warmup=3, sync=_sync_fn(device), number=number)
    return {n: statistics.median(v) for n, v in samples.items()}, samples


def _verdict(ratio: float, target: float) -> str:
    return "OK" if ratio <= target else f"MISSED by {100 * (ratio / target - 1):.1f}% (target <= {target:.2f})"


# -------------------------------------------------------------------------------------------------- classification
def classification_setup(
    device: torch.device, b: int = CLS_B, k: int = CLS_K, dtype: torch.dtype = torch.float32
) -> tuple[dict[str, Callable[[], None]], dict[str, float]]:
    """The four classification loss steps on (b, k) logits of ``dtype``, plus value checks (plugin ε=0 == stock,
    plugin ε=0.1 == builtin)."""
    from ultralytics.utils.loss import v8ClassificationLoss

    from yolo_ls.core.losses import LabelSmoothingState, SmoothedClassificationLoss

    g = torch.Generator().manual_seed(0)
    logits = (2 * torch.randn(b, k, generator=g)).to(device, dtype).requires_grad_()
    batch = {"cls": torch.randint(0, k, (b,), generator=g).to(device)}
    stock = v8ClassificationLoss()
    plugin = SmoothedClassificationLoss(LabelSmoothingState(EPS, device), k)
    plugin0 = SmoothedClassificationLoss(LabelSmoothingState(0.0, device), k)

    losses: dict[str, Callable[[], torch.Tensor]] = {
        "stock v8ClassificationLoss": lambda: stock(logits, batch)[0],
        f"plugin eps={EPS}": lambda: plugin(logits, batch)[0],
        "plugin eps=0": lambda: plugin0(logits, batch)[0],
        f"F.cross_entropy(ls={EPS})": lambda: F.cross_entropy(logits, batch["cls"], label_smoothing=EPS),
    }
    names = list(losses)
    grads = {n: torch.autograd.grad(f(), [logits])[0] for n, f in losses.items()}
    values = {n: f().detach() for n, f in losses.items()}
    checks = {
        "|loss(plugin eps=0) - stock|": (values[names[2]] - values[names[0]]).abs().item(),
        "|grad(plugin eps=0) - stock|max": (grads[names[2]] - grads[names[0]]).abs().max().item(),
        f"|loss(plugin eps={EPS}) - builtin|": (values[names[1]] - values[names[3]]).abs().item(),
        f"|grad(plugin eps={EPS}) - builtin|max": (grads[names[1]] - grads[names[3]]).abs().max().item(),
    }
    return {n: _grad_step(f, [logits]) for n, f in losses.items()}, checks


def bench_classification(device: torch.device, reps: int, number: int) -> dict[str, Any]:
    print(f"[1] classification: timing {reps} reps ...", flush=True)
    steps, checks = classification_setup(device)
    names = list(steps)
    times, samples = _timed(steps, device, reps, number)
    stock = times[names[0]]
    title = f"[1] classification loss fwd+bwd, B={CLS_B}, K={CLS_K} ({reps} reps x {number} calls)"
    print(ratio_table(times, names[0], title, samples))
    for k, v in checks.items():
        print(f"  check {k}: {v:.2e}")
    ratio, ratio0 = times[names[1]] / stock, times[names[2]] / stock
    print(f"  plugin eps={EPS}/stock = {ratio:.3f}: {_verdict(ratio, CLS_TARGET)}; A/A control {times[AA] / stock:.3f}")
    print(f"  plugin eps=0/stock = {ratio0:.3f}: {_verdict(ratio0, CLS_TARGET)}; builtin/stock = "
          f"{times[names[3]] / stock:.3f}")
    return {
        "times_s": times,
        "ratios_vs_stock": {n: t / stock for n, t in times.items()},
        "samples_s": samples,
        "number": number,
        "target": CLS_TARGET,
        "met": ratio <= CLS_TARGET and ratio0 <= CLS_TARGET,
        "checks": checks,
    }


def profile_classification(device: torch.device, calls: int = 200, rows: int = 8) -> None:
    """Print the top operators (self time) of the stock and plugin classification steps: what the ratio is made of."""
    from torch.profiler import ProfilerActivity, profile

    steps, _ = classification_setup(device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    sort_by = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    for name in list(steps)[:2]:
        for _ in range(10):
            steps[name]()
        with profile(activities=activities) as prof:
            for _ in range(calls):
                steps[name]()
        print(f"  profile of {name} ({calls} calls):")
        print(prof.key_averages().table(sort_by=sort_by, row_limit=rows, max_name_column_width=40))


# ------------------------------------------------------------------------------------------------------- detection
def detection_batch(
    device: torch.device, seed: int = 0, b: int = DET_B, imgsz: int = DET_IMGSZ, nc: int = DET_NC
) -> dict[str, torch.Tensor]:
    """``b`` random images with 2-6 random boxes each (normalised xywh), as a YOLO dataloader batch."""
    g = torch.Generator().manual_seed(seed)
    counts = torch.randint(2, 7, (b,), generator=g)
    n = int(counts.sum())
    batch_idx = torch.repeat_interleave(torch.arange(b), counts).float()
    xy = 0.2 + 0.6 * torch.rand(n, 2, generator=g)
    wh = 0.05 + 0.3 * torch.rand(n, 2, generator=g)
    batch = {
        "img": torch.rand(b, 3, imgsz, imgsz, generator=g),
        "batch_idx": batch_idx,
        "cls": torch.randint(0, nc, (n, 1), generator=g).float(),
        "bboxes": torch.cat([xy, wh], 1),
    }
    return {k: v.to(device) for k, v in batch.items()}


def _leafify(preds: Any, leaves: list[torch.Tensor]) -> Any:
    """Detach the head outputs; ``boxes``/``scores`` become leaf tensors requiring grad (collected in ``leaves``)."""
    if isinstance(preds, dict):
        out = {}
        for k, v in preds.items():
            if k in ("boxes", "scores") and isinstance(v, torch.Tensor):
                out[k] = v.detach().clone().requires_grad_()
                leaves.append(out[k])
            else:
                out[k] = _leafify(v, leaves)
        return out
    if isinstance(preds, (list, tuple)):
        return type(preds)(_leafify(v, leaves) for v in preds)
    if isinstance(preds, torch.Tensor):
        return preds.detach()
    return preds


def detection_setup(
    yaml: str,
    device: torch.device,
    b: int = DET_B,
    imgsz: int = DET_IMGSZ,
    nc: int = DET_NC,
    amp_dtype: torch.dtype | None = None,
) -> tuple[Any, Any, Any, dict[str, torch.Tensor], list[torch.Tensor], dict[str, Any]]:
    """(stock criterion, plugin criterion, detached preds, batch, leaves, checks) for one yaml model.

    With ``amp_dtype`` the head outputs are computed under ``torch.autocast`` in that dtype (as in an AMP training).
    """
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.utils import DEFAULT_CFG

    from yolo_ls.core.losses import LabelSmoothingState
    from yolo_ls.engine.inject import install_smoothing

    torch.manual_seed(0)
    model = DetectionModel(yaml, nc=nc, verbose=False).to(device)
    model.args = get_cfg(DEFAULT_CFG)
    model.train()
    batch = detection_batch(device, b=b, imgsz=imgsz, nc=nc)
    with torch.no_grad(), torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        raw = model(batch["img"])
    leaves: list[torch.Tensor] = []
    preds = _leafify(raw, leaves)

    stock = model.init_criterion()
    smoothed = copy.copy(model)  # shallow copy: same weights, its own criterion attribute
    smoothed.criterion = None
    plugin = install_smoothing(smoothed, LabelSmoothingState(EPS, device), task="detect", mode="fg", num_classes=nc)
    _, s_items = stock(preds, batch)
    _, p_items = plugin(preds, batch)
    checks = {
        "criterion": type(stock).__name__,
        "anchors": int(leaves[-1].shape[-1]),  # the last leaf is a (B, nc, A) scores tensor
        "boxes": int(batch["cls"].shape[0]),
        "non-cls items identical": all(torch.equal(s_items[k], p_items[k]) for k in s_items if k != "cls_loss"),
        "cls_loss stock/plugin": (float(s_items["cls_loss"]), float(p_items["cls_loss"])),
    }
    return stock, plugin, preds, batch, leaves, checks


def detection_steps(
    stock: Any, plugin: Any, preds: Any, batch: dict[str, torch.Tensor], leaves: list[torch.Tensor]
) -> dict[str, Callable[[], None]]:
    """Stock and plugin loss forward + backward on the same detached head outputs."""
    return {
        "stock": _grad_step(lambda: stock(preds, batch)[0], leaves),
        "plugin fg eps=0.1": _grad_step(lambda: plugin(preds, batch)[0], leaves),
    }


def bce_steps(stock: Any, plugin: Any, preds: Any, batch: dict[str, torch.Tensor]) -> dict[str, Callable[[], None]]:
    """The classification term alone: stock ``nn.BCEWithLogitsLoss`` vs the plugin's ``SmoothedBCEWithLogits``.

    The inputs are the real ones, captured from one stock loss call (first branch for E2E): pred scores (B, A, nc) as
    a leaf requiring grad and the assigner's target scores. Both steps reduce the same way as the loss
    (``.sum()``), so their difference is exactly what the plugin adds per ``v8DetectionLoss`` branch.
    """
    from yolo_ls.engine.inject import detection_losses

    s_bce, p_bce = detection_losses(stock)[0].bce, detection_losses(plugin)[0].bce
    seen: dict[str, torch.Tensor] = {}

    def capture(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        seen.setdefault("pred", inputs[0])
        seen.setdefault("target", inputs[1])

    handle = s_bce.register_forward_hook(capture)
    try:
        stock(preds, batch)
    finally:
        handle.remove()
    pred = seen["pred"].detach().clone().requires_grad_()
    target = seen["target"].detach().clone()
    return {
        "stock": _grad_step(lambda: s_bce(pred, target), [pred]),
        "plugin fg eps=0.1": _grad_step(lambda: p_bce(pred, target), [pred]),
    }


def bench_detection(device: torch.device, reps: int, number: int) -> dict[str, Any]:
    from yolo_ls.engine.inject import detection_losses

    out: dict[str, Any] = {}
    for yaml in DET_MODELS:
        print(f"[2] detection {yaml}: building the model and its predictions, timing {reps} reps ...", flush=True)
        stock, plugin, preds, batch, leaves, checks = detection_setup(yaml, device)
        steps = detection_steps(stock, plugin, preds, batch, leaves)
        times, samples = _timed(steps, device, reps, number)
        title = f"[2] detection loss fwd+bwd, {yaml} ({checks['criterion']}), B={DET_B}, {DET_IMGSZ}px, nc={DET_NC}"
        print(ratio_table(times, "stock", f"{title} ({reps} reps x {number} calls)", samples))
        print(
            f"  check: {checks['boxes']} gt boxes, {checks['anchors']} anchors/img, box/dfl items identical: "
            f"{checks['non-cls items identical']}, cls_loss stock {checks['cls_loss stock/plugin'][0]:.4f} "
            f"-> plugin {checks['cls_loss stock/plugin'][1]:.4f}"
        )
        ratio = times["plugin fg eps=0.1"] / times["stock"]
        aa = times[AA] / times["stock"]
        print(f"  plugin/stock = {ratio:.3f}: {_verdict(ratio, DET_TARGET)}; A/A control {aa:.3f}")

        # The same overhead, measured where it arises: the bce module alone, which is far less noisy than the loss.
        n_branches = len(detection_losses(plugin))
        bce_times, bce_samples = _timed(bce_steps(stock, plugin, preds, batch), device, reps, 4 * number)
        print(ratio_table(bce_times, "stock", f"  bce term alone (fwd+bwd, x{n_branches} per loss call)", bce_samples))
        added = n_branches * (bce_times["plugin fg eps=0.1"] - bce_times["stock"])
        implied = 1 + added / times["stock"]
        print(
            f"  added by the plugin: {added * 1e3:.3f} ms per loss call -> implied plugin/stock = {implied:.4f}: "
            f"{_verdict(implied, DET_TARGET)}"
        )
        out[yaml] = {
            "times_s": times,
            "ratio": ratio,
            "samples_s": samples,
            "bce_times_s": bce_times,
            "bce_added_s_per_call": added,
            "implied_ratio_from_bce": implied,
            "number": number,
            "target": DET_TARGET,
            "met": ratio <= DET_TARGET,
            "checks": checks,
        }
    return out


# --------------------------------------------------------------------------------------------------- host syncs
def sync_profile(fn: Callable[[], Any]) -> dict[str, Any]:
    """Run ``fn`` once under sync debug mode "error" and once under "warn"; count the synchronising calls.

    Returns:
        ``{"error_mode_ok": bool, "error": str | None, "where": str | None, "warn_count": int, "warn_sites": list}``;
        ``error_mode_ok`` is False when the call raised because of a synchronising CUDA operation, ``where`` is then
        the innermost Python line that made it (``file:line: code``, and ``stack`` the last four); ``warn_sites``
        lists those lines for the synchronising calls counted under "warn".
    """
    torch.cuda.synchronize()
    prev = torch.cuda.get_sync_debug_mode()
    result: dict[str, Any] = {"error_mode_ok": True, "error": None, "where": None}
    try:
        torch.cuda.set_sync_debug_mode("error")
        try:
            fn()
        except RuntimeError as e:
            if SYNC_MSG not in str(e):
                raise
            result["error_mode_ok"] = False
            result["error"] = str(e).splitlines()[0]
            frames = [f"{Path(f.filename).name}:{f.lineno}: {f.line}" for f in traceback.extract_tb(e.__traceback__)]
            result["where"], result["stack"] = frames[-1], frames[-4:]
    finally:
        torch.cuda.set_sync_debug_mode(prev)
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            torch.cuda.set_sync_debug_mode("warn")
            fn()
        finally:
            torch.cuda.set_sync_debug_mode(prev)
    synced = [w for w in caught if SYNC_MSG in str(w.message)]
    result["warn_count"] = len(synced)
    result["warn_sites"] = sorted({f"{Path(w.filename).name}:{w.lineno}" for w in synced})
    torch.cuda.synchronize()
    return result


def compare_syncs(name: str, stock_fn: Callable[[], Any], plugin_fn: Callable[[], Any]) -> dict[str, Any]:
    """Stock first, under "error"; if stock is sync-free the plugin must be too, else the plugin adds no syncs."""
    stock_fn(), plugin_fn()  # warm: lazy CUDA/cuBLAS initialisation is not the loss's doing
    torch.cuda.synchronize()
    s = sync_profile(stock_fn)
    p = sync_profile(plugin_fn)
    if s["error_mode_ok"]:
        ok = p["error_mode_ok"]
        how = "stock is sync-free under 'error'; plugin " + ("is too" if ok else f"raised at {p['where']}")
    else:
        ok = p["warn_count"] <= s["warn_count"]
        how = (
            f"stock itself syncs (first at {s['where']}); counted under 'warn': stock {s['warn_count']}, "
            f"plugin {p['warn_count']} -> " + ("no added sync" if ok else f"{p['warn_count'] - s['warn_count']} added")
        )
        if not ok:
            how += f" at {sorted(set(p['warn_sites']) - set(s['warn_sites'])) or p['warn_sites']}"
    print(f"  {name}: {'PASS' if ok else 'FAIL'}: {how}")
    return {"ok": ok, "stock": s, "plugin": p, "summary": how}


def bench_syncs(device: torch.device) -> dict[str, Any]:
    print("[3] host-sync check (torch.cuda.set_sync_debug_mode)")
    out: dict[str, Any] = {}
    steps, _ = classification_setup(device)
    names = list(steps)
    out["classification"] = compare_syncs("classification fwd+bwd", steps[names[0]], steps[names[1]])
    for yaml in DET_MODELS:
        steps = detection_steps(*detection_setup(yaml, device)[:5])
        out[yaml] = compare_syncs(f"{yaml} fwd+bwd", *steps.values())
    return out


# ------------------------------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    ap.add_argument("--reps", type=int, default=15, help="timed repetitions per variant (medians are reported)")
    ap.add_argument("--number", type=int, default=0, help="calls per timed sample (0: 50 classification, 20 detection)")
    ap.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads on CPU (0: torch's default); ignored on CUDA"
    )
    ap.add_argument("--profile", action="store_true", help="also print the top operators of the classification losses")
    ap.add_argument("--only", choices=("cls", "det"), default=None, help="run only the classification or detection")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda but torch.cuda.is_available() is False")
    if device.type == "cpu" and args.threads > 0:
        torch.set_num_threads(args.threads)
    from ultralytics.utils import LOGGER

    LOGGER.setLevel(logging.WARNING)  # quiet "Overriding model.yaml nc=80 with nc=10"

    env = environment(str(device))
    print("environment: " + ", ".join(f"{k}={v}" for k, v in env.items()))
    results: dict[str, Any] = {"environment": env, "reps": args.reps}
    misses: list[str] = []
    if args.only != "det":
        cls = results["classification"] = bench_classification(device, args.reps, args.number or 50)
        if args.profile:
            profile_classification(device)
        misses += [
            f"classification {n}/stock {r:.3f}"
            for n, r in cls["ratios_vs_stock"].items()
            if n.startswith("plugin") and r > CLS_TARGET
        ]
    if args.only != "cls":
        results["detection"] = bench_detection(device, args.reps, args.number or 20)
        misses += [f"{y} plugin/stock {r['ratio']:.3f}" for y, r in results["detection"].items() if not r["met"]]
        misses += [
            f"{y} implied by the bce term {r['implied_ratio_from_bce']:.4f}"
            for y, r in results["detection"].items()
            if r["implied_ratio_from_bce"] > DET_TARGET
        ]
    if device.type == "cuda" and args.only is None:
        results["host_syncs"] = bench_syncs(device)

    misses += [f"host syncs: {k}" for k, r in results.get("host_syncs", {}).items() if not r["ok"]]
    return report(results, misses, args.json)


if __name__ == "__main__":
    main()
