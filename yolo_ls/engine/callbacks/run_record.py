"""The calibration record of a run folder: ``calibration.csv`` (one row per epoch), ``calibration/epochs.json`` (each
epoch's bins) and ``calibration/final.json`` (best.pt). Rows are written atomically as each epoch is measured, kept for
the checkpoint, and rewritten from it on resume, so the files always hold exactly the checkpoint's epochs."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

EPOCHS_JSON = Path("calibration") / "epochs.json"  # per-epoch bins, relative to the run folder


class RunRecord:
    """The rows written so far (``committed``: epoch -> its csv row and epochs.json entry) and how to write them.

    Args:
        bins: ``calib_bins`` (written into the epochs.json header).
        conf: ``calib_conf`` (likewise).
    """

    def __init__(self, bins: int, conf: float) -> None:
        self.bins, self.conf = bins, conf
        self.committed: dict[int, dict[str, Any]] = {}

    def _header(self, task: str | None) -> dict[str, Any]:
        return {"task": task, "calib_conf": self.conf, "calib_bins": self.bins}

    def commit(self, save_dir: Path, epoch: int, eps: float, task: str, result: dict[str, Any]) -> None:
        """Append the epoch's ``calibration.csv`` row and ``epochs.json`` entry, and keep them in :attr:`committed`."""
        from yolo_ls.core.epoch_bins import _plain, save_epoch_bins
        from yolo_ls.core.files import append_csv_row

        row = {"epoch": epoch, "label_smoothing": eps, **result["metrics"]}
        from yolo_ls.calibration.registry import ts_key

        row[ts_key(task)] = result.get(ts_key(task), math.nan)  # held-out, after temperature scaling
        row.update({f"d_ece/{name}": v for name, v in result["per_class"].items()})
        entry = {"epoch": epoch, "label_smoothing": eps, "metrics": result["metrics"], "bins": result["bins"]}
        append_csv_row(save_dir / "calibration.csv", row)
        save_epoch_bins(save_dir / EPOCHS_JSON, entry, **self._header(task))
        self.committed[epoch] = _plain({"row": row, "entry": entry})

    def restore(self, save_dir: Path, committed: dict[Any, dict[str, Any]], epoch: int, task: str | None) -> None:
        """Rewrite both files from a checkpoint's record, up to its (1-based) ``epoch``."""
        import pandas as pd

        from yolo_ls.core.epoch_bins import reset_epoch_bins, save_epoch_bins
        from yolo_ls.core.files import write_csv_atomic

        self.committed = {int(k): v for k, v in committed.items() if int(k) <= epoch}
        rows = [self.committed[e]["row"] for e in sorted(self.committed)]
        csv = save_dir / "calibration.csv"
        if rows:
            write_csv_atomic(pd.DataFrame(rows), csv)
        else:
            csv.unlink(missing_ok=True)
        reset_epoch_bins(save_dir / EPOCHS_JSON)
        for e in sorted(self.committed):
            save_epoch_bins(save_dir / EPOCHS_JSON, self.committed[e]["entry"], **self._header(task))

    @staticmethod
    def trim(save_dir: Path, epoch: int) -> None:
        """Drop the rows after ``epoch`` (a stock trainer's resume: no record in its checkpoint)."""
        from yolo_ls.core.epoch_bins import drop_epochs_after
        from yolo_ls.core.files import drop_rows_after

        drop_rows_after(save_dir / "calibration.csv", epoch)
        drop_epochs_after(save_dir / EPOCHS_JSON, epoch)

    def reset(self, save_dir: Path) -> None:
        """A fresh run into an existing folder: the previous run's record is removed."""
        reset_calibration_files(save_dir)
        self.committed = {}


def reset_calibration_files(save_dir: Path) -> None:
    """Remove a previous run's calibration record from a run folder: ``calibration.csv`` and ``calibration/``."""
    import shutil

    (Path(save_dir) / "calibration.csv").unlink(missing_ok=True)
    shutil.rmtree(Path(save_dir) / "calibration", ignore_errors=True)


def save_final_json(path: Path, result: dict[str, Any]) -> None:
    """The final (best.pt) calibration as JSON: metrics, bins, ``ece_ts``, and where present ``nll_ts``, the
    temperature and the validator's own accuracy metrics of the same validation (what compare scores best.pt by)."""
    import json

    import numpy as np

    def plain(v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple, np.ndarray)):
            return [plain(x) for x in np.asarray(v).tolist()]
        if isinstance(v, (float, np.floating)):
            return None if not math.isfinite(float(v)) else float(v)
        return v if isinstance(v, (int, str, bool, type(None))) else str(v)

    data = {"metrics": result["metrics"], "ece_ts": result.get("ece_ts"), "bins": result["bins"]}
    data.update({k: result[k] for k in ("nll_ts", "temperature", "d_ece_ts", "d_temperature", "val_metrics")
                 if result.get(k) is not None})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(plain(data), indent=1))
