"""Which training run folder belongs to which Ray Tune trial.

A Ray trial trains in an Ultralytics run folder (``<project>/<name>_<trial index>``, incremented when taken) that Ray's
own trial folder (``<tune dir>/_tune_<trial id>``: params.json, progress.csv, no weights) does not name. A yolo-ls
trainer started inside a trial writes ``ray_trial.json`` (the trial's id and name) into its run folder, and
:func:`trial_run_dir` finds the folder again from the trial id, so that the tune can point at the trial's weights.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

RAY_TRIAL_FILE = "ray_trial.json"


def current_ray_trial() -> dict[str, str] | None:
    """The Ray Tune trial this process trains for (``{"trial_id", "trial_name"}``), or None outside a trial.

    Ray is never imported here: a process that has not loaded ``ray.tune`` runs no trial. Outside a trial Ray's
    context answers None (its "meant to only be called inside a function executed by a Tuner" warning is silenced).
    """
    tune = sys.modules.get("ray.tune")
    if tune is None or not hasattr(tune, "get_context"):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            context = tune.get_context()
            trial_id = context.get_trial_id()
            trial_name = context.get_trial_name() if trial_id else None
    except Exception:  # an older or partial Ray: no trial to record
        return None
    return {"trial_id": str(trial_id), "trial_name": str(trial_name)} if trial_id else None


def record_ray_trial(save_dir: str | Path) -> None:
    """Inside a Ray Tune trial, write ``ray_trial.json`` (the trial's id and name) into the run folder."""
    trial = current_ray_trial()
    if trial is not None:
        Path(save_dir, RAY_TRIAL_FILE).write_text(json.dumps(trial) + "\n", encoding="utf-8")


def trial_run_dir(project: str | Path, trial_id: str) -> Path | None:
    """The run folder under ``project`` whose ``ray_trial.json`` names ``trial_id`` (None when there is none)."""
    for marker in sorted(Path(project).glob(f"*/{RAY_TRIAL_FILE}")):
        try:
            if json.loads(marker.read_text(encoding="utf-8")).get("trial_id") == trial_id:
                return marker.parent
        except (OSError, ValueError, AttributeError):
            continue
    return None


def result_trial_id(result: Any) -> str | None:
    """The trial id of a Ray ``Result``: its metrics' ``trial_id``, else the end of its folder name
    (``<trainable>_<trial id>``, the trial folder Ultralytics and yolo-ls have Ray create)."""
    trial_id = (getattr(result, "metrics", None) or {}).get("trial_id")
    if trial_id:
        return str(trial_id)
    path = getattr(result, "path", None)
    parts = Path(str(path)).name.rsplit("_", 2) if path else []
    return "_".join(parts[-2:]) if len(parts) == 3 else None
