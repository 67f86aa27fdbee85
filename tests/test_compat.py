"""The Ultralytics version differences bridged in engine/compat.py, checked against the installed stock release."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tests.helpers import ROOT, run_python


def test_supported_range_is_the_one_pyproject_declares():
    from yolo_ls.engine import compat

    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert f'"ultralytics{compat.SUPPORTED_SPEC}"' in text
    lo, hi = compat.SUPPORTED
    assert compat.SUPPORTED_SPEC == f">={'.'.join(map(str, lo))},<{'.'.join(map(str, hi[:2]))}"


def test_parse_version():
    from yolo_ls.engine.compat import parse_version

    assert parse_version("8.4.190") == (8, 4, 190)
    assert parse_version("8.3.210.dev0") == (8, 3, 210)
    assert parse_version("8.5.0rc1") == (8, 5, 0)


def test_classification_loss_items_match_the_installed_stock_loss():
    """At ε=0 the plugin's loss returns what stock v8ClassificationLoss returns: same value, same item type."""
    from ultralytics.utils.loss import v8ClassificationLoss

    from yolo_ls.core.losses import LabelSmoothingState, SmoothedClassificationLoss
    from yolo_ls.engine.compat import classification_loss_items

    g = torch.Generator().manual_seed(0)
    logits, cls = torch.randn(6, 4, generator=g), torch.randint(0, 4, (6,), generator=g)
    stock_loss, stock_items = v8ClassificationLoss()(logits, {"cls": cls})
    items = classification_loss_items()  # what engine.inject.install_smoothing gives the loss
    ours_loss, ours_items = SmoothedClassificationLoss(LabelSmoothingState(0.0), 4, loss_items=items)(logits,
                                                                                                     {"cls": cls})
    assert type(ours_items) is type(stock_items)
    if isinstance(stock_items, dict):
        assert stock_items.keys() == ours_items.keys() == {"loss"}
        stock_items, ours_items = stock_items["loss"], ours_items["loss"]
    assert torch.equal(ours_loss, stock_loss) and torch.equal(ours_items, stock_items)
    assert not ours_items.requires_grad
    # and at ε>0 the items carry the smoothed loss
    _, items = SmoothedClassificationLoss(LabelSmoothingState(0.1), 4)(logits, {"cls": cls})
    value = items["loss"] if isinstance(items, dict) else items
    assert float(value) == pytest.approx(float(F.cross_entropy(logits, cls, label_smoothing=0.1)), rel=1e-6)


def test_train_overrides_accept_stock_model_train_keys():
    """``Model.train`` of releases up to about 8.4.112 hands ``session`` to the trainer: not a user typo."""
    from yolo_ls.core.args import check_keys

    check_keys(["epochs", "session", "label_smoothing"])
    with pytest.raises(SyntaxError, match="'sesion' is not a valid YOLO or yolo-ls argument"):
        check_keys(["sesion"])


def test_stock_model_train_overrides_reach_the_trainer(tmp_path, monkeypatch):
    """Whatever keys the installed ``Model.train`` adds to the overrides, the yolo-ls trainer accepts them."""
    from yolo_ls import YOLO
    from yolo_ls.engine.trainers import ClassificationTrainer

    seen = {}

    class Stop(Exception):
        pass

    def spy_init(self, cfg=None, overrides=None, _callbacks=None):
        seen.update(overrides)
        from yolo_ls.core.args import check_keys, split_plugin_args

        check_keys(split_plugin_args(overrides)[0])
        raise Stop

    monkeypatch.setattr(ClassificationTrainer, "__init__", spy_init)
    with pytest.raises(Stop):
        YOLO("yolo11n-cls.yaml").train(data="digits", epochs=1, project=str(tmp_path))
    assert seen["mode"] == "train"


def test_has_model_yaml():
    import ultralytics

    from yolo_ls.engine.compat import has_model_yaml, parse_version

    assert has_model_yaml("yolo11n.yaml") and has_model_yaml("yolo11n-cls.yaml")
    assert not has_model_yaml("yolo99n.yaml")
    assert has_model_yaml("yolo26n.yaml") is (parse_version(ultralytics.__version__) >= (8, 4, 0))


FAKE_ULTRALYTICS = {
    "ultralytics/__init__.py": '__version__ = "8.3.100"\n',
    "ultralytics/utils/__init__.py": (
        "import logging\nLOGGER = logging.getLogger('fake-ultralytics')\n"
        "def colorstr(*a):\n    return a[-1]\n"
    ),
}


def test_an_older_release_gets_the_guard_message_not_a_bare_import_error(tmp_path):
    """A release without YAML/unwrap_model: every public entry point raises an ImportError naming both versions."""
    for rel, text in FAKE_ULTRALYTICS.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    code = (
        "import sys; sys.path.insert(0, {!r})\n"
        "try:\n    from yolo_ls import {}\nexcept ImportError as e:\n    print('IMPORTERROR', e)\n"
    )
    for name in ("YOLO", "DetectionTrainer"):
        out = run_python(code.format(str(tmp_path), name), timeout=120)
        assert out.returncode == 0, out.stderr
        assert "IMPORTERROR yolo-ls" in out.stdout
        assert "ultralytics 8.3.100 is installed" in out.stdout and ">=8.3.210,<8.5" in out.stdout
        assert "YAML" in out.stdout  # names what is missing


def test_ddp_state_file_matches_what_generate_ddp_file_writes(tmp_path, monkeypatch, digits_root):
    from ultralytics.utils import dist

    import yolo_ls
    from yolo_ls.engine.compat import ddp_state_file

    monkeypatch.setattr(dist, "USER_CONFIG_DIR", tmp_path)
    trainer = yolo_ls.ClassificationTrainer(overrides={"model": "yolo11n-cls.yaml", "data": str(digits_root),
                                                       "epochs": 1, "project": str(tmp_path / "runs")})
    file = dist.generate_ddp_file(trainer)
    assert Path(file).with_suffix(".pt").exists() is ddp_state_file()


def test_tune_is_refused_by_name_where_iterations_cannot_train_through_the_plugin(tmp_path, monkeypatch):
    import ultralytics.engine.trainer as engine_trainer

    from yolo_ls import YOLO

    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.delattr(engine_trainer, "_YOLO_CLI_COMMAND", raising=False)  # as in releases before 8.4
    with pytest.raises(NotImplementedError, match=r"model.tune\(\) through yolo-ls needs an ultralytics 8.4 release"):
        YOLO("yolo11n-cls.yaml").tune(data="digits", epochs=1, iterations=1, project=str(tmp_path), label_smoothing=0.1)
    assert not (tmp_path / "tune").exists() and not any(p.name != "cfg" for p in tmp_path.iterdir())


def test_calibration_hooks_gather_stats_only_where_validators_have_it():
    """8.4 validates on every DDP rank (``gather_stats`` collects to rank 0); 8.3 validates on rank 0 alone and its
    validators have no ``gather_stats``: the calibration's cross-rank hook is installed only where it exists."""
    from types import SimpleNamespace

    from ultralytics.engine.validator import BaseValidator
    from ultralytics.models.yolo.detect import DetectionValidator

    from yolo_ls.engine.callbacks.calibration import CalibrationCallbacks
    from yolo_ls.engine.compat import validates_on_every_rank

    assert validates_on_every_rank(DetectionValidator()) is hasattr(BaseValidator, "gather_stats")

    def fake(with_gather: bool) -> SimpleNamespace:
        v = SimpleNamespace(args=SimpleNamespace(task="detect"), training=False, postprocess=lambda p: p,
                            update_metrics=lambda p, b: None, get_stats=lambda: {})
        if with_gather:
            v.gather_stats = lambda: "stock"
        return v

    old = fake(False)  # as in 8.3.210
    CalibrationCallbacks().on_val_start(old)
    assert not hasattr(old, "gather_stats") and hasattr(old.get_stats, "__wrapped_calibration__")
    new = fake(True)  # as in 8.4.190: wrapped, and the stock gather still runs (no DDP here: nothing to reduce)
    CalibrationCallbacks().on_val_start(new)
    assert hasattr(new.gather_stats, "__wrapped_calibration__") and new.gather_stats() == "stock"
