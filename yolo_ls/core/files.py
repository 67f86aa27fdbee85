"""Small file helpers shared by the trainers and callbacks: per-epoch CSVs written atomically."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def read_csv(path: str | Path) -> Any:
    """A per-epoch CSV as a DataFrame with stripped column names, or None when it does not exist."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        return None
    df = pd.read_csv(path)
    df.columns = [c.strip() for c in df.columns]
    return df


def write_csv_atomic(df: Any, path: str | Path) -> None:
    """Write a DataFrame through a temporary file and ``os.replace``: readers never see a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    df.to_csv(tmp, index=False, float_format="%.6g", na_rep="nan")  # a NaN cell says "not measured", not blank
    os.replace(tmp, path)


def append_csv_row(path: str | Path, row: Mapping[str, Any]) -> None:
    """Add one row keyed by ``epoch`` (replacing a row of the same epoch), keeping columns aligned, atomically."""
    import pandas as pd

    df = read_csv(path)
    new = pd.DataFrame([dict(row)])
    if df is not None and len(df):
        df = pd.concat([df[df["epoch"] != row["epoch"]], new], ignore_index=True)
    else:
        df = new
    write_csv_atomic(df, path)


def drop_rows_after(csv: str | Path, epoch: int) -> bool:
    """Keep only the rows of a per-epoch CSV whose 1-based ``epoch`` is <= ``epoch``; rewritten atomically.

    Ultralytics appends an epoch's results.csv row before it saves that epoch's checkpoint, so a run killed in
    between resumes from the previous checkpoint and would otherwise write the epoch twice.

    Returns:
        Whether rows were dropped.
    """
    df = read_csv(csv)
    if df is None or "epoch" not in df or (df["epoch"] <= epoch).all():
        return False
    write_csv_atomic(df[df["epoch"] <= epoch], csv)
    return True


def unwritable_reason(path: str | Path) -> str | None:
    """Why nothing can be written at ``path`` (the nearest existing folder is probed with a temporary file), or None.

    Used to refuse an output folder before any work starts; a probe, unlike ``os.access``, also sees read-only mounts
    and works for root.
    """
    import tempfile

    probe = Path(path).expanduser().absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} exists and is not a folder"
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as e:
        return f"{probe} is not writable ({e.strerror or e})"
    return None


def read_json(path: str | Path) -> Any:
    """A JSON file's content; a damaged file raises a ValueError that names it (json's own error does not)."""
    import json

    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise ValueError(f"{path} is not valid JSON (damaged or cut short?): {e}. Delete it to rebuild it, i.e. "
                         "'yolo-ls val model=RUN/weights/best.pt' writes a new calibration/final.json.") from None
