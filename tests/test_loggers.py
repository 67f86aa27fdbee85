"""ε and calibration reach Ultralytics' loggers: a real TensorBoard event file and a local MLflow store.

The training runs in a fresh interpreter with its own YOLO_CONFIG_DIR (settings are global) and without pytest's
environment, because Ultralytics switches its TensorBoard and MLflow callbacks off while tests run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT, TINY_CLS, results

pytestmark = pytest.mark.training

SCRIPT = """
import json, sys
from ultralytics.utils import SETTINGS
SETTINGS.update(tensorboard=True, mlflow=True)
from yolo_ls import YOLO
YOLO("yolo11n-cls.yaml").train(**json.loads(sys.argv[1]))
"""


def test_mlflow_and_tensorboard_receive_eps_and_calibration(tmp_path, digits_root, monkeypatch):
    pytest.importorskip("tensorboard")
    mlflow = pytest.importorskip("mlflow")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    args = {**TINY_CLS, "data": str(digits_root), "project": str(tmp_path), "name": "run", "epochs": 3,
            "label_smoothing": 0.2, "ls_schedule": "linear", "ls_final": 0.0, "plots": True}
    uri = (tmp_path / "mlruns").as_uri()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # a local file store: no server, no database
    env.update(YOLO_CONFIG_DIR=str(tmp_path / "cfg"), MLFLOW_TRACKING_URI=uri, MLFLOW_EXPERIMENT_NAME="yolo-ls-test",
               MLFLOW_ALLOW_FILE_STORE="true")
    proc = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(args)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "run"
    expected = [0.2, 0.1, 0.0]  # linear from 0.2 to 0.0 over 3 epochs
    assert results(run)["label_smoothing"].tolist() == pytest.approx(expected)

    # TensorBoard: the event file Ultralytics wrote holds the ε tag, one value per epoch, following the schedule.
    events = EventAccumulator(str(run))
    events.Reload()
    assert "label_smoothing" in events.Tags()["scalars"]
    tb = [(e.step, e.value) for e in events.Scalars("label_smoothing")]
    assert [s for s, _ in tb] == [1, 2, 3] and [v for _, v in tb] == pytest.approx(expected, abs=1e-6)
    assert "calib/ece" in events.Tags()["scalars"]

    # MLflow: the same ε history, calib/* metrics, and the plugin's files among the artifacts.
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("yolo-ls-test")
    (mlrun,) = client.search_runs([exp.experiment_id])
    history = sorted((m.step, m.value) for m in client.get_metric_history(mlrun.info.run_id, "label_smoothing"))
    assert [v for _, v in history] == pytest.approx(expected, abs=1e-6)
    assert "calib/ece" in mlrun.data.metrics
    top = {a.path for a in client.list_artifacts(mlrun.info.run_id)}
    assert {"label_smoothing.png", "calibration.csv", "results.csv"} <= top, top
    calib = {a.path for a in client.list_artifacts(mlrun.info.run_id, "calibration")}
    assert "calibration/reliability.png" in calib, calib
