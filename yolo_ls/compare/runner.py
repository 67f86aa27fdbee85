"""Label smoothing against hard targets, measured on your data: ``yolo-ls compare``.

Trains every variant of a sweep (:mod:`.sweep`) once per seed, one after another (``backend=local``) or as parallel
Ray tasks (``backend=ray``), each in ``<compare>/<variant>/seed<k>``, then writes ``report.md``, ``report.csv``,
``reliability.png`` and ``curves.png`` into the compare folder (:mod:`.report`). Finished runs are reused and
interrupted ones completed (:mod:`.cache`); both backends call the same per-run function, :func:`run_one`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from yolo_ls.compare.cache import (  # noqa: F401  (importable from here, as before the cache had a module)
    DONE,
    NOT_FINGERPRINTED,
    RUN_FOLDER,
    STARTED,
    _check_outputs,
    _checkpoint,
    _folder_reason,
    _missing_epochs,
    _plan,
    _read_json,
    _replace_copy,
    _strip_atomic,
    _write_json_atomic,
    data_identity,
    fingerprint,
    fingerprint_diff,
)
from yolo_ls.compare.report import reading, variant_summary, write_report  # noqa: F401  (the report's public names)
from yolo_ls.compare.sweep import variant_name  # noqa: F401
from yolo_ls.core.args import Choice, PluginArgumentError

LOG = "compare.log"  # the variant's stock Ultralytics console output
# Train arguments compare sets itself for every variant: passing them is refused with the reason.
OWNED = {
    "exist_ok": "compare always writes into its own folder: a finished variant is reused, an interrupted one "
    "completed, one trained with other settings refused",
    "resume": "compare resumes an interrupted variant by itself when the command runs again",
    "save_dir": "each run's folder is <project>/<name>/<variant>/seed<k>; choose it with project= and name=",
    "mode": "compare always trains",
}
# compare's own arguments: how the runs are scheduled, never what they train (not train arguments, not fingerprinted)
BACKENDS = Choice(("local", "ray"))
COMPARE_KEYS = ("seeds", "backend", "cpu_per_variant", "gpu_per_variant", "ray_address")


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
                            "d_ece_ts": values.get("d_ece_ts"),
                            "bins": metrics.calibration_bins, "val_metrics": val,
                            **getattr(metrics, "calibration_ts", {})})


def run_one(job: dict[str, Any]) -> dict[str, Any]:
    """Train, resume or finish one run (variant × seed) as planned, check its outputs, mark it done.

    The per-run step of both backends: the local loop calls it, and each Ray task calls it in its worker. Its stock
    console output goes to ``compare.log`` in the run folder.

    Returns:
        ``{"summary": the run's numbers, "seconds": wall time}``.
    """
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
            yolo = _model(job["model"], job, run)
            yolo.train(data=job["data"], seed=job["seed"], project=str(run.parent), name=run.name, exist_ok=True,
                       label_smoothing=job["eps"], **job["plugin"], **job["stock"])
        elif state == "resume":
            last = run / "weights" / "last.pt"
            if _checkpoint(last) is None:
                _replace_copy(run / "weights" / "best.pt", last)
            again = {k: v for k, v in job["plugin"].items() if callable(v)}  # a callable schedule is passed again
            yolo = _model(str(last), job, run)
            yolo.train(resume=True, **again)
        else:
            _finish(run, job["data"], job["task"], job["calib"])
    if yolo is not None and Path(yolo.trainer.save_dir).resolve() != run.resolve():
        raise RuntimeError(f"Ultralytics wrote run {run} to {yolo.trainer.save_dir}, not to {run}")
    _check_outputs(run, job["epochs"])
    summary = variant_summary(run, job["task"])
    _write_json_atomic(run / DONE, {"fingerprint": fp, "summary": summary})
    return {"summary": summary, "seconds": time.time() - t0}


def _model(weights: str, job: dict[str, Any], run: Path) -> Any:
    """The run's ``yolo_ls.YOLO``; on the local backend it prints one console line per epoch."""
    from yolo_ls.model import YOLO

    yolo = YOLO(weights)
    if job.get("progress") is not None:
        yolo.add_callback("on_fit_epoch_end", _epoch_progress(job["progress"], job.get("head", str(run))))
    return yolo


def _epoch_progress(stream: TextIO, head: str) -> Any:
    """An ``on_fit_epoch_end`` callback printing ``HEAD: epoch 3/10 (12.1 s/epoch)`` to the compare console."""
    started, printed = time.time(), set()

    def callback(trainer: Any) -> None:
        done = trainer.epoch + 1 - getattr(trainer, "start_epoch", 0)
        if done < 1 or trainer.epoch >= trainer.epochs or trainer.epoch in printed:  # the final val of best.pt too
            return
        printed.add(trainer.epoch)
        per_epoch = (time.time() - started) / done
        _say(stream, f"{head}: epoch {trainer.epoch + 1}/{trainer.epochs} ({per_epoch:.1f} s/epoch)")

    return callback


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

    ``label_smoothing`` and any plugin argument in ``train_args`` may be a comma list (``"0,0.1"``) or a list: the
    variants are their Cartesian product, every variant whose ε is 0 at every epoch collapsed into one hard-target run.
    Each run's stock output goes to ``compare.log`` in its folder; the console shows a line per run and the table.

    Args:
        model (str): Model to train from, i.e. ``yolo11n-cls.yaml``.
        data (str): Dataset (``digits``, ``digits-det`` or your own).
        label_smoothing (Sequence[float] | str | float): The ε values, i.e. ``0,0.05,0.1``.
        project (str | None): Parent folder, resolved as a train ``project`` is; default ``runs_dir/<task>``.
        name (str): Compare folder name.
        seeds (Sequence[int] | str | int | None): Seeds of each variant, i.e. ``0,1,2``; default ``seed`` (not both).
        backend (str): ``local`` (one run after another in this process) or ``ray`` (each run a Ray task).
        cpu_per_variant (float): ``backend=ray``: CPUs each run reserves (``num_cpus``).
        gpu_per_variant (float): ``backend=ray``: GPUs each run reserves (``num_gpus``; fractions share a GPU).
        ray_address (str | None): ``backend=ray``: a cluster to join; default: a local Ray, shut down after.
        **train_args (Any): Any other train argument, the same for all variants unless a plugin argument is a list;
            ``exist_ok``, ``resume``, ``save_dir`` and ``mode`` are compare's own and refused.

    Raises:
        PluginArgumentError: For a bad value or combination, fewer than two runs in all, an argument compare sets
            itself, an unwritable project, or a folder holding runs trained with other settings (nothing is trained).
        SyntaxError: For an unknown argument.
    """
    from yolo_ls.compare.report import console_columns, variant_table
    from yolo_ls.compare.sweep import describe_collapse
    from yolo_ls.datasets import resolve_data

    backend, cpu, gpu, stock, plugin, seed_list = _check_request(train_args, seeds, backend, cpu_per_variant,
                                                                 gpu_per_variant)
    task, epochs, variants = _variants(model, stock, plugin, label_smoothing, seed_list)
    out = _compare_folder(project, name, task)
    data = resolve_data(data)
    _check_against_data(variants, data, task)
    jobs = _plan_jobs(out, variants, seed_list, {"model": model, "data": data, "task": task, "stock": stock,
                                                 "epochs": epochs}, data_identity(data, skip=out), plugin)
    console, t_all = sys.stdout, time.time()
    for line in describe_collapse(variants):
        _say(console, f"yolo-ls: {line}")
    summaries = _run_jobs(jobs, backend, cpu, gpu, ray_address, console)
    command = {"model": model, "data": data, "label_smoothing": _list_text(label_smoothing),
               "seeds": ",".join(str(s) for s in seed_list),
               **{k: (_list_text(v) if k in plugin else v) for k, v in train_args.items() if k != "seed"},
               **({"backend": backend} if backend != "local" else {})}
    table_rows, keys = _write_runs_report(out, jobs, variants, summaries, task, command)
    table = variant_table(table_rows, task, ["label_smoothing", *keys], columns=console_columns(task))
    _say(console, f"\n{table}\n(more columns in report.md)\n\n{reading(table_rows, task)}\n")
    _say(console, f"yolo-ls: compare finished in {time.time() - t_all:.1f} s; report written to {out / 'report.md'}")
    return out


def _write_runs_report(out: Path, jobs: list[dict[str, Any]], variants: Sequence[Any],
                       summaries: dict[int, dict[str, Any]], task: str, command: dict[str, Any]
                       ) -> tuple[list[dict[str, Any]], list[str]]:
    """Write the report from a row per run; returns the variant table's rows and the varied keys besides ε."""
    from yolo_ls.compare.sweep import describe_collapse

    keys = [k for k in _varied_keys(variants) if k != "label_smoothing"]
    rows = []
    for i, job in enumerate(jobs):
        v = job["variant"]
        rows.append({"variant": v.name, "run": f"{v.name}/{job['run'].name}", "seed": job["seed"], "label": v.label,
                     "label_smoothing": v.eps, "hard": v.hard, **{k: v.values.get(k) for k in keys}, **summaries[i]})
    table_rows = write_report(out, rows, task, command=command, keys=["label_smoothing", *keys],
                              notes=describe_collapse(variants))
    return table_rows, keys


def _check_request(train_args: dict[str, Any], seeds: Any, backend: Any, cpu_per_variant: Any,
                   gpu_per_variant: Any) -> tuple[str, float, float, dict[str, Any], dict[str, Any], list[int]]:
    """The checked ``(backend, cpu, gpu, stock args, plugin args, seeds)`` of a compare call."""
    from yolo_ls.compare.sweep import parse_seeds
    from yolo_ls.core.args import check_keys, split_plugin_args

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
    return backend, cpu, gpu, stock, plugin, seed_list


def _variants(model: str, stock: dict[str, Any], plugin: dict[str, Any], label_smoothing: Any,
              seed_list: list[int]) -> tuple[str, int, list[Any]]:
    """``(task, epochs, variants)``; refuses a comparison of fewer than two runs per seed and variant."""
    from ultralytics.utils import DEFAULT_CFG_DICT

    from yolo_ls.compare.sweep import describe_collapse, expand_variants
    from yolo_ls.model import YOLO

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
    return task, epochs, variants


def _check_against_data(variants: list[Any], data: Any, task: str) -> None:
    """Every variant's class-dependent arguments (ls_mode=exclusive, ls_prior, ls_matrix) checked against the dataset
    before the first run trains, as the trainer would check each one in turn."""
    from yolo_ls.core.args import check_num_classes, resolve_plugin_args
    from yolo_ls.engine.trainers import dataset_num_classes

    needs = []
    for v in variants:
        resolved = resolve_plugin_args({**v.plugin, "label_smoothing": v.eps}, task)
        if resolved["ls_mode"] == "exclusive" or resolved["ls_prior"] is not None or resolved["ls_matrix"] is not None:
            needs.append((v, resolved))
    if needs:
        with _output_to(None):
            nc, names = dataset_num_classes(data, task, with_names=True)
        for v, resolved in needs:
            try:
                check_num_classes(resolved, nc, names)
            except PluginArgumentError as e:
                raise PluginArgumentError(f"variant {v.label}: {e} Nothing was trained.") from None


def _compare_folder(project: str | None, name: str, task: str) -> Path:
    """The compare folder, resolved as Ultralytics resolves a train folder; refused when it cannot be written."""
    from types import SimpleNamespace

    from ultralytics.cfg import get_save_dir

    from yolo_ls.core.files import unwritable_reason

    out = get_save_dir(SimpleNamespace(project=project, name=name, task=task, mode="train", exist_ok=True))
    reason = unwritable_reason(out)
    if reason:
        raise PluginArgumentError(f"'project={project}' cannot be written: the compare folder {out} is under {reason}.")
    return out


def _plan_jobs(out: Path, variants: Sequence[Any], seed_list: list[int], common: dict[str, Any],
               data_id: dict[str, Any], plugin: dict[str, Any]) -> list[dict[str, Any]]:
    """One job per variant and seed with its fingerprint and plan; refuses (before any training) when a folder holds
    runs trained with other settings. ``common``: the jobs' ``model``, ``data``, ``task``, ``stock`` and ``epochs``."""
    calib = {k: v for k, v in plugin.items() if k in ("calib_bins", "calib_conf")}
    jobs, mismatched = [], []
    for v in variants:
        why = _folder_reason(out / v.name)
        if why:
            mismatched.append(f"  {v.name}: {why}")
            continue
        for seed in seed_list:
            run = out / v.name / f"seed{seed}"
            fp = fingerprint(common["model"], data_id, v.eps, seed, common["task"], common["stock"], v.plugin)
            state, why = _plan(run, fp, common["epochs"])
            if state == "mismatch":
                mismatched.append(f"  {v.name}/{run.name}: {why}")
            jobs.append({"variant": v, "run": run, "fingerprint": fp, "state": state, "why": why,
                         "model": common["model"], "data": common["data"], "task": common["task"], "eps": v.eps,
                         "seed": seed, "plugin": v.plugin, "stock": common["stock"],
                         "calib": {**calib, **{k: v.plugin[k] for k in ("calib_bins", "calib_conf") if k in v.plugin}},
                         "epochs": common["epochs"]})
    if mismatched:
        raise PluginArgumentError(
            f"the compare folder {out} holds variants trained with other settings, so its numbers would not be the "
            "ones of this command:\n" + "\n".join(mismatched) + "\nChoose another name= for this comparison (or "
            "delete those variant folders yourself to retrain them). Nothing was trained."
        )
    return jobs


def _run_jobs(jobs: list[dict[str, Any]], backend: str, cpu: float, gpu: float, ray_address: str | None,
              console: TextIO) -> dict[int, dict[str, Any]]:
    """Each job's summary by index: reused when finished, else trained locally or as Ray tasks."""
    for i, job in enumerate(jobs, 1):
        job["head"] = f"yolo-ls: [{i}/{len(jobs)}] {job['variant'].name} seed {job['seed']}"
    summaries: dict[int, dict[str, Any]] = {}
    todo = []
    for i, job in enumerate(jobs):
        if job["state"] == "reuse":
            _check_outputs(job["run"], job["epochs"])  # marked done, but files the report reads may have been deleted
            _say(console, f"{job['head']}: reusing the finished variant in {job['run']}")
            summaries[i] = variant_summary(job["run"], job["task"])
        else:
            todo.append(i)
    if backend == "ray" and todo:
        summaries.update(_run_ray({i: jobs[i] for i in todo}, cpu, gpu, ray_address, console))
    else:
        spent: list[float] = []
        for n, i in enumerate(todo, 1):
            job = jobs[i]
            _say(console, f"{job['head']}: {'training' if job['why'] == 'new' else job['why']} ... "
                          f"(log: {job['run'] / LOG})")
            result = run_one({**{k: v for k, v in job.items() if k != "variant"}, "progress": console})
            spent.append(result["seconds"])
            left = len(todo) - n
            eta = f"; about {_duration(left * sum(spent) / len(spent))} left for {left} more" if left else ""
            _say(console, f"{job['head']}: done in {result['seconds']:.1f} s{eta}")
            summaries[i] = result["summary"]
    return summaries


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


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def _say(stream: TextIO, text: str) -> None:
    print(text, file=stream, flush=True)
