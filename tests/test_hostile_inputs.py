"""The hostile-input matrix: every bad argument, through the Python API and through the CLI, fails before training.

Each case must raise (API) or exit 2 (CLI) with a message naming the argument, and leave no run folder behind.
Dataset-level hostile cases (one class, corrupt image, empty val, unlabeled images) are in test_hostile_datasets.py.
"""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from tests.helpers import ROOT, TINY_CLS
from yolo_ls.config import PluginArgumentError

# (case id, key, value for the API, value as typed on the CLI, expected exception, text the message must contain)
CASES = [
    ("eps_negative", "label_smoothing", -0.1, "-0.1", PluginArgumentError, "'label_smoothing=-0.1'"),
    ("eps_one", "label_smoothing", 1.0, "1.0", PluginArgumentError, "'label_smoothing=1.0'"),
    ("eps_above_one", "label_smoothing", 1.5, "1.5", PluginArgumentError, "'label_smoothing=1.5'"),
    ("eps_nan", "label_smoothing", math.nan, "nan", PluginArgumentError, "label_smoothing=nan"),
    ("eps_inf", "label_smoothing", math.inf, "inf", PluginArgumentError, "label_smoothing=inf"),
    ("eps_text", "label_smoothing", "abc", "abc", PluginArgumentError, "'label_smoothing=abc'"),
    ("eps_list", "label_smoothing", [0.1], "[0.1]", PluginArgumentError, "'label_smoothing=[0.1]'"),
    ("unknown_schedule", "ls_schedule", "cosin", "cosin", PluginArgumentError, "Did you mean 'cosine'"),
    ("unknown_mode", "ls_mode", "unifrom", "unifrom", PluginArgumentError, "Did you mean 'uniform'"),
    ("detection_mode", "ls_mode", "fg", "fg", PluginArgumentError, "does not apply to task 'classify'"),
    ("two_stage_without_off", "ls_schedule", "two_stage", "two_stage", PluginArgumentError, "ls_off_epoch"),
    ("prior_wrong_length", "ls_prior", [1.0, 2.0], "[1.0,2.0]", PluginArgumentError, "nc=10"),
    ("prior_negative", "ls_prior", [1, -1] + [1] * 8, "[1,-1,1,1,1,1,1,1,1,1]", PluginArgumentError, "ls_prior"),
    ("prior_zeros", "ls_prior", [0] * 10, "[0,0,0,0,0,0,0,0,0,0]", PluginArgumentError, "ls_prior"),
    ("typo_ls", "ls_shedule", "linear", "linear", SyntaxError, "ls_schedule"),
    ("typo_label_smoothing", "label_smothing", 0.1, "0.1", SyntaxError, "label_smoothing"),
    ("typo_calib", "calib_bin", 10, "10", SyntaxError, "calib_bins"),
    ("calib_bins_zero", "calib_bins", 0, "0", PluginArgumentError, "'calib_bins=0'"),
    ("calib_bins_negative", "calib_bins", -1, "-1", PluginArgumentError, "'calib_bins=-1'"),
    ("calib_bins_huge", "calib_bins", 10**7, "10000000", PluginArgumentError, "'calib_bins=10000000'"),
]


@pytest.mark.parametrize("case,key,value,cli_value,error,message", CASES, ids=[c[0] for c in CASES])
def test_python_api(tmp_path, digits_root, case, key, value, cli_value, error, message):
    from yolo_ls import YOLO

    project = tmp_path / "runs"
    with pytest.raises(error) as info:
        YOLO("yolo11n-cls.yaml").train(**{**TINY_CLS, "data": str(digits_root), "project": str(project), key: value})
    assert message in str(info.value)
    assert not project.exists(), "a run folder was written before the error"


@pytest.mark.parametrize("case,key,value,cli_value,error,message", CASES, ids=[c[0] for c in CASES])
def test_cli(tmp_path, digits_root, case, key, value, cli_value, error, message):
    project = tmp_path / "runs"
    args = ["train", "model=yolo11n-cls.yaml", f"data={digits_root}", "epochs=1", "imgsz=32", f"project={project}",
            f"{key}={cli_value}"]
    proc = subprocess.run([sys.executable, "-m", "yolo_ls.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not project.exists(), "a run folder was written before the error"
