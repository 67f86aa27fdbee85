"""Label smoothing against hard targets, measured on your data: ``yolo-ls compare``.

Trains every variant of a sweep (``label_smoothing`` and any plugin argument as comma lists, their product, hard
targets collapsed: :mod:`.sweep`) once per seed, one after another (``backend=local``) or as parallel Ray tasks
(``backend=ray``), then writes ``report.md``, ``report.csv``, ``reliability.png`` and ``curves.png`` into the compare
folder (:mod:`yolo_ls.compare.report`: every run scored on its ``best.pt``). Each run lives in
``<compare>/<variant>/seed<k>``.

The compare folder is an honest cache. Each run folder is keyed by a fingerprint of everything that decides its
training: the full argument set (Ultralytics defaults filled in, plugin arguments normalised), ε, the seed, the model,
the data's identity (path, and every file's relative path, size and modification time) and the yolo-ls and
Ultralytics versions. The fingerprint is written into the run folder before its training starts
(``compare_variant.json``); ``compare_done.json`` is written, atomically, only after the training returned and its
final checkpoints, per-epoch CSVs and final validation are all in place. A re-run reuses a run whose done-marker
fingerprint matches, refuses (before training anything) a folder whose runs were trained with other settings, and
completes a run interrupted anywhere: from ``last.pt`` (or an intact ``best.pt`` when ``last.pt`` is truncated),
by redoing the final strip and validation of a run whose epochs all finished, or from scratch when no checkpoint
survived. Both backends call the same per-run function, :func:`run_one`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import re
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from yolo_ls.compare.report import reading, variant_summary, write_report  # noqa: F401  (the report's public names)
from yolo_ls.compare.sweep import plain_value as _plain
from yolo_ls.compare.sweep import variant_name  # noqa: F401
from yolo_ls.core.args import Choice, PluginArgumentError
from yolo_ls.core.files import read_csv

DONE = "compare_done.json"  # written last, atomically: the variant is finished and its fingerprint is this one
STARTED = "compare_variant.json"  # written before the variant's training: what the folder is being trained as
LOG = "compare.log"  # the variant's stock Ultralytics console output
# Train arguments compare sets itself for every variant: passing them is refused with the reason.
OWNED = {
    "exist_ok": "compare always writes into its own folder: a finished variant is reused, an interrupted one "
    "completed, one trained with other settings refused",
    "resume": "compare resumes an interrupted variant by itself when the command runs again",
    "save_dir": "each run's folder is <project>/<name>/<variant>/seed<k>; choose it with project= and name=",
    "mode": "compare always trains",
}
# Arguments left out of the fingerprint: they change what is printed or plotted, never the trained weights.
NOT_FINGERPRINTED = ("verbose", "plots", "calib_plots", "mode", "model", "data", "project", "name", "exist_ok",
                     "resume", "save_dir", "seed", "label_smoothing", "task")
# compare's own arguments: how the runs are scheduled, never what they train (not train arguments, not fingerprinted)
BACKENDS = Choice(("local", "ray"))
COMPARE_KEYS = ("seeds", "backend", "cpu_per_variant", "gpu_per_variant", "ray_address")
RUN_FOLDER = re.compile(r"seed\d+")


def data_identity(data: Any, skip: Path | None = None) -> dict[str, Any]:
    """The identity of a dataset: its resolved path and a digest of every file's (relative path, size, mtime_ns).

    A folder is walked (through symlinks, loops pruned); a data YAML contributes its bytes and the files of the root
    it names (resolved as Ultralytics does). A name that is not a local path (``coco8.yaml``) is identified by the name.
    Ultralytics' own ``*.cache`` label caches and ``*.npy`` image caches are left out: training writes them.

    Args:
        data (Any): The ``data=`` value (after alias resolution).
        skip (Path | None): A folder never walked (the compare folder, when it lies inside the data root).
    """
    path = Path(str(data)).expanduser()
    if not path.exists():
        return {"name": str(data)}
    path = path.resolve()
    digest, roots, n = hashlib.sha256(), [], 0
    if path.is_dir():
        roots.append(path)
    else:
        digest.update(path.read_bytes())
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml
            from ultralytics.utils import DATASETS_DIR

            try:
                cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except (OSError, yaml.YAMLError):
                cfg = {}
            root = Path(str(cfg.get("path") or path.parent)) if isinstance(cfg, dict) else path.parent
            if not root.is_absolute() and not root.exists():
                root = DATASETS_DIR / root
            if root.is_dir():
                roots.append(root.resolve())
    skip_real = skip.resolve() if skip is not None else None
    for root in roots:
        seen = {root}
        for folder, dnames, fnames in os.walk(root, followlinks=True):
            keep = []
            for d in sorted(dnames):
                real = Path(folder, d).resolve()
                if real not in seen and real != skip_real:
                    seen.add(real)
                    keep.append(d)
            dnames[:] = keep
            for f in sorted(fnames):
                if f.endswith((".cache", ".npy")):
                    continue
                file = Path(folder, f)
                try:
                    st = file.stat()
                except OSError:
                    continue
                digest.update(f"{file.relative_to(root).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
                n += 1
    return {"path": str(path), "files": n, "digest": digest.hexdigest()}


def fingerprint(model: str, data_id: dict[str, Any], eps: float, seed: Any, task: str, stock: dict[str, Any],
                plugin: dict[str, Any]) -> dict[str, Any]:
    """Everything that decides a variant's training, as plain JSON (see the module docstring)."""
    import ultralytics
    from ultralytics.utils import DEFAULT_CFG_DICT

    from yolo_ls._version import __version__
    from yolo_ls.core.args import resolve_plugin_args

    args = {**DEFAULT_CFG_DICT, **stock, **resolve_plugin_args({**plugin, "label_smoothing": eps}, task)}
    args = {k: _plain(v) for k, v in sorted(args.items()) if k not in NOT_FINGERPRINTED}
    return {"yolo_ls": __version__, "ultralytics": ultralytics.__version__, "model": str(model), "task": task,
            "data": data_id, "label_smoothing": float(eps), "seed": _plain(seed), "args": args}


def fingerprint_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The settings in which two fingerprints differ, one ``key: there -> now`` line each."""
    lines = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if key == "args" and isinstance(a, dict) and isinstance(b, dict):
            changed = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
            lines += [f"{k}={a.get(k)!r} there, {b.get(k)!r} now" for k in changed]
        elif key == "data" and a != b:
            lines.append(f"data: {a} there, {b} now (other files, or files changed since)")
        elif a != b:
            lines.append(f"{key}={a!r} there, {b!r} now")
    return lines


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _checkpoint(path: Path) -> dict[str, Any] | None:
    """A checkpoint's ``epoch``, ``best_fitness`` and ``fitness`` (``epoch`` -1: stripped), or None if missing or
    unreadable (a save interrupted half-way)."""
    if not path.is_file():
        return None
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception:  # truncated zip, unpickling error, ...: the file is not a usable checkpoint
        return None
    if not isinstance(ckpt, dict) or "epoch" not in ckpt:
        return None
    fitness = (ckpt.get("train_metrics") or {}).get("fitness")
    return {"epoch": int(ckpt["epoch"]), "best_fitness": ckpt.get("best_fitness"), "fitness": fitness,
            "train_args": ckpt.get("train_args") or {}}


def _replace_copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _strip_atomic(path: Path, updates: dict[str, Any] | None = None) -> None:
    """Ultralytics' ``strip_optimizer`` (what its final_eval does), written through a temporary file."""
    from ultralytics.utils.torch_utils import strip_optimizer

    tmp = path.with_name(f".{path.name}.tmp")
    strip_optimizer(path, s=str(tmp), updates=updates)
    os.replace(tmp, path)


def _plan(run: Path, fp: dict[str, Any], epochs: int) -> tuple[str, str]:
    """What a variant folder needs: (state, reason). state is one of reuse, train, resume, finish, mismatch."""
    done, started = _read_json(run / DONE), _read_json(run / STARTED)
    if done is not None:
        if done.get("fingerprint") == fp:
            return "reuse", "finished"
        old = done.get("fingerprint") or {}
        diff = fingerprint_diff(old, fp) if old else ["made by an older yolo-ls compare, without a fingerprint"]
        return "mismatch", "; ".join(diff)
    if not run.exists() or not any(run.iterdir()):
        return "train", "new"
    if started is None:
        return "mismatch", f"holds files compare did not write (no {STARTED})"
    if started != fp:
        return "mismatch", "; ".join(fingerprint_diff(started, fp))
    last, best = _checkpoint(run / "weights" / "last.pt"), _checkpoint(run / "weights" / "best.pt")
    ck = last if last is not None else best if best is not None and best["epoch"] >= 0 else None
    if ck is None:
        return "train", "interrupted before a readable checkpoint was saved: training it again from scratch"
    source = "last.pt" if ck is last else "best.pt (last.pt is truncated)"
    df = read_csv(run / "results.csv")
    trained = ck["epoch"] + 1 if ck["epoch"] >= 0 else int(df["epoch"].max()) if df is not None and len(df) else 0
    holes = _missing_epochs(run, trained)
    if holes:  # killed between the checkpoint save and the epoch's CSV rows: resuming would leave a hole
        return "train", (f"{holes} lack epoch(s) the checkpoint says were trained (killed between its save and the "
                         "epoch's rows): training it again from scratch")
    if 0 <= ck["epoch"] and ck["epoch"] + 1 < epochs:
        return "resume", f"interrupted after epoch {ck['epoch'] + 1}/{epochs}: resuming from {source}"
    return "finish", f"all epochs trained, interrupted in its final save or validation: finishing from {source}"


def _missing_epochs(run: Path, trained: int) -> list[str]:
    """The per-epoch CSVs of `run` that lack a row of an epoch in 1..trained (each named with the missing epochs)."""
    out = []
    for name in ("results.csv", "calibration.csv"):
        df = read_csv(run / name)
        have = set() if df is None or "epoch" not in df else {int(e) for e in df["epoch"]}
        missing = sorted(set(range(1, trained + 1)) - have)
        if missing:
            out.append(f"{name} (epochs {missing})")
    return out


@contextlib.contextmanager
def _output_to(log: Path | None) -> Iterator[None]:
    """Send the stock console output (Ultralytics' logger, prints, progress bars, warnings) to ``log`` (appended), or
    nowhere when ``log`` is None."""
    from ultralytics.utils import LOGGER

    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") if log is not None else io.StringIO() as f:
        swapped = []
        for h in LOGGER.handlers:
            if type(h) is logging.StreamHandler:  # the console handler (not file or capture handlers, subclasses)
                swapped.append((h, h.setStream(f)))
        try:
            with contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
                yield
        finally:
            for h, stream in swapped:
                h.setStream(stream)


def _finish(run: Path, data: Any, task: str, calib: dict[str, Any]) -> None:
    """Do what an interrupted final_eval() did not: make best.pt the best checkpoint, strip both checkpoints, and
    validate best.pt with calibration to write ``calibration/final.json`` (the trainer's val batch and imgsz)."""
    from yolo_ls.engine.callbacks.calibration import metric_keys, save_final_json
    from yolo_ls.model import YOLO

    wdir = run / "weights"
    last, best = _checkpoint(wdir / "last.pt"), _checkpoint(wdir / "best.pt")
    if last is None:  # truncated last.pt: the intact final best.pt holds the same final state
        _replace_copy(wdir / "best.pt", wdir / "last.pt")
        last = best
    if last["epoch"] >= 0 and (best is None or last["best_fitness"] == last["fitness"]):
        _replace_copy(wdir / "last.pt", wdir / "best.pt")  # the final epoch is the best: its best.pt save may be lost
        best = _checkpoint(wdir / "best.pt")
    if best is None:
        raise RuntimeError(f"{wdir / 'best.pt'} is unreadable and {wdir / 'last.pt'} is not the best epoch")
    if last["epoch"] >= 0:
        _strip_atomic(wdir / "last.pt")
    if best["epoch"] >= 0:
        _strip_atomic(wdir / "best.pt")
    final = run / "calibration" / "final.json"
    if final.exists():
        return
    targs = last["train_args"]
    batch = targs.get("batch", 16)
    val_dir = run / ".final_val"
    metrics = YOLO(str(wdir / "best.pt")).val(
        data=data, imgsz=targs.get("imgsz", 640), batch=batch if task == "obb" or batch < 1 else batch * 2,
        device=targs.get("device"), workers=targs.get("workers", 0), split=targs.get("split", "val"), plots=False,
        half=targs.get("half", False), conf=targs.get("conf"), iou=targs.get("iou", 0.7),
        calib_plots="off", project=str(run), name=val_dir.name, exist_ok=True, **calib,
    )
    shutil.rmtree(val_dir, ignore_errors=True)
    values = metrics.calibration
    val = {k: float(v) for k, v in getattr(metrics, "results_dict", {}).items() if k.startswith("metrics/")}
    save_final_json(final, {"metrics": {k: values[k] for k in metric_keys(task)}, "ece_ts": values.get("ece_ts"),
                            "bins": metrics.calibration_bins, "val_metrics": val,
                            **getattr(metrics, "calibration_ts", {})})


def _check_outputs(run: Path, epochs: int) -> None:
    """Refuse to mark a run done unless every output the report reads is there, one row per trained epoch."""
    df = read_csv(run / "results.csv")
    trained = int(df["epoch"].max()) if df is not None and len(df) else epochs
    holes = _missing_epochs(run, trained)
    if holes:
        raise RuntimeError(f"variant {run}: {', '.join(holes)} lack rows; delete the variant folder to train it again")
    for rel in ("results.csv", "calibration.csv", "calibration/final.json", "weights/best.pt", "weights/last.pt"):
        if not (run / rel).is_file():
            raise RuntimeError(f"variant {run} lacks {rel}: delete the variant folder to train it again")
    if _checkpoint(run / "weights" / "best.pt") is None:
        raise RuntimeError(f"variant {run}: best.pt is unreadable: delete the variant folder to train it again")


def _folder_reason(folder: Path) -> str | None:
    """Why a variant folder is not compare's own (it holds only ``seed<k>`` run folders), or None."""
    if not folder.is_dir():
        return None
    if (folder / DONE).exists() or (folder / STARTED).exists():
        return "made by an older yolo-ls compare (one run per variant folder, before seed<k> folders)"
    other = sorted(p.name for p in folder.iterdir() if not (p.is_dir() and RUN_FOLDER.fullmatch(p.name)))
    return f"holds files compare did not write ({', '.join(other[:3])}{', ...' if len(other) > 3 else ''})" if other \
        else None


def run_one(job: dict[str, Any]) -> dict[str, Any]:
    """Train, resume or finish one run (variant × seed) as planned, check its outputs, mark it done.

    The per-run step of both backends: the local loop calls it, and each Ray task calls it in its worker. Its stock
    console output goes to ``compare.log`` in the run folder.

    Returns:
        ``{"summary": the run's numbers, "seconds": wall time}``.
    """
    from yolo_ls.model import YOLO

    run, state, fp = Path(job["run"]), job["state"], job["fingerprint"]
    t0 = time.time()
    if state == "train" and run.exists():
        shutil.rmtree(run)  # ours (its fingerprint matched) and unusable: no stale rows may survive
    if state == "train":
        run.mkdir(parents=True, exist_ok=True)
        _write_json_atomic(run / STARTED, fp)
    with _output_to(run / LOG):
        yolo = None
        if state == "train":
            yolo = YOLO(job["model"])
            yolo.train(data=job["data"], seed=job["seed"], project=str(run.parent), name=run.name, exist_ok=True,
                       label_smoothing=job["eps"], **job["plugin"], **job["stock"])
        elif state == "resume":
            last = run / "weights" / "last.pt"
            if _checkpoint(last) is None:
                _replace_copy(run / "weights" / "best.pt", last)
            again = {k: v for k, v in job["plugin"].items() if callable(v)}  # a callable schedule is passed again
            yolo = YOLO(str(last))
            yolo.train(resume=True, **again)
        else:
            _finish(run, job["data"], job["task"], job["calib"])
    if yolo is not None and Path(yolo.trainer.save_dir).resolve() != run.resolve():
        raise RuntimeError(f"Ultralytics wrote run {run} to {yolo.trainer.save_dir}, not to {run}")
    _check_outputs(run, job["epochs"])
    summary = variant_summary(run, job["task"])
    _write_json_atomic(run / DONE, {"fingerprint": fp, "summary": summary})
    return {"summary": summary, "seconds": time.time() - t0}


def _compare_options(backend: Any, cpu_per_variant: Any, gpu_per_variant: Any) -> tuple[str, float, float]:
    """compare's own scheduling arguments, checked with the plugin's checks."""
    from yolo_ls.core.checks import FloatRange, NonNegative

    backend = BACKENDS("backend", backend)
    cpu = FloatRange(0.0, 1024.0, lo_closed=False, example=1)("cpu_per_variant", cpu_per_variant)
    gpu = NonNegative(example=1)("gpu_per_variant", gpu_per_variant)
    return backend, cpu, gpu


def compare(
    model: str,
    data: str,
    label_smoothing: Sequence[float] | str | float = (0.0, 0.05, 0.1),
    project: str | None = None,
    name: str = "compare",
    seeds: Sequence[int] | str | int | None = None,
    backend: str = "local",
    cpu_per_variant: float = 1,
    gpu_per_variant: float = 0,
    ray_address: str | None = None,
    **train_args: Any,
) -> Path:
    """Train every variant of a sweep once per seed, then write the comparison report. Returns the compare folder.

    ``label_smoothing`` and any plugin argument in ``train_args`` (``ls_mode``, ``ls_schedule``, ``ls_final``, ...)
    may be a comma list (``"0,0.1"``) or a list/tuple: the variants are their Cartesian product, with every variant
    whose ε is 0 at every epoch collapsed into the one hard-target run (:mod:`.sweep`). The console shows one
    progress line per run (its stock output goes to ``compare.log`` in the run folder) and the report table at the
    end. See the module docstring for how finished and interrupted runs are handled.

    Args:
        model (str): Model to train from, i.e. ``yolo11n-cls.yaml``.
        data (str): Dataset (``digits``, ``digits-det`` or your own).
        label_smoothing (Sequence[float] | str | float): The ε values, i.e. ``0,0.05,0.1``; one value when another
            argument varies.
        project (str | None): Parent folder, resolved exactly as Ultralytics resolves a train ``project`` (a relative
            one lies under ``runs_dir/<task>``); default ``runs_dir/<task>``.
        name (str): Compare folder name.
        seeds (Sequence[int] | str | int | None): Seeds each variant is trained with, i.e. ``0,1,2`` (default: the
            ``seed`` train argument, 0 unless given). ``seeds`` and ``seed`` cannot both be given.
        backend (str): ``local`` (one run after another in this process) or ``ray`` (each run a Ray task, in
            parallel).
        cpu_per_variant (float): ``backend=ray``: CPUs each run reserves (``num_cpus`` of its task).
        gpu_per_variant (float): ``backend=ray``: GPUs each run reserves (``num_gpus``; fractions share a GPU).
        ray_address (str | None): ``backend=ray``: an existing cluster to join (``ray.init(address=...)``); default:
            start a local Ray for this compare and shut it down after.
        **train_args (Any): Any other train argument (epochs, imgsz, ls_mode, ls_schedule, ...), the same for all
            variants unless a plugin argument is a list. ``exist_ok``, ``resume``, ``save_dir`` and ``mode`` are
            compare's own and are refused.

    Raises:
        PluginArgumentError: For a bad value or combination, fewer than two runs per seed and variant overall, an
            argument compare sets itself, an unwritable project, or a compare folder holding runs trained with other
            settings (nothing is trained then).
        SyntaxError: For an unknown argument.
    """
    from types import SimpleNamespace

    from ultralytics.cfg import get_save_dir
    from ultralytics.utils import DEFAULT_CFG_DICT

    from yolo_ls.compare.sweep import describe_collapse, expand_variants, parse_seeds
    from yolo_ls.core.args import check_keys, split_plugin_args
    from yolo_ls.core.files import unwritable_reason
    from yolo_ls.datasets import resolve_data
    from yolo_ls.model import YOLO

    owned = [k for k in train_args if k in OWNED]
    if owned:
        raise PluginArgumentError(" ".join(f"'{k}' cannot be passed to compare: {OWNED[k]}." for k in owned))
    backend, cpu, gpu = _compare_options(backend, cpu_per_variant, gpu_per_variant)
    stock, plugin = split_plugin_args(train_args)
    check_keys(stock)
    if "seed" in stock and seeds is not None:
        raise PluginArgumentError(f"give the seeds once: 'seeds={seeds}' or 'seed={stock['seed']}', not both.")
    seed_list = parse_seeds(stock.pop("seed", 0) if seeds is None else seeds)
    if plugin.get("calibration") is False:
        raise PluginArgumentError("compare reads each variant's calibration: 'calibration=False' cannot be used here")
    with _output_to(None):  # building the model prints its summary; the runs' logs have it
        task = YOLO(model).task
    epochs = int(stock.get("epochs", DEFAULT_CFG_DICT["epochs"]))
    variants = expand_variants({"label_smoothing": label_smoothing, **plugin}, task, epochs)  # fail before training
    if len(variants) < 2 and len(seed_list) < 2:
        collapsed = f" ({describe_collapse(variants)[0]})" if describe_collapse(variants) else ""
        raise PluginArgumentError(
            f"compare needs at least two variants or two seeds, got one: {variants[0].label}{collapsed}. Give "
            "label_smoothing (or another plugin argument) two or more values, i.e. label_smoothing=0,0.1, or "
            "seeds=0,1,2."
        )
    out = get_save_dir(SimpleNamespace(project=project, name=name, task=task, mode="train", exist_ok=True))
    reason = unwritable_reason(out)
    if reason:
        raise PluginArgumentError(f"'project={project}' cannot be written: the compare folder {out} is under {reason}.")
    data = resolve_data(data)
    data_id = data_identity(data, skip=out)
    calib = {k: v for k, v in plugin.items() if k in ("calib_bins", "calib_conf")}
    jobs, mismatched = [], []
    for v in variants:
        why = _folder_reason(out / v.name)
        if why:
            mismatched.append(f"  {v.name}: {why}")
            continue
        for seed in seed_list:
            run = out / v.name / f"seed{seed}"
            fp = fingerprint(model, data_id, v.eps, seed, task, stock, v.plugin)
            state, why = _plan(run, fp, epochs)
            if state == "mismatch":
                mismatched.append(f"  {v.name}/{run.name}: {why}")
            jobs.append({"variant": v, "run": run, "fingerprint": fp, "state": state, "why": why, "model": model,
                         "data": data, "task": task, "eps": v.eps, "seed": seed, "plugin": v.plugin, "stock": stock,
                         "calib": {**calib, **{k: v.plugin[k] for k in ("calib_bins", "calib_conf") if k in v.plugin}},
                         "epochs": epochs})
    if mismatched:
        raise PluginArgumentError(
            f"the compare folder {out} holds variants trained with other settings, so its numbers would not be the "
            "ones of this command:\n" + "\n".join(mismatched) + "\nChoose another name= for this comparison (or "
            "delete those variant folders yourself to retrain them). Nothing was trained."
        )

    console, t_all = sys.stdout, time.time()
    for line in describe_collapse(variants):
        _say(console, f"yolo-ls: {line}")
    for i, job in enumerate(jobs, 1):
        job["head"] = f"yolo-ls: [{i}/{len(jobs)}] {job['variant'].name} seed {job['seed']}"
    summaries: dict[int, dict[str, Any]] = {}
    todo = []
    for i, job in enumerate(jobs):
        if job["state"] == "reuse":
            _check_outputs(job["run"], epochs)  # marked done, but files the report reads may have been deleted since
            _say(console, f"{job['head']}: reusing the finished variant in {job['run']}")
            summaries[i] = variant_summary(job["run"], task)
        else:
            todo.append(i)
    if backend == "ray" and todo:
        summaries.update(_run_ray({i: jobs[i] for i in todo}, cpu, gpu, ray_address, console))
    else:
        for i in todo:
            job = jobs[i]
            _say(console, f"{job['head']}: {'training' if job['why'] == 'new' else job['why']} ... "
                          f"(log: {job['run'] / LOG})")
            result = run_one({k: v for k, v in job.items() if k not in ("variant", "head")})
            _say(console, f"{job['head']}: done in {result['seconds']:.1f} s")
            summaries[i] = result["summary"]

    varied = _varied_keys(variants)
    rows = []
    for i, job in enumerate(jobs):
        v = job["variant"]
        rows.append({"variant": v.name, "run": f"{v.name}/{job['run'].name}", "seed": job["seed"], "label": v.label,
                     "label_smoothing": v.eps, "hard": v.hard,
                     **{k: v.values.get(k) for k in varied if k != "label_smoothing"}, **summaries[i]})
    command = {"model": model, "data": data, "label_smoothing": _list_text(label_smoothing),
               "seeds": ",".join(str(s) for s in seed_list),
               **{k: (_list_text(v) if k in plugin else v) for k, v in train_args.items() if k != "seed"},
               **({"backend": backend} if backend != "local" else {})}
    keys = [k for k in varied if k != "label_smoothing"]
    table_rows = write_report(out, rows, task, command=command, keys=["label_smoothing", *keys],
                              notes=describe_collapse(variants))
    from yolo_ls.compare.report import variant_table

    _say(console, f"\n{variant_table(table_rows, task, ['label_smoothing', *keys])}\n\n{reading(table_rows, task)}\n")
    _say(console, f"yolo-ls: compare finished in {time.time() - t_all:.1f} s; report written to {out / 'report.md'}")
    return out


def _varied_keys(variants: Sequence[Any]) -> list[str]:
    keys: list[str] = []
    for v in variants:
        keys += [k for k in v.values if k not in keys]
    return keys


def _list_text(value: Any) -> str:
    return ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)


def _run_ray(jobs: dict[int, dict[str, Any]], cpu: float, gpu: float, address: str | None,
             console: TextIO) -> dict[int, dict[str, Any]]:
    """Every run a Ray task (``num_cpus=cpu``, ``num_gpus=gpu``) calling :func:`run_one`; a line per run as it ends.

    Joins the cluster at ``address``, or the Ray already initialised in this process, or starts a local one (no
    dashboard) and shuts it down after.
    """
    try:
        import ray
    except ImportError:
        raise PluginArgumentError("backend=ray needs Ray: pip install 'yolo-ls[ray]' (or pip install 'ray[tune]')") \
            from None
    for h in logging.getLogger("ray").handlers:  # Ray's handler keeps the stderr of its import, i.e. a run's log
        if isinstance(h, logging.StreamHandler) and getattr(h.stream, "closed", False):  # that compare has closed
            h.stream = sys.stderr  # not setStream(): it flushes the closed one first
    started = False
    if not ray.is_initialized():
        kw: dict[str, Any] = {"address": address} if address else {"include_dashboard": False}
        ray.init(**kw, log_to_driver=False, logging_level=logging.ERROR)
        started = True
    try:
        task = ray.remote(num_cpus=cpu, num_gpus=gpu, max_retries=0)(run_one)
        refs = {}
        for i, job in jobs.items():
            _say(console, f"{job['head']}: {'training' if job['why'] == 'new' else job['why']} as a Ray task ... "
                          f"(log: {job['run'] / LOG})")
            refs[task.remote({k: v for k, v in job.items() if k not in ("variant", "head")})] = i
        out, pending = {}, list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                i = refs[ref]
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayTaskError as e:  # the run's own error, as the local backend raises it
                    cause = getattr(e, "cause", None)
                    raise (cause if isinstance(cause, BaseException) else e) from None
                _say(console, f"{jobs[i]['head']}: done in {result['seconds']:.1f} s (Ray)")
                out[i] = result["summary"]
        return out
    finally:
        if started:
            ray.shutdown()


def _say(stream: TextIO, text: str) -> None:
    print(text, file=stream, flush=True)
