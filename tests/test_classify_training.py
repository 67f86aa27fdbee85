"""Tiny real classification trainings through every way in, plus checkpoints, val/predict after train and the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import NO_FIGURES, TINY_CLS, results, run_python

pytestmark = pytest.mark.training


def _train(route: str, project: Path, name: str, data: Path, server: Any = None, **kwargs) -> Path:
    """Train 1 epoch of yolo11n-cls on the digits through one of the ways in; return the run folder. The CLI's
    ``yolo-ls train ...`` runs as a forked child of the fork server ``server`` (a process of its own)."""
    args = {**TINY_CLS, "data": str(data), "project": str(project), "name": name, "exist_ok": True, **kwargs}
    if route != "stock":  # stock Ultralytics knows no plugin argument
        args.update(NO_FIGURES)
    if route == "plugin":
        from yolo_ls import YOLO

        model = YOLO("yolo11n-cls.yaml")
        model.train(**args)
    elif route == "stock+trainer":
        import ultralytics

        import yolo_ls

        model = ultralytics.YOLO("yolo11n-cls.yaml")
        model.train(trainer=yolo_ls.ClassificationTrainer, **args)
    elif route == "stock":
        import ultralytics

        model = ultralytics.YOLO("yolo11n-cls.yaml")
        model.train(**args)
    elif route == "cli":
        rc, _, log = server.run(["train", "model=yolo11n-cls.yaml", *(f"{k}={v}" for k, v in args.items())])
        assert rc == 0, log.read_text()[-3000:]
        model = None
    else:
        raise ValueError(route)
    run = project / name
    assert (run / "results.csv").exists()
    return run, model


@pytest.fixture(scope="module")
def runs(fork_server, tmp_path_factory, digits_root, shared_cls_run):  # the server imports while the others train
    """One run per route, shared by the tests below (each trains once; the plugin route's ε=0.1 run is conftest's,
    which test_compat_training reads too)."""
    project = tmp_path_factory.mktemp("runs")
    out = {}
    out["stock"], _ = _train("stock", project, "stock", digits_root)
    out["eps0"], _ = _train("plugin", project, "eps0", digits_root, label_smoothing=0.0)
    out["plugin"], out["plugin_model"] = shared_cls_run  # _train("plugin", ..., label_smoothing=0.1)
    out["trainer"], _ = _train("stock+trainer", project, "trainer", digits_root, label_smoothing=0.1)
    out["cli"], _ = _train("cli", project, "cli", digits_root, server=fork_server, label_smoothing=0.1)
    return out


def _loss(run: Path) -> float:
    return float(results(run)["train/loss"].iloc[-1])


def test_eps0_reproduces_stock_training(runs):
    # same seed, deterministic: the plugin loss at ε=0 is stock cross-entropy to float tolerance
    assert _loss(runs["eps0"]) == pytest.approx(_loss(runs["stock"]), rel=2e-3)


@pytest.mark.parametrize("route", ["plugin", "trainer", "cli"])
def test_every_way_in_reaches_the_loss_and_saves_args(runs, route):
    run = runs[route]
    assert abs(_loss(run) - _loss(runs["eps0"])) > 1e-3, "label_smoothing=0.1 did not change the training loss"
    args = yaml.safe_load((run / "args.yaml").read_text())
    assert args["label_smoothing"] == 0.1 and args["ls_mode"] == "uniform"
    assert results(run)["label_smoothing"].tolist() == [0.1]


def test_routes_agree(runs):
    # yolo_ls.YOLO, trainer= on a stock model and the CLI run the same code: same seed, same loss
    assert _loss(runs["trainer"]) == pytest.approx(_loss(runs["plugin"]), rel=1e-6)
    assert _loss(runs["cli"]) == pytest.approx(_loss(runs["plugin"]), rel=1e-6)


def test_checkpoint_loads_and_predicts_without_yolo_ls(runs, digits_root):
    best = runs["plugin"] / "weights" / "best.pt"
    image = next((digits_root / "val" / "3").iterdir())
    code = f"""
import sys
sys.modules["yolo_ls"] = None  # importing yolo_ls now raises ImportError: plain Ultralytics only
try:
    import yolo_ls
    raise SystemExit("yolo_ls importable")
except ImportError:
    pass
from ultralytics import YOLO
model = YOLO({str(best)!r})
res = model.predict({str(image)!r}, imgsz=32, device="cpu", verbose=False)
assert res[0].probs is not None and res[0].probs.data.shape[0] == 10, res
print("ARGS", sorted(k for k in model.ckpt["train_args"] if k.startswith("ls_") or k == "label_smoothing"))
print("STATE", model.model.yolo_ls["args"]["label_smoothing"])
"""
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ARGS []" in proc.stdout  # stock train_args: no plugin keys
    assert "STATE 0.1" in proc.stdout  # the plugin state rides along as a plain dict


def test_same_model_object_can_predict_and_val_after_train(runs, digits_root):
    model = runs["plugin_model"]
    image = next((digits_root / "val" / "7").iterdir())
    assert model.predict(str(image), imgsz=32, device="cpu", verbose=False)[0].probs is not None
    metrics = model.val(data=str(digits_root), imgsz=32, batch=64, device="cpu", plots=False, verbose=False)
    assert 0.0 <= metrics.top1 <= 1.0


def test_plugin_trainer_keeps_stock_classes_in_checkpoint(runs):
    from ultralytics.nn.tasks import ClassificationModel
    from ultralytics.utils.patches import torch_load

    for name in ("last.pt", "best.pt"):
        ckpt = torch_load(runs["plugin"] / "weights" / name, map_location="cpu", weights_only=False)
        model = ckpt.get("ema") or ckpt["model"]  # final checkpoints are stripped: the EMA moves to "model"
        assert type(model) is ClassificationModel
        assert getattr(model, "criterion", None) is None
        assert not any(k in ckpt["train_args"] for k in ("label_smoothing", "ls_mode"))


def test_prior_and_exclusive_modes_train(tmp_path, digits_root):
    run, _ = _train("plugin", tmp_path, "prior", digits_root, label_smoothing=0.1, ls_mode="prior")
    assert yaml.safe_load((run / "args.yaml").read_text())["ls_mode"] == "prior"
    run, _ = _train("plugin", tmp_path, "excl", digits_root, label_smoothing=0.1, ls_mode="exclusive", epochs=1)
    assert results(run)["label_smoothing"].tolist() == [0.1]

