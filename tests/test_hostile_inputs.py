"""The hostile-input matrix: every bad argument, through the Python API and through the CLI, fails before training.

Each case must raise (API) or exit 2 (CLI) with a message naming the argument, and leave no run folder behind.
Dataset-level hostile cases (one class, corrupt image, empty val, unlabeled images) are in test_hostile_datasets.py.
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT, TINY_CLS, run_cli_batch
from yolo_ls.core.args import PluginArgumentError

# (case id, key, value for the API, value as typed on the CLI, expected exception, text the message must contain)
CASES = [
    ("eps_negative", "label_smoothing", -0.1, "-0.1", PluginArgumentError, "'label_smoothing=-0.1'"),
    ("eps_one", "label_smoothing", 1.0, "1.0", PluginArgumentError, "'label_smoothing=1.0'"),
    ("eps_above_one", "label_smoothing", 1.5, "1.5", PluginArgumentError, "'label_smoothing=1.5'"),
    ("eps_nan", "label_smoothing", math.nan, "nan", PluginArgumentError, "label_smoothing=nan"),
    ("eps_inf", "label_smoothing", math.inf, "inf", PluginArgumentError, "label_smoothing=inf"),
    ("eps_text", "label_smoothing", "abc", "abc", PluginArgumentError, "label_smoothing='abc' (a string)"),
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
    ("auto_gain_above_one", "ls_auto_gain", 1.5, "1.5", PluginArgumentError, "'ls_auto_gain=1.5'"),
]


@pytest.mark.parametrize("case,key,value,cli_value,error,message", CASES, ids=[c[0] for c in CASES])
def test_python_api(tmp_path, digits_root, case, key, value, cli_value, error, message):
    from yolo_ls import YOLO

    project = tmp_path / "runs"
    with pytest.raises(error) as info:
        YOLO("yolo11n-cls.yaml").train(**{**TINY_CLS, "data": str(digits_root), "project": str(project), key: value})
    assert message in str(info.value)
    assert not project.exists(), "a run folder was written before the error"


def _cli_args(digits_root: Path, project: Path, key: str, cli_value: str) -> list[str]:
    return ["train", "model=yolo11n-cls.yaml", f"data={digits_root}", "epochs=1", "imgsz=32", f"project={project}",
            f"{key}={cli_value}"]


@pytest.fixture(scope="module")
def cli_answers(tmp_path_factory, digits_root):
    """Every case as ``yolo-ls train ...`` in one fresh interpreter (tests.helpers.run_cli_batch), each into its own
    project folder; and the first case once more as its own ``python -m yolo_ls.cli`` process, which must end the same
    way (the process exit code is the entry point's return)."""
    base = tmp_path_factory.mktemp("hostile-cli")
    projects = {c[0]: base / c[0] / "runs" for c in CASES}
    answers = run_cli_batch([_cli_args(digits_root, projects[c[0]], c[1], c[3]) for c in CASES])
    first, answer = CASES[0], answers[0]
    proc = subprocess.run([sys.executable, "-m", "yolo_ls.cli", *_cli_args(digits_root, base / "own", first[1],
                                                                            first[3])],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert (proc.returncode, proc.stderr) == (answer.returncode, answer.stderr.replace(str(projects[first[0]]),
                                                                                       str(base / "own")))
    assert not (base / "own").exists(), "a run folder was written before the error"
    return {c[0]: (projects[c[0]], a) for c, a in zip(CASES, answers)}


@pytest.mark.parametrize("case,key,value,cli_value,error,message", CASES, ids=[c[0] for c in CASES])
@pytest.mark.slow
def test_cli(cli_answers, case, key, value, cli_value, error, message):
    project, proc = cli_answers[case]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not project.exists(), "a run folder was written before the error"


# ------------------------------------------------------------------------------------------------------------------
# The rest of the hostile-input table: compare, datasets, resume and empty values. Each case runs through the CLI
# (exit code and message, in-process through the entry point) and, where a Python API takes the same input, through
# it. Nothing may be written on error: the case's tmp folder is identical before and after.
# docs/robustness.md's <!-- hostile-table --> section is this table, printed by `python -m tests.hostile_table`.


@dataclass(frozen=True)
class Hostile:
    """One hostile input: the CLI argv after ``yolo-ls`` ({tmp} and {data} filled in), the answer it must give, the
    exit code, and optionally the Python call with the same input (tmp, data) -> None and what it raises."""

    id: str
    cli: tuple[str, ...] | None
    answer: str
    api: Callable[[Path, Path], Any] | None = None
    api_error: type[BaseException] | None = None
    api_answer: str | None = None
    setup: Callable[[Path], None] | None = None
    exit_code: int = 2


def _compare(tmp: Path, data: Path, **kw: Any) -> None:
    from yolo_ls.compare.runner import compare

    compare("yolo11n-cls.yaml", str(data), kw.pop("label_smoothing", "0,0.1"), **{"project": f"{tmp}/p", **kw})


def _old_compare_folder(tmp: Path) -> None:
    (tmp / "p" / "cmp" / "eps0").mkdir(parents=True)
    (tmp / "p" / "cmp" / "eps0" / "compare_done.json").write_text('{"label_smoothing": 0.0}')


def _user_folder(tmp: Path) -> None:
    (tmp / "o").mkdir()
    (tmp / "o" / "mine.txt").write_text("the user's own file")


def _truncated_checkpoint(tmp: Path) -> None:
    (tmp / "last.pt").write_bytes(b"PK\x03\x04 half of a checkpoint")


def _whole_zip(tmp: Path) -> None:
    import zipfile

    with zipfile.ZipFile(tmp / "last.pt", "w") as z:
        z.writestr("archive/data.pkl", b"x")


def _symlink_loop(tmp: Path) -> None:
    for split in ("train", "val"):
        for c in ("a", "b"):
            (tmp / "src" / split / c).mkdir(parents=True)
            (tmp / "src" / split / c / "x.png").write_bytes(b"")
    (tmp / "src" / "train" / "a" / "loop").symlink_to(tmp / "src" / "train", target_is_directory=True)


def _noise(tmp: Path, data: Path, **kw: Any) -> None:
    from yolo_ls.datasets import add_label_noise

    add_label_noise(kw.pop("src", data), tmp / "o", kw.pop("rate", 0.2), **kw)


def _digits(tmp: Path, data: Path, **kw: Any) -> None:
    from yolo_ls.datasets import digits

    digits(tmp / "o", **kw)


def _train(tmp: Path, data: Path, **kw: Any) -> None:
    from yolo_ls import YOLO

    YOLO("yolo11n-cls.yaml").train(**{**TINY_CLS, "data": str(data), "project": str(tmp / "runs"), "epochs": 3, **kw})


def _nan_schedule(epoch: float, epochs: int) -> float:
    return 0.1 if epoch < 2 else float("nan")  # fails only at the last epoch: probed before anything is written


def _one_argument_schedule(epoch: float) -> float:
    return 0.1


COMPARE = ("compare", "model=yolo11n-cls.yaml", "data={data}", "epochs=1", "project={tmp}/p")
HOSTILE = [
    Hostile("compare_exist_ok", (*COMPARE, "label_smoothing=0,0.1", "exist_ok=True"),
            "'exist_ok' cannot be passed to compare", lambda t, d: _compare(t, d, exist_ok=True), PluginArgumentError),
    Hostile("compare_resume", (*COMPARE, "label_smoothing=0,0.1", "resume=True"),
            "'resume' cannot be passed to compare", lambda t, d: _compare(t, d, resume=True), PluginArgumentError),
    Hostile("compare_one_eps", (*COMPARE, "label_smoothing=0.1"), "at least two variants or two seeds",
            lambda t, d: _compare(t, d, label_smoothing=0.1), PluginArgumentError),
    Hostile("compare_unwritable_project", (*COMPARE[:-1], "label_smoothing=0,0.1", "project=/proc/yolo-ls-test"),
            "cannot be written", lambda t, d: _compare(t, d, project="/proc/yolo-ls-test"), PluginArgumentError),
    Hostile("compare_folder_of_other_settings", (*COMPARE, "label_smoothing=0,0.1", "name=cmp"),
            "holds variants trained with other settings", lambda t, d: _compare(t, d, name="cmp"),
            PluginArgumentError, setup=_old_compare_folder),
    Hostile("datasets_noise_text", ("datasets", "digits", "out={tmp}/o", "noise=abc"),
            "'noise=abc' is an invalid value. Valid 'noise' values are floats between 0.0",
            lambda t, d: _noise(t, d, rate="abc"), TypeError, "rate must be a number"),
    Hostile("datasets_seed_float", ("datasets", "digits", "out={tmp}/o", "noise=0.2", "seed=1.5"),
            "'seed=1.5' is an invalid value. Valid 'seed' values are integers >= 0",
            lambda t, d: _digits(t, d, seed=1.5), TypeError, "seed must be an integer"),
    Hostile("datasets_noise_kind_typo", ("datasets", "digits", "out={tmp}/o", "noise=0.2", "noise_kind=symetric"),
            "Did you mean 'symmetric'?", lambda t, d: _noise(t, d, kind="symetric"), ValueError),
    Hostile("datasets_out_empty", ("datasets", "digits", "out="), "'out=' has no value"),
    Hostile("datasets_out_unwritable", ("datasets", "digits", "out=/proc/yolo-ls-test/digits"), "cannot be written"),
    Hostile("datasets_out_holds_other_files", ("datasets", "digits", "out={tmp}/o"),
            "is not empty but has no .yolo_ls_dataset.json marker", lambda t, d: _digits(t, d), ValueError,
            setup=_user_folder),
    Hostile("noise_symlink_loop", None, "", lambda t, d: _noise(t, d, src=t / "src"), ValueError, "symlink loop",
            setup=_symlink_loop),
    Hostile("schedule_returns_nan_late", None, "", lambda t, d: _train(t, d, ls_schedule=_nan_schedule),
            PluginArgumentError, "'ls_schedule=_nan_schedule' is invalid: ls_schedule callable returned nan at"),
    Hostile("schedule_wrong_signature", None, "", lambda t, d: _train(t, d, ls_schedule=_one_argument_schedule),
            PluginArgumentError, "failed when called as fn(epoch=0.0, epochs=3)"),
    Hostile("schedule_returns_above_one", None, "", lambda t, d: _train(t, d, ls_schedule=lambda e, n: 1.5),
            PluginArgumentError, "must return a finite float in [0, 1)"),
    Hostile("empty_label_smoothing", ("train", "model=yolo11n-cls.yaml", "data={data}", "label_smoothing="),
            "'label_smoothing=' has no value. Give 'label_smoothing' a value, i.e. 'label_smoothing=0.1'"),
    Hostile("empty_cfg", ("train", "cfg="), "'cfg=' has no value"),
    Hostile("resume_missing_checkpoint", ("train", "resume={tmp}/runs/weights/last.pt"), "no such checkpoint file"),
    Hostile("resume_truncated_checkpoint", ("train", "resume={tmp}/last.pt"), "is not a readable checkpoint",
            setup=_truncated_checkpoint),
    Hostile("resume_with_another_model", ("train", "model=yolo11n-cls.yaml", "resume={tmp}/last.pt"),
            "names another one", setup=_whole_zip),
]


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("case", [c for c in HOSTILE if c.cli], ids=lambda c: c.id)
def test_hostile_cli(tmp_path, digits_root, capsys, case):
    from yolo_ls.cli.main import entrypoint

    if case.setup:
        case.setup(tmp_path)
    before = _tree(tmp_path)
    rc = entrypoint([a.format(tmp=tmp_path, data=digits_root) for a in case.cli])
    err = capsys.readouterr().err
    assert rc == case.exit_code and case.answer in err, err
    assert err.startswith("yolo-ls: error: ") and "yolo-ls: error: yolo-ls:" not in err and "Traceback" not in err
    assert _tree(tmp_path) == before, "something was written before the error"


@pytest.mark.parametrize("case", [c for c in HOSTILE if c.api], ids=lambda c: c.id)
def test_hostile_python_api(tmp_path, digits_root, case):
    if case.setup:
        case.setup(tmp_path)
    before = _tree(tmp_path)
    with pytest.raises(case.api_error) as info:
        case.api(tmp_path, digits_root)
    assert (case.api_answer or case.answer) in str(info.value)
    assert _tree(tmp_path) == before, "something was written before the error"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_table() -> str:
    """The whole hostile-input table as Markdown: what docs/robustness.md's <!-- hostile-table --> section holds."""
    lines = ["Every hostile input the tests feed in, and the answer it gets (CLI exit code and message; the Python "
             "error where the API takes the same input). Nothing is written before any of these errors.", "",
             "| case | input | answer |", "|---|---|---|"]
    for case_id, key, _value, cli_value, error, message in CASES:
        lines.append(f"| `{case_id}` | `yolo-ls train ... {key}={cli_value}` (or the same keyword in Python) | "
                     f"exit 2 / `{error.__name__}`: ...{_cell(message)}... |")
    for c in HOSTILE:
        cli = f"`yolo-ls {' '.join(c.cli)}`" if c.cli else ""
        api = f"`{c.api_error.__name__}`: ...{_cell(c.api_answer or c.answer)}..." if c.api else ""
        answer = " / ".join(x for x in (f"exit {c.exit_code}: ...{_cell(c.answer)}..." if c.cli else "",
                                         f"Python {api}" if api else "") if x)
        lines.append(f"| `{c.id}` | {cli or '(Python API only)'} | {answer} |")
    return "\n".join(lines)


def test_readme_hostile_table_is_the_generated_one():
    text = (ROOT / "docs" / "robustness.md").read_text(encoding="utf-8")
    start, end = "<!-- hostile-table -->\n", "\n<!-- /hostile-table -->"
    assert start in text and end in text, "docs/robustness.md lacks the <!-- hostile-table --> section"
    section = text[text.index(start) + len(start):text.index(end)]
    assert section == markdown_table(), "docs/robustness.md's hostile table is stale: python -m tests.hostile_table"


def test_resume_path_is_the_model(tmp_path):
    """`yolo-ls train resume=PATH` means model=PATH (Ultralytics' `yolo train resume model=PATH`), not yolo26n.pt."""
    from yolo_ls.cli.main import parse_args

    _whole_zip(tmp_path)
    ckpt = tmp_path / "last.pt"
    assert parse_args(["train", f"resume={ckpt}"]) == (None, "train", {"model": str(ckpt), "resume": True})
    assert parse_args(["train", f"model={ckpt}", f"resume={ckpt}"])[2] == {"model": str(ckpt), "resume": True}
    assert parse_args(["train", f"model={ckpt}", "resume"])[2] == {"model": str(ckpt), "resume": True}  # stock form
