"""``yolo-ls calibrate`` end to end on tiny trained checkpoints: honest splits (no image a map was fitted on is ever
scored by it), the written checkpoint loaded by stock Ultralytics gives softmax(map(z)) of the raw logits, the json
and per-image record, detection with a target precision, and clear errors before any work."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch

from tests.helpers import run_cli_batch

pytestmark = pytest.mark.training

VAL = dict(imgsz=32, batch=64, workers=0, device="cpu")


@pytest.fixture()
def cls_ckpt(shared_cls_run, tmp_path, monkeypatch) -> Path:
    """A copy of the shared classify run's best.pt in its own run folder (weights/best.pt)."""
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "cfg"))
    run, _ = shared_cls_run
    (tmp_path / "run" / "weights").mkdir(parents=True)
    dst = tmp_path / "run" / "weights" / "best.pt"
    shutil.copy(run / "weights" / "best.pt", dst)
    return dst


def _raw_logits(ckpt: Path, images: list[str], imgsz: int = 32) -> torch.Tensor:
    """The raw checkpoint's class logits for ``images`` through stock predict (a hook on the head's Linear)."""
    from ultralytics import YOLO

    model = YOLO(str(ckpt))
    out: list[torch.Tensor] = []
    predictor_model = model.model
    hook = predictor_model.model[-1].linear.register_forward_hook(lambda m, i, o: out.append(o.detach().double()))
    try:
        model.predict(images, imgsz=imgsz, device="cpu", verbose=False, batch=len(images))
    finally:
        hook.remove()
    return torch.cat(out)


def test_classify_cross_fit_never_scores_a_fitting_image(cls_ckpt, digits_root, monkeypatch) -> None:
    """Spy on every fit and every application of a fitted map: the images a map is applied to (scored) never meet the
    images it was fitted on, and every val image is scored exactly once."""
    from yolo_ls.engine import calibrate as cal

    fitted: dict[int, set[int]] = {}
    scored: list[int] = []
    real_fit, real_outputs = cal._fit, cal._outputs

    def spy_fit(rows, method, nc):
        m = real_fit(rows, method, nc)
        fitted[id(m)] = set(rows.image.tolist())
        return m

    def spy_outputs(m, rows):
        if m is not None:  # any fitted map, the final one included: it must never score its own images
            images = set(rows.image.tolist())
            assert not images & fitted[id(m)], "a map scored an image it was fitted on"
            scored.extend(rows.image.tolist())
        return real_outputs(m, rows)

    monkeypatch.setattr(cal, "_fit", spy_fit)
    monkeypatch.setattr(cal, "_outputs", spy_outputs)
    record = cal.calibrate(cls_ckpt, str(digits_root), "temperature", **VAL)
    assert len(fitted) == cal.DEFAULT_FOLDS + 1  # five fold maps and the final one, fitted on every image
    assert sorted(scored) == list(range(record["score"]["images"]))  # each val image scored once
    assert record["score"]["images"] == 360 and record["scheme"] == "cross-fit"

    rows = list(csv.DictReader(open(record["images_csv"])))
    assert len(rows) == 360 and {r["fold"] for r in rows} == {str(f) for f in range(5)}
    saved = json.loads(Path(cls_ckpt.parents[1] / "calibration" / "calibrate.json").read_text())
    assert saved["parameters"]["temperature"] == pytest.approx(record["parameters"]["temperature"])
    assert saved["folds_mean_sd"]["calibrated"]["ece"]["sd"] > 0
    assert sum(saved["bins"]["before"]["count"]) == sum(saved["bins"]["after"]["count"]) == 360  # plain JSON lists
    assert (cls_ckpt.parents[1] / "calibration" / "calibrate_reliability.png").stat().st_size > 10_000


@pytest.mark.parametrize("method", ["temperature", "vector"])
def test_calibrated_checkpoint_gives_mapped_softmax(cls_ckpt, digits_root, method) -> None:
    """Stock ``ultralytics.YOLO`` on best-calibrated.pt: probabilities = softmax(A z + b) of the raw checkpoint's
    logits z, with A, b read back from calibrate.json (to 1e-5)."""
    from ultralytics import YOLO

    from yolo_ls.calibration.scaling import LogitMap
    from yolo_ls.engine.calibrate import calibrate

    record = calibrate(cls_ckpt, str(digits_root), method, plots=False, **VAL)
    images = sorted(str(p) for p in (digits_root / "val").rglob("*.png"))[:40]
    z = _raw_logits(cls_ckpt, images)
    want = torch.softmax(LogitMap.from_params(method, record["parameters"], record["num_classes"])(z), 1)
    got = torch.stack([r.probs.data.double() for r in YOLO(record["output"]).predict(images, imgsz=32, device="cpu",
                                                                                      verbose=False)])
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    if method == "temperature":  # the order is unchanged, so top-1 is too
        assert torch.equal(got.argmax(1), z.argmax(1))


def test_separate_splits_and_refusals(cls_ckpt, digits_root, monkeypatch) -> None:
    from ultralytics.utils import LOGGER

    from yolo_ls.core.checks import PluginArgumentError
    from yolo_ls.engine.calibrate import calibrate

    warned: list[str] = []
    monkeypatch.setattr(LOGGER, "warning", lambda msg, *a, **k: warned.append(str(msg)))
    record = calibrate(cls_ckpt, str(digits_root), fit_split="train", score_split="val", plots=False, **VAL)
    assert any("fitting on split 'train'" in w for w in warned)
    assert record["scheme"] == "separate splits" and record["folds_mean_sd"] is None
    assert record["fit"]["images"] == 1437 and record["score"]["images"] == 360
    with pytest.raises(PluginArgumentError, match="both 'val'"):
        calibrate(cls_ckpt, str(digits_root), fit_split="val", score_split="val")
    with pytest.raises(PluginArgumentError, match="go together"):
        calibrate(cls_ckpt, str(digits_root), fit_split="val")
    with pytest.raises(PluginArgumentError, match="Did you mean 'temperature'"):
        calibrate(cls_ckpt, str(digits_root), method="temprature")
    with pytest.raises(PluginArgumentError, match="'vector', 'matrix'"):
        calibrate(cls_ckpt, str(digits_root), method="platt")
    with pytest.raises(PluginArgumentError, match="target_precision is for detection"):
        calibrate(cls_ckpt, str(digits_root), target_precision=0.9)
    with pytest.raises(PluginArgumentError, match="folds"):
        calibrate(cls_ckpt, str(digits_root), folds=1)
    with pytest.raises(PluginArgumentError, match="not a .pt checkpoint"):
        calibrate("yolo11n-cls.yaml", str(digits_root))
    bogus = cls_ckpt.with_name("bogus.pt")
    torch.save({"hello": 1}, bogus)
    with pytest.raises(ValueError, match="holds no YOLO model"):
        calibrate(bogus, str(digits_root))


def test_calibrate_twice_composes(cls_ckpt, digits_root) -> None:
    """Calibrating best-calibrated.pt again writes a third checkpoint whose history holds both records."""
    from yolo_ls.engine.calibrate import calibrate
    from yolo_ls.engine.fold import calibration_history

    first = calibrate(cls_ckpt, str(digits_root), plots=False, **VAL)
    second = calibrate(first["output"], str(digits_root), plots=False, **VAL)
    assert [h["method"] for h in calibration_history(second["output"])] == ["temperature", "temperature"]
    assert len(second["history"]) == 1
    # the first temperature already fitted val: the second is close to 1
    assert second["parameters"]["temperature"] == pytest.approx(1.0, abs=0.1)


def test_detection_without_a_correct_box_is_refused_clearly(shared_det_run, tmp_path, monkeypatch) -> None:
    """A detector with no correct box at calib_conf (the shared 1-epoch model) cannot be fitted: one line naming the
    counts, before anything is written."""
    from yolo_ls.engine.calibrate import calibrate

    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "cfg"))
    run, _ = shared_det_run
    (tmp_path / "run" / "weights").mkdir(parents=True)
    ckpt = tmp_path / "run" / "weights" / "best.pt"
    shutil.copy(run / "weights" / "best.pt", ckpt)
    with pytest.raises(ValueError, match=r"needs at least 1 correct and 1 wrong boxes, found 0 correct"):
        calibrate(ckpt, None, "platt", calib_conf=0.0, imgsz=64, batch=16, workers=0, device="cpu")
    assert not ckpt.with_name("best-calibrated.pt").exists() and not (tmp_path / "run" / "calibration").exists()


def test_cli_help_lists_calibrate_arguments(tmp_path) -> None:
    """``yolo-ls calibrate --help`` lists calibrate's own arguments (the mistakes answered before torch loads are in
    test_cli_superset)."""
    (out,) = run_cli_batch([["calibrate", "--help"]], cwd=tmp_path)
    assert out.returncode == 0 and "target_precision" in out.stdout and "fit_split" in out.stdout


def test_calibrate_at_end_of_training(digits_root, tmp_path, monkeypatch) -> None:
    """``calibrate=temperature`` in train writes weights/best-calibrated.pt and calibration/calibrate.json."""
    from tests.helpers import NO_FIGURES, TINY_CLS
    from yolo_ls import YOLO

    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "cfg"))
    YOLO("yolo11n-cls.yaml").train(data=str(digits_root), project=str(tmp_path), name="run", calibrate="temperature",
                                   **TINY_CLS, **NO_FIGURES)
    run = tmp_path / "run"
    assert (run / "weights" / "best-calibrated.pt").is_file()
    record = json.loads((run / "calibration" / "calibrate.json").read_text())
    assert record["method"] == "temperature" and record["scheme"] == "cross-fit"


@pytest.mark.parametrize("seed", [0, 1])
def test_target_precision_counts_every_ground_truth_and_holds_out_each_fold(seed: int) -> None:
    """The threshold is chosen on the other folds' boxes and measured on the fold's; recall's denominator holds every
    ground truth of the fold's images, those on images without a kept box too (hand-made boxes, no model)."""
    from yolo_ls.calibration.crossfit import assign_folds
    from yolo_ls.engine.calibrate import Collected, _thresholds

    g = torch.Generator().manual_seed(seed)
    files = [f"im{i}.png" for i in range(40)]
    image = torch.arange(30).repeat_interleave(3)  # images 30..39 keep no box
    conf = torch.rand(90, generator=g, dtype=torch.float64)
    correct = torch.rand(90, generator=g, dtype=torch.float64) < conf
    n_gt = torch.full((40,), 4)
    rows = Collected("val", torch.logit(conf), correct, image, files, torch.zeros(90, dtype=torch.long), n_gt)
    folds = assign_folds(files, 5, seed)
    out = _thresholds(0.8, rows, conf, folds)
    assert out["calibrated"]["recall"] == pytest.approx(out["calibrated"]["precision"] * out["calibrated"]["boxes"]
                                                        / 160)  # 40 images x 4 ground truths
    held = []
    for f in range(5):
        other = folds[image] != f
        t = _thresholds(0.8, Collected("val", rows.logits[other], correct[other], image[other], files,
                                       rows.cls[other], n_gt), conf[other], None)["calibrated"]["threshold"]
        inside = folds[image] == f
        keep = conf[inside] >= t
        held.append(float(correct[inside][keep].double().sum()) / int(4 * (folds == f).sum()))
    assert out["held_out"]["recall"]["mean"] == pytest.approx(sum(held) / 5)


def test_a_recalibration_without_plots_leaves_no_stale_diagram(cls_ckpt, digits_root) -> None:
    """The diagram beside calibrate.json is always this calibration's: plots=False removes an earlier one."""
    from yolo_ls.engine.calibrate import calibrate, calibrate_output_paths

    figure = calibrate_output_paths(cls_ckpt)["figure"]
    assert "figure" in calibrate(cls_ckpt, str(digits_root), **VAL) and figure.is_file()
    assert "figure" not in calibrate(cls_ckpt, str(digits_root), plots=False, **VAL) and not figure.exists()
