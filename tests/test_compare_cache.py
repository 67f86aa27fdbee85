"""``compare`` as an honest cache: variant names, fingerprints, refusals, and variants interrupted anywhere completing.

The interruption tests patch Ultralytics' trainer to fail exactly where a kill would land (after a mid-training save,
during the final validation, half-way through the final save) and then re-run the same command.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from tests.helpers import NO_FIGURES, TINY_CLS, results
from yolo_ls.compare.runner import (
    DONE,
    STARTED,
    compare,
    data_identity,
    fingerprint,
    fingerprint_diff,
    variant_name,
)
from yolo_ls.core.args import PluginArgumentError

ARGS = {k: v for k, v in TINY_CLS.items() if k != "seed"}


def test_variant_names_are_unique_per_distinct_eps():
    assert variant_name(0.0) == "eps0" and variant_name(0.1) == "eps0.1" and variant_name(0.05) == "eps0.05"
    close = [0.1, 0.1000001, 0.10000001, 0.1000000000000001]
    names = [variant_name(e) for e in close]
    assert len(set(names)) == len(close), names  # the old f"{eps:g}" named all four "eps0.1"
    assert names[1] == "eps0.1000001"
    assert all(float(n[3:]) == e for n, e in zip(names, close))  # the name is the exact value


def test_fingerprint_covers_args_eps_data_and_versions(tmp_path):
    data = tmp_path / "d"
    (data / "train" / "a").mkdir(parents=True)
    (data / "train" / "a" / "x.png").write_bytes(b"1")
    ident = data_identity(data)
    base = fingerprint("yolo11n-cls.yaml", ident, 0.1, 0, "classify", {"epochs": 2}, {})
    assert base == fingerprint("yolo11n-cls.yaml", data_identity(data), 0.1, 0, "classify", {"epochs": 2}, {})
    assert base["args"]["epochs"] == 2 and "ultralytics" in base and "yolo_ls" in base
    assert base == fingerprint("yolo11n-cls.yaml", ident, 0.1, 0, "classify", {"epochs": 2, "verbose": False}, {})
    # an Ultralytics default given explicitly is the same training
    assert base == fingerprint("yolo11n-cls.yaml", ident, 0.1, 0, "classify", {"epochs": 2, "lr0": 0.01}, {})
    assert fingerprint_diff(base, fingerprint("yolo11n-cls.yaml", ident, 0.1, 0, "classify", {"epochs": 3}, {})) == [
        "epochs=2 there, 3 now"]
    other_eps = fingerprint("yolo11n-cls.yaml", ident, 0.1000001, 0, "classify", {"epochs": 2}, {})
    assert fingerprint_diff(base, other_eps) == ["label_smoothing=0.1 there, 0.1000001 now"]
    plugin = fingerprint("yolo11n-cls.yaml", ident, 0.1, 0, "classify", {"epochs": 2}, {"ls_schedule": "cosine"})
    assert fingerprint_diff(base, plugin) == ["ls_schedule='constant' there, 'cosine' now"]
    seed = fingerprint("yolo11n-cls.yaml", ident, 0.1, 1, "classify", {"epochs": 2}, {})
    assert fingerprint_diff(base, seed) == ["seed=0 there, 1 now"]
    (data / "train" / "a" / "y.png").write_bytes(b"2")  # the data changed: another training
    changed = fingerprint("yolo11n-cls.yaml", data_identity(data), 0.1, 0, "classify", {"epochs": 2}, {})
    assert [line.split(":")[0] for line in fingerprint_diff(base, changed)] == ["data"]
    (data / "train.cache").write_bytes(b"written by Ultralytics while training")  # not part of the identity
    assert data_identity(data) == changed["data"]


@pytest.mark.parametrize("key,value", [("exist_ok", True), ("resume", True), ("save_dir", "x"), ("mode", "val")])
def test_arguments_compare_sets_itself_are_refused(tmp_path, key, value):
    with pytest.raises(PluginArgumentError, match=f"'{key}' cannot be passed to compare"):
        compare("yolo11n-cls.yaml", "digits", "0,0.1", project=str(tmp_path / "p"), **{key: value})
    assert not (tmp_path / "p").exists()


def test_unwritable_project_refused_before_anything(tmp_path):
    with pytest.raises(PluginArgumentError, match="cannot be written"):
        compare("yolo11n-cls.yaml", str(tmp_path), "0,0.1", project="/proc/yolo-ls-test", epochs=1)


def test_folder_from_other_settings_or_an_older_compare_is_refused_before_training(tmp_path, digits_root):
    out = tmp_path / "p" / "cmp"
    (out / "eps0").mkdir(parents=True)
    (out / "eps0" / DONE).write_text(json.dumps({"label_smoothing": 0.0}))  # the old marker: no fingerprint
    (out / "eps0.1").mkdir()
    (out / "eps0.1" / "results.csv").write_text("epoch\n1\n")  # files compare did not write
    with pytest.raises(PluginArgumentError) as info:
        compare("yolo11n-cls.yaml", str(digits_root), "0,0.1", project=str(tmp_path / "p"), name="cmp", **ARGS)
    text = str(info.value)
    assert "eps0: made by an older yolo-ls compare" in text and "eps0.1: holds files compare did not write" in text
    assert "Nothing was trained" in text
    assert sorted(p.name for p in out.iterdir()) == ["eps0", "eps0.1"]


def _epoch(ckpt: Path) -> int:
    return int(torch.load(ckpt, map_location="cpu", weights_only=False)["epoch"])


@pytest.mark.training
def test_variants_interrupted_anywhere_complete_on_rerun(tmp_path, digits_root, monkeypatch, capsys):
    """Kill points: half-way through the final save (eps0), after epoch 1's save (eps0.1), then a lost done-marker."""
    from ultralytics.engine.trainer import BaseTrainer

    project, kw = tmp_path / "p", {**ARGS, **NO_FIGURES, "epochs": 2, "name": "cmp"}
    out = project / "cmp"
    orig_final_eval, orig_save = BaseTrainer.final_eval, BaseTrainer.save_model

    def killed_in_final_save(self):  # final_eval strips last.pt first: die with it half-written
        data = self.last.read_bytes()
        self.last.write_bytes(data[: len(data) // 2])
        raise KeyboardInterrupt("simulated kill during the final save")

    monkeypatch.setattr(BaseTrainer, "final_eval", killed_in_final_save)
    with pytest.raises(KeyboardInterrupt):
        compare("yolo11n-cls.yaml", str(digits_root), "0,0.1", project=str(project), **kw)
    assert not (out / "eps0" / "seed0" / DONE).exists() and (out / "eps0" / "seed0" / STARTED).exists()
    with pytest.raises(RuntimeError):
        torch.load(out / "eps0" / "seed0" / "weights" / "last.pt", weights_only=False)

    def killed_after_save(self):  # right after epoch 1's last.pt: its calibration row was committed before the save
        done = orig_save(self)
        if "eps0.1" in str(self.save_dir) and self.epoch == 0:
            raise KeyboardInterrupt("simulated kill right after epoch 1's save")
        return done

    monkeypatch.setattr(BaseTrainer, "final_eval", orig_final_eval)
    monkeypatch.setattr(BaseTrainer, "save_model", killed_after_save)
    capsys.readouterr()
    with pytest.raises(KeyboardInterrupt):
        compare("yolo11n-cls.yaml", str(digits_root), "0,0.1", project=str(project), **kw)
    said = capsys.readouterr().out
    assert "[1/2] eps0 seed 0: " in said and "(last.pt is truncated)" in said, said
    assert (out / "eps0" / "seed0" / DONE).exists() and not (out / "eps0.1" / "seed0" / DONE).exists()
    run01 = out / "eps0.1" / "seed0"
    assert _epoch(run01 / "weights" / "last.pt") == 0 and pd_epochs(run01 / "calibration.csv") == [1]
    monkeypatch.setattr(BaseTrainer, "save_model", orig_save)

    # A plain mid-training kill (after epoch 1's rows) of a third variant; eps0.1 resumes: nothing of it was lost
    from yolo_ls.engine.callbacks.calibration import CalibrationCallbacks

    orig_fit_end = CalibrationCallbacks.on_fit_epoch_end

    def killed_after_epoch_1(self, trainer):
        orig_fit_end(self, trainer)
        if "eps0.2" in str(trainer.save_dir) and trainer.epoch == 0 and trainer.metrics.get("metrics/accuracy_top1"):
            raise KeyboardInterrupt("simulated kill after epoch 1")

    monkeypatch.setattr(CalibrationCallbacks, "on_fit_epoch_end", killed_after_epoch_1)
    with pytest.raises(KeyboardInterrupt):
        compare("yolo11n-cls.yaml", str(digits_root), "0,0.1,0.2", project=str(project), **kw)
    said = capsys.readouterr().out
    assert "[1/3] eps0 seed 0: reusing the finished variant" in said
    assert "[2/3] eps0.1 seed 0: interrupted after epoch 1/2: resuming from last.pt" in said, said
    monkeypatch.setattr(CalibrationCallbacks, "on_fit_epoch_end", orig_fit_end)
    compare("yolo11n-cls.yaml", str(digits_root), "0,0.1,0.2", project=str(project), **kw)
    said = capsys.readouterr().out
    assert "[2/3] eps0.1 seed 0: reusing the finished variant" in said
    assert "[3/3] eps0.2 seed 0: interrupted after epoch 1/2: resuming from last.pt" in said, said
    for v in ("eps0", "eps0.1", "eps0.2"):
        run = out / v / "seed0"
        assert results(run)["epoch"].tolist() == [1, 2], v  # no epoch missing or written twice
        assert pd_epochs(run / "calibration.csv") == [1, 2], v
        assert _epoch(run / "weights" / "last.pt") == -1 and _epoch(run / "weights" / "best.pt") == -1, v
        final = json.loads((run / "calibration" / "final.json").read_text())
        assert final["bins"] and final["metrics"]["ece"] is not None
        assert "Optimizer stripped" in (run / "compare.log").read_text(), v  # the stock output went to the log

    # A finished variant that lost its done-marker (its last.pt is the stripped one of a finished run) is not retrained
    stamp = (run01 / "results.csv").stat().st_mtime_ns
    (run01 / DONE).unlink()
    compare("yolo11n-cls.yaml", str(digits_root), "0,0.1,0.2", project=str(project), **kw)
    said = capsys.readouterr().out
    assert "[2/3] eps0.1 seed 0: all epochs trained, interrupted in its final save or validation" in said
    assert (run01 / DONE).exists() and (run01 / "results.csv").stat().st_mtime_ns == stamp
    report = (out / "report.csv").read_text().splitlines()
    assert len(report) == 4 and report[0].startswith("variant,run,seed,label_smoothing")
    assert "| variant |" in said and said.count("\n") < 40, said  # progress lines and the table, not stock output


def pd_epochs(csv: Path) -> list[int]:
    import pandas as pd

    return pd.read_csv(csv)["epoch"].tolist()


def test_no_stale_tmp_files_left(tmp_path):
    """The atomic JSON writer leaves only the target behind."""
    from yolo_ls.compare.runner import _write_json_atomic

    _write_json_atomic(tmp_path / "x.json", {"a": 1})
    assert os.listdir(tmp_path) == ["x.json"] and json.loads((tmp_path / "x.json").read_text()) == {"a": 1}


def test_disk_full_mid_compare_is_one_clean_line(tmp_path, digits_root, capsys, monkeypatch):
    import errno

    import yolo_ls.compare.runner as compare_mod
    from yolo_ls.cli.main import entrypoint

    def full(path, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(compare_mod, "_write_json_atomic", full)
    rc = entrypoint(["compare", "model=yolo11n-cls.yaml", f"data={digits_root}", "label_smoothing=0,0.1", "epochs=1",
                     f"project={tmp_path}"])
    err = capsys.readouterr().err
    assert rc == 1 and "No space left on device" in err and "Traceback" not in err, err
    assert "run the same command again" in err


def test_a_done_variant_whose_files_were_deleted_is_not_reported(tmp_path, digits_root, monkeypatch):
    """A done-marker alone proves nothing once results.csv is gone: the report refuses instead of reading nothing."""
    import yolo_ls.compare.runner as compare_mod

    out = tmp_path / "cmp"
    for v in ("eps0", "eps0.1"):
        (out / v / "seed0").mkdir(parents=True)
    monkeypatch.setattr(compare_mod, "_plan", lambda run, fp, epochs: ("reuse", "finished"))
    with pytest.raises(RuntimeError, match=r"results.csv \(epochs \[1\]\).* lack rows; delete the variant folder"):
        compare("yolo11n-cls.yaml", str(digits_root), "0,0.1", project=str(tmp_path), name="cmp", **ARGS)
    assert not (out / "report.md").exists()


def test_a_folder_that_never_trained_an_epoch_is_not_held_against_the_next_command(tmp_path) -> None:
    """A compare that failed before its first epoch (a wrong data=) left compare_variant.json and args.yaml: the
    corrected command trains there instead of refusing the folder as 'trained with other settings'."""
    import json

    from yolo_ls.compare.cache import STARTED, _plan

    run = tmp_path / "eps0" / "seed0"
    (run / "weights").mkdir(parents=True)
    (run / STARTED).write_text(json.dumps({"data": {"name": "/tmp/nonexist"}}))
    (run / "args.yaml").write_text("data: /tmp/nonexist\n")
    fp = {"data": {"path": "digits"}}
    assert _plan(run, fp, 2) == ("train", "never trained an epoch (an earlier compare stopped before training): "
                                          "training it now")
    (run / "results.csv").write_text("epoch,loss\n1,0.5\n")  # an epoch was trained: its settings matter
    assert _plan(run, fp, 2)[0] == "mismatch"


def test_every_variant_is_checked_against_the_data_before_the_first_trains(tmp_path, digits_root) -> None:
    from yolo_ls.compare import compare

    with pytest.raises(PluginArgumentError, match=r"variant ε=0.1: 'ls_prior' has 2 weights .* Nothing was trained"):
        compare("yolo11n-cls.yaml", str(digits_root), [0, 0.1], ls_mode="prior", ls_prior=[1, 2], epochs=1,
                project=str(tmp_path), name="c")
    assert not (tmp_path / "c").exists()
