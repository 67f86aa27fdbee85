"""The compare folder as an honest cache: which runs can be reused, completed or must be refused.

Each run folder is keyed by a fingerprint of everything that decides its training (:func:`fingerprint`: the full
argument set, ε, the seed, the model, the data's identity and the yolo-ls and Ultralytics versions), written into the
folder before its training starts (``compare_variant.json``). ``compare_done.json`` is written, atomically, only after
the training returned and every output the report reads is in place. :func:`_plan` reads a folder: reuse a run whose
done-marker matches, refuse one trained with other settings, and resume, finish or retrain an interrupted one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from yolo_ls.compare.sweep import plain_value as _plain
from yolo_ls.core.files import read_csv

DONE = "compare_done.json"  # written last, atomically: the variant is finished and its fingerprint is this one
STARTED = "compare_variant.json"  # written before the variant's training: what the folder is being trained as
# Arguments left out of the fingerprint: they change what is printed or plotted, never the trained weights.
NOT_FINGERPRINTED = ("verbose", "plots", "calib_plots", "mode", "model", "data", "project", "name", "exist_ok",
                     "resume", "save_dir", "seed", "label_smoothing", "task")
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
    """Everything that decides a variant's training, as plain JSON."""
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
    last, best = _checkpoint(run / "weights" / "last.pt"), _checkpoint(run / "weights" / "best.pt")
    if started != fp:
        df = read_csv(run / "results.csv")
        if last is None and best is None and (df is None or not len(df)):  # e.g. a wrong data= failed the start
            return "train", "never trained an epoch (an earlier compare stopped before training): training it now"
        return "mismatch", "; ".join(fingerprint_diff(started, fp))
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
    for rel in ("calibration/final.json", "calibration/epochs.json"):
        if (run / rel).is_file() and _read_json(run / rel) is None:
            raise RuntimeError(f"variant {run}: {rel} is damaged (not valid JSON): delete the variant folder to train "
                               "it again")


def _folder_reason(folder: Path) -> str | None:
    """Why a variant folder is not compare's own (it holds only ``seed<k>`` run folders), or None."""
    if not folder.is_dir():
        return None
    if (folder / DONE).exists() or (folder / STARTED).exists():
        return "made by an older yolo-ls compare (one run per variant folder, before seed<k> folders)"
    other = sorted(p.name for p in folder.iterdir() if not (p.is_dir() and RUN_FOLDER.fullmatch(p.name)))
    return f"holds files compare did not write ({', '.join(other[:3])}{', ...' if len(other) > 3 else ''})" if other \
        else None
