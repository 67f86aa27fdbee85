"""Per-epoch reliability bins of a run: ``calibration/epochs.json``, the data behind every per-epoch diagram.

One entry per validated epoch (1-based ``epoch``, ``label_smoothing``, ``metrics``, ``bins``), keyed by epoch (a
repeated epoch replaces its entry), written through a temporary file and ``os.replace`` so that a kill never leaves
a half-written file, and trimmed to the resume epoch on ``resume=True`` like calibration.csv. The bins are a few
hundred bytes an epoch; ``yolo-ls plot RUN`` draws the diagrams from them on demand.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from yolo_ls.core.files import read_json

VERSION = 1


def _plain(v: Any) -> Any:
    """JSON-safe values: arrays and tensors as lists, NaN/inf as None."""
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if hasattr(v, "tolist"):  # numpy arrays and scalars, torch tensors
        v = v.tolist()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    return v if isinstance(v, (int, str, bool, type(None))) else str(v)


def load_epoch_bins(path: str | Path) -> dict[str, Any]:
    """The file's content (``{"version", "task", "calib_conf", "epochs": [...]}``); no file: no epochs."""
    path = Path(path)
    if not path.is_file():
        return {"version": VERSION, "epochs": []}
    data = read_json(path)
    data.setdefault("epochs", [])
    return data


def _write(path: Path, data: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(_plain(data), separators=(",", ":")))
    os.replace(tmp, path)


def save_epoch_bins(path: str | Path, entry: Mapping[str, Any], **header: Any) -> None:
    """Add one epoch's entry (replacing an entry of the same epoch), keeping entries sorted by epoch, atomically.

    Args:
        path (str | Path): The run's ``calibration/epochs.json``.
        entry (Mapping): ``epoch`` (1-based) plus ``label_smoothing``, ``metrics`` and ``bins``.
        **header (Any): File-level values (``task``, ``calib_conf``, ``calib_bins``) recorded alongside.
    """
    path = Path(path)
    data = load_epoch_bins(path)
    data.update({"version": VERSION, **header})
    epoch = int(entry["epoch"])
    kept = [e for e in data["epochs"] if int(e["epoch"]) != epoch]
    data["epochs"] = sorted([*kept, {**entry, "epoch": epoch}], key=lambda e: int(e["epoch"]))
    _write(path, data)


def reset_epoch_bins(path: str | Path) -> None:
    """Start the file afresh (no epochs)."""
    Path(path).unlink(missing_ok=True)


def drop_epochs_after(path: str | Path, epoch: int) -> bool:
    """Keep only the entries whose 1-based ``epoch`` is <= ``epoch`` (what a resume from that epoch keeps).

    Returns:
        Whether entries were dropped.
    """
    path = Path(path)
    data = load_epoch_bins(path)
    kept = [e for e in data["epochs"] if int(e["epoch"]) <= epoch]
    if len(kept) == len(data["epochs"]):
        return False
    data["epochs"] = kept
    _write(path, data)
    return True
