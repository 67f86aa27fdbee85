"""Label smoothing against hard targets, measured on your data: ``yolo-ls compare``.

Trains one variant per ε from the same seed, one after another, then writes ``report.md``, ``report.csv``,
``reliability.png`` (the variants' final reliability curves overlaid) and ``curves.png`` (ECE and accuracy against
epoch) into the compare folder.

The compare folder is an honest cache. Each variant folder is keyed by a fingerprint of everything that decides its
training: the full argument set (Ultralytics defaults filled in, plugin arguments normalised), ε, the seed, the model,
the data's identity (path, and every file's relative path, size and modification time) and the yolo-ls and
Ultralytics versions. The fingerprint is written into the variant folder before its training starts
(``compare_variant.json``); ``compare_done.json`` is written, atomically, only after the training returned and its
final checkpoints, per-epoch CSVs and final validation are all in place. A re-run reuses a variant whose done-marker
fingerprint matches, refuses (before training anything) a folder whose variants were trained with other settings, and
completes a variant interrupted anywhere: from ``last.pt`` (or an intact ``best.pt`` when ``last.pt`` is truncated),
by redoing the final strip and validation of a run whose epochs all finished, or from scratch when no checkpoint
survived.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import math
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from yolo_ls.config import PluginArgumentError
from yolo_ls.utils import read_csv

DONE = "compare_done.json"  # written last, atomically: the variant is finished and its fingerprint is this one
STARTED = "compare_variant.json"  # written before the variant's training: what the folder is being trained as
LOG = "compare.log"  # the variant's stock Ultralytics console output
# Train arguments compare sets itself for every variant: passing them is refused with the reason.
OWNED = {
    "exist_ok": "compare always writes into its own folder: a finished variant is reused, an interrupted one "
    "completed, one trained with other settings refused",
    "resume": "compare resumes an interrupted variant by itself when the command runs again",
    "save_dir": "each variant's folder is <project>/<name>/eps<ε>; choose it with project= and name=",
    "mode": "compare always trains",
}
# Arguments left out of the fingerprint: they change what is printed or plotted, never the trained weights.
NOT_FINGERPRINTED = ("verbose", "plots", "calib_plots", "mode", "model", "data", "project", "name", "exist_ok",
                     "resume", "save_dir", "seed", "label_smoothing", "task")


def parse_eps_list(value: Any) -> list[float]:
    """``0,0.05,0.1`` (string, tuple or list) -> [0.0, 0.05, 0.1], each checked like ``label_smoothing``."""
    from yolo_ls.config import ARG_TABLE

    items = value.split(",") if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else [value]
    out = []
    for v in items:
        if isinstance(v, str):
            try:
                v = float(v)
            except ValueError:
                msg = f"'label_smoothing={value}' must be a comma-separated list of floats, i.e. 0,0.05,0.1"
                raise PluginArgumentError(msg) from None
        out.append(ARG_TABLE["label_smoothing"].check("label_smoothing", v))
    if len(out) < 2 or len(set(out)) != len(out):
        raise PluginArgumentError(f"compare needs at least two different ε values, got label_smoothing={value}")
    return out


def variant_name(eps: float) -> str:
    """Folder name of a variant, unique per distinct float: ``eps0.1``, ``eps0`` (6 significant digits when they
    round-trip, else the shortest exact ``repr``, i.e. ``eps0.1000001``)."""
    short = f"{eps:g}"
    return f"eps{short if float(short) == eps else repr(float(eps))}"


def variant_summary(run: Path, task: str) -> dict[str, Any]:
    """The numbers of one finished variant, read from its own results.csv and calibration.csv (last epoch)."""
    res, cal = read_csv(run / "results.csv"), read_csv(run / "calibration.csv")
    last_res, last_cal = res.iloc[-1], cal.iloc[-1]
    row: dict[str, Any] = {"epochs": int(last_res["epoch"])}
    if task == "classify":
        row["top1"] = float(last_res["metrics/accuracy_top1"])
        for k in ("ece", "mce", "brier", "nll", "overconfidence", "ece_ts"):
            row[k] = float(last_cal[k])
    else:
        row["mAP50-95"] = float(last_res["metrics/mAP50-95(B)"])
        row["mAP50"] = float(last_res["metrics/mAP50(B)"])
        for k in ("d_ece", "d_mce", "d_confidence", "d_accuracy"):
            row[k] = float(last_cal[k])
    return row


def reading(rows: list[dict[str, Any]], task: str) -> str:
    """One plain paragraph: which variant is best calibrated, and what it cost in accuracy."""
    cal_key, acc_key = ("ece", "top1") if task == "classify" else ("d_ece", "mAP50-95")
    finite = [r for r in rows if math.isfinite(r[cal_key])]
    if not finite:
        return "No variant produced a calibration measurement (empty val split?)."
    best_cal = min(finite, key=lambda r: r[cal_key])
    best_acc = max(rows, key=lambda r: r[acc_key])
    hard = next((r for r in rows if r["label_smoothing"] == 0), None)
    text = (f"The best calibrated variant is ε={best_cal['label_smoothing']:g} ({cal_key} {best_cal[cal_key]:.4f}). ")
    if best_cal is best_acc:
        text += f"It is also the most accurate ({acc_key} {best_acc[acc_key]:.4f}), so it cost nothing in accuracy. "
    else:
        cost = best_acc[acc_key] - best_cal[acc_key]
        text += (f"It gives up {cost:.4f} {acc_key} against the most accurate variant, "
                 f"ε={best_acc['label_smoothing']:g} ({acc_key} {best_acc[acc_key]:.4f}). ")
    if hard is not None and hard is not best_cal:
        delta = hard[cal_key] - best_cal[cal_key]
        text += f"Against hard targets (ε=0, {cal_key} {hard[cal_key]:.4f}) it lowers {cal_key} by {delta:.4f}. "
    elif hard is best_cal:
        text += "Hard targets (ε=0) were the best calibrated here: smoothing did not help calibration on this data. "
    if task == "classify":
        ts = [r for r in rows if math.isfinite(r["ece_ts"])]
        if ts:
            best_ts = min(ts, key=lambda r: r["ece_ts"])
            text += (f"Temperature scaling fitted on val brings the variants to ECE "
                     f"{min(r['ece_ts'] for r in ts):.4f}–{max(r['ece_ts'] for r in ts):.4f} "
                     f"(lowest: ε={best_ts['label_smoothing']:g})")
            if hard is not None and math.isfinite(hard["ece_ts"]):
                text += f"; hard targets plus temperature scaling reach {hard['ece_ts']:.4f}"
            text += ": that one-parameter post-hoc fix is the yardstick for what smoothing bought."
    return text.strip()


def _markdown_table(rows: list[dict[str, Any]]) -> str:
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in r.values()) + " |")
    return "\n".join(lines)


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


def _plain(value: Any) -> Any:
    """A JSON-stable form of an argument value (a callable by its import path, tuples as lists)."""
    if callable(value):
        return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', type(value).__name__)}"
    return json.loads(json.dumps(value, default=repr))


def fingerprint(model: str, data_id: dict[str, Any], eps: float, seed: Any, task: str, stock: dict[str, Any],
                plugin: dict[str, Any]) -> dict[str, Any]:
    """Everything that decides a variant's training, as plain JSON (see the module docstring)."""
    import ultralytics
    from ultralytics.utils import DEFAULT_CFG_DICT

    from yolo_ls import __version__
    from yolo_ls.config import resolve_plugin_args

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
    from yolo_ls.callbacks.calibration import metric_keys, save_final_json
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
    save_final_json(final, {"metrics": {k: values[k] for k in metric_keys(task)}, "ece_ts": values.get("ece_ts"),
                            "bins": metrics.calibration_bins})


def _check_outputs(run: Path, epochs: int) -> None:
    """Refuse to mark a variant done unless every output the report reads is there, one row per trained epoch."""
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


def compare(
    model: str,
    data: str,
    label_smoothing: Sequence[float] | str = (0.0, 0.05, 0.1),
    project: str | None = None,
    name: str = "compare",
    **train_args: Any,
) -> Path:
    """Train one variant per ε (same seed), then write the comparison report. Returns the compare folder.

    The console shows one progress line per variant (its stock output goes to ``compare.log`` in the variant folder)
    and the report table at the end. See the module docstring for how finished and interrupted variants are handled.

    Args:
        model (str): Model to train from, i.e. ``yolo11n-cls.yaml``.
        data (str): Dataset (``digits``, ``digits-det`` or your own).
        label_smoothing (Sequence[float] | str): The ε values, i.e. ``0,0.05,0.1``.
        project (str | None): Parent folder, resolved exactly as Ultralytics resolves a train ``project`` (a relative
            one lies under ``runs_dir/<task>``); default ``runs_dir/<task>``.
        name (str): Compare folder name.
        **train_args (Any): Any other train argument (epochs, imgsz, seed, ls_mode, ls_schedule, ...), the same for
            all variants. ``exist_ok``, ``resume``, ``save_dir`` and ``mode`` are compare's own and are refused.

    Raises:
        PluginArgumentError: For a bad ε list, an argument compare sets itself, an unwritable project, or a compare
            folder holding variants trained with other settings (nothing is trained then).
        SyntaxError: For an unknown argument.
    """
    from types import SimpleNamespace

    from ultralytics.cfg import get_save_dir
    from ultralytics.utils import DEFAULT_CFG_DICT

    from yolo_ls.config import check_keys, resolve_plugin_args, split_plugin_args
    from yolo_ls.datasets import resolve_data
    from yolo_ls.model import YOLO
    from yolo_ls.utils import unwritable_reason

    eps_list = parse_eps_list(label_smoothing)
    owned = [k for k in train_args if k in OWNED]
    if owned:
        raise PluginArgumentError(" ".join(f"'{k}' cannot be passed to compare: {OWNED[k]}." for k in owned))
    stock, plugin = split_plugin_args(train_args)
    check_keys(stock)
    with _output_to(None):  # building the model prints its summary; the variants' logs have it
        task = YOLO(model).task
    for eps in eps_list:
        resolve_plugin_args({**plugin, "label_smoothing": eps}, task)  # fail before training anything
    if plugin.get("calibration") is False:
        raise PluginArgumentError("compare reads each variant's calibration: 'calibration=False' cannot be used here")
    out = get_save_dir(SimpleNamespace(project=project, name=name, task=task, mode="train", exist_ok=True))
    reason = unwritable_reason(out)
    if reason:
        raise PluginArgumentError(f"'project={project}' cannot be written: the compare folder {out} is under {reason}.")
    data = resolve_data(data)
    seed = stock.pop("seed", 0)
    epochs = int(stock.get("epochs", DEFAULT_CFG_DICT["epochs"]))
    data_id = data_identity(data, skip=out)
    variants = []
    for eps in eps_list:
        run = out / variant_name(eps)
        fp = fingerprint(model, data_id, eps, seed, task, stock, plugin)
        variants.append((eps, run, fp, *_plan(run, fp, epochs)))
    mismatched = [f"  {run.name}: {why}" for _, run, _, state, why in variants if state == "mismatch"]
    if mismatched:
        raise PluginArgumentError(
            f"the compare folder {out} holds variants trained with other settings, so its numbers would not be the "
            "ones of this command:\n" + "\n".join(mismatched) + "\nChoose another name= for this comparison (or "
            "delete those variant folders yourself to retrain them). Nothing was trained."
        )

    console = sys.stdout
    calib = {k: v for k, v in plugin.items() if k in ("calib_bins", "calib_conf")}
    rows, t_all = [], time.time()
    for i, (eps, run, fp, state, why) in enumerate(variants, 1):
        head = f"yolo-ls: [{i}/{len(variants)}] {run.name} seed {seed}"
        if state == "reuse":
            _check_outputs(run, epochs)  # marked done, but files the report reads may have been deleted since
            _say(console, f"{head}: reusing the finished variant in {run}")
        else:
            _say(console, f"{head}: {'training' if why == 'new' else why} ... (log: {run / LOG})")
            t0 = time.time()
            if state == "train" and run.exists():
                shutil.rmtree(run)  # ours (its fingerprint matched) and unusable: no stale rows may survive
            if state == "train":
                run.mkdir(parents=True, exist_ok=True)
                _write_json_atomic(run / STARTED, fp)
            with _output_to(run / LOG):
                yolo = None
                if state == "train":
                    yolo = YOLO(model)
                    yolo.train(data=data, seed=seed, project=str(out), name=run.name, exist_ok=True,
                               label_smoothing=eps, **plugin, **stock)
                elif state == "resume":
                    last = run / "weights" / "last.pt"
                    if _checkpoint(last) is None:
                        _replace_copy(run / "weights" / "best.pt", last)
                    again = {k: v for k, v in plugin.items() if callable(v)}  # a callable schedule is passed again
                    yolo = YOLO(str(last))
                    yolo.train(resume=True, **again)
                else:
                    _finish(run, data, task, calib)
            if yolo is not None and Path(yolo.trainer.save_dir).resolve() != run.resolve():
                raise RuntimeError(f"Ultralytics wrote variant {run.name} to {yolo.trainer.save_dir}, not to {run}")
            _check_outputs(run, epochs)
            _say(console, f"{head}: done in {time.time() - t0:.1f} s")
        summary = variant_summary(run, task)
        if state != "reuse":
            _write_json_atomic(run / DONE, {"fingerprint": fp, "summary": summary})
        rows.append({"variant": run.name, "label_smoothing": eps, **summary})
    command = {"model": model, "data": data, "label_smoothing": ",".join(f"{e!r}" for e in eps_list), "seed": seed,
               **{k: v for k, v in train_args.items() if k != "seed"}}
    write_report(out, rows, task, command=command)
    _say(console, f"\n{_markdown_table(rows)}\n\n{reading(rows, task)}\n")
    _say(console, f"yolo-ls: compare finished in {time.time() - t_all:.1f} s; report written to {out / 'report.md'}")
    return out


def _say(stream: TextIO, text: str) -> None:
    print(text, file=stream, flush=True)


def _label(row: dict[str, Any]) -> str:
    return str(row["label"]) if "label" in row else f"ε={row['label_smoothing']:g}"


def write_report(
    out: Path,
    rows: list[dict[str, Any]],
    task: str,
    command: dict[str, Any] | None = None,
    title: str = "Label smoothing vs hard targets",
    text: str | None = None,
) -> None:
    """report.md, report.csv, reliability.png and curves.png from the variants' run folders (``out/<variant>``).

    A row may carry a ``label`` for the plots (default ``ε=<label_smoothing>``) and ``text`` replaces the automatic
    reading of the table.
    """
    import pandas as pd

    from yolo_ls.plots import plot_reliability_overlay

    pd.DataFrame(rows).to_csv(out / "report.csv", index=False, float_format="%.6g")
    named_bins = {}
    for r in rows:
        final = out / r["variant"] / "calibration" / "final.json"
        if final.exists():
            bins = json.loads(final.read_text()).get("bins")
            if bins:
                named_bins[_label(r)] = bins
    if named_bins:
        plot_reliability_overlay(named_bins, out / "reliability.png", title="Reliability (best.pt of each variant)")
    _plot_curves(out, rows, task)
    md = [f"# {title}", "", _markdown_table(rows), "", text or reading(rows, task), ""]
    md += ["![reliability](reliability.png)", "", "![curves](curves.png)", ""]
    if command:
        md += ["Arguments: `" + " ".join(f"{k}={v}" for k, v in command.items()) + "`", ""]
    (out / "report.md").write_text("\n".join(md), encoding="utf-8")


def _plot_curves(out: Path, rows: list[dict[str, Any]], task: str) -> None:
    from yolo_ls.plots import plot_compare_curves

    cal_key, acc_col = ("ece", "metrics/accuracy_top1") if task == "classify" else ("d_ece", "metrics/mAP50-95(B)")
    runs = {_label(r): (read_csv(out / r["variant"] / "calibration.csv"), read_csv(out / r["variant"] / "results.csv"))
            for r in rows}
    plot_compare_curves(runs, out / "curves.png", cal_key, acc_col)
