"""``yolo-ls calibrate``: fit a post-hoc calibration on images the model never trained on, score it on images it was
not fitted on, and fold it into the checkpoint's weights (``best-calibrated.pt``, a stock Ultralytics checkpoint).

One pass of the stock validator collects the class logits: classify takes the head's logits, detection the logit of
every predict-style box kept at ``calib_conf`` and whether it matches a ground truth of its class at IoU 0.5 (the boxes
detection ECE scores). Splits are honest: by default the val split is cross-fitted (``folds`` folds by image: fit on
the others, score the held-out fold; the parameters written are fitted on all of it), or ``fit_split`` and
``score_split`` name two splits.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from yolo_ls.calibration.accumulator import ClassificationCalibration, DetectionCalibration
from yolo_ls.calibration.crossfit import assign_folds, cross_fit
from yolo_ls.calibration.heldout import box_logits
from yolo_ls.calibration.methods import SIGMOID_METHODS, SOFTMAX_METHODS
from yolo_ls.calibration.scaling import LogitMap, check_fit_size, fit_sigmoid_map, fit_softmax_map
from yolo_ls.calibration.threshold import precision_at, precision_threshold
from yolo_ls.core.checks import Choice, FloatRange, IntRange, PluginArgumentError
from yolo_ls.engine.callbacks.validator_hooks import match_boxes, predict_style_boxes, wrap

__all__ = ("calibrate", "calibrate_output_paths")

METHODS = {"classify": SOFTMAX_METHODS, "detect": SIGMOID_METHODS}
FAMILY = {"classify": "classify", "detect": "detect", "segment": "detect", "pose": "detect", "obb": "detect"}
DEFAULT_FOLDS = 5


@dataclass
class Collected:
    """One split's class logits. Classify: ``logits`` (N, K), ``target`` the labels. Detect: ``logits`` (N,) the box's
    class logit, ``target`` bool (matched at IoU 0.5), ``cls`` the box's class, ``n_gt`` ground truths per image."""

    split: str
    logits: torch.Tensor
    target: torch.Tensor
    image: torch.Tensor  # (N,) index into files
    files: list[str]
    cls: torch.Tensor | None = None
    n_gt: torch.Tensor | None = None
    val_metrics: dict[str, float] = field(default_factory=dict)

    def rows(self, idx: torch.Tensor) -> Collected:
        """The rows ``idx`` (images and their ground-truth counts are kept whole)."""
        return Collected(self.split, self.logits[idx], self.target[idx], self.image[idx], self.files,
                         None if self.cls is None else self.cls[idx], self.n_gt, self.val_metrics)

    def gt_of(self, images: torch.Tensor | None = None) -> int:
        """Ground-truth boxes on ``images`` (a bool mask over files; every image of the split when None), those
        without a kept box included: they count against recall."""
        if self.n_gt is None:
            return 0
        return int(self.n_gt.sum() if images is None else self.n_gt[images].sum())


class _Sink:
    """Hooks the stock validator's own methods to collect one split's class logits."""

    def __init__(self, task: str, conf: float) -> None:
        self.family, self.conf = FAMILY[task], conf
        self.logits: list[torch.Tensor] = []
        self.target: list[torch.Tensor] = []
        self.cls: list[torch.Tensor] = []
        self.image: list[torch.Tensor] = []
        self.files: list[str] = []
        self.n_gt: list[int] = []
        self._pending: Any = None

    def attach(self, validator: Any) -> None:
        wrap(validator, "postprocess", self._postprocess)
        wrap(validator, "update_metrics", self._update)
        if self.family == "classify":  # the stock classify val loader shuffles: read the images in file order
            from yolo_ls.engine.compat import unshuffled_loader

            loader = validator.dataloader
            validator.dataloader = unshuffled_loader(loader.dataset, loader.batch_size, validator.args.workers,
                                                     validator.device)
            self.files = [str(s[0]) for s in loader.dataset.samples]

    def _postprocess(self, orig: Callable) -> Callable:
        def fn(preds: Any) -> Any:
            if self.family == "classify":
                if not (isinstance(preds, (list, tuple)) and len(preds) > 1):
                    raise RuntimeError("yolo-ls calibrate: the model returned no class logits (only probabilities); "
                                       "calibrate needs a PyTorch .pt checkpoint")
                self._pending = preds[1]
            else:
                self._pending = predict_style_boxes(self.validator, preds, self.conf)
            return orig(preds)

        return fn

    def _update(self, orig: Callable) -> Callable:
        def fn(preds: Any, batch: dict[str, Any]) -> Any:
            out, self._pending = self._pending, None
            if self.family == "classify":
                start = sum(x.shape[0] for x in self.target)
                self.logits.append(out.detach().double().cpu())
                self.target.append(batch["cls"].detach().long().cpu())
                self.image.append(torch.arange(start, start + out.shape[0]))
            else:
                conf, correct, cls = match_boxes(self.validator, out, batch)
                for i, kept in enumerate(out):
                    idx = len(self.files)
                    self.files.append(str(batch["im_file"][i]))
                    self.n_gt.append(int((batch["batch_idx"] == i).sum()))
                    self.image.append(torch.full((kept["conf"].shape[0],), idx, dtype=torch.long))
                self.logits.append(box_logits(conf))
                self.target.append(correct.detach().bool().cpu())
                self.cls.append(cls.detach().long().cpu())
            return orig(preds, batch)

        return fn

    def __call__(self, validator: Any) -> None:  # on_val_start
        self.validator = validator
        self.attach(validator)

    def result(self, split: str, val_metrics: dict[str, float]) -> Collected:
        if self.family == "classify":
            logits = torch.cat(self.logits) if self.logits else torch.zeros(0, 0, dtype=torch.float64)
            return Collected(split, logits, torch.cat(self.target) if self.target else torch.zeros(0, dtype=torch.long),
                             torch.cat(self.image) if self.image else torch.zeros(0, dtype=torch.long), self.files,
                             val_metrics=val_metrics)
        empty = torch.zeros(0)
        return Collected(split, torch.cat(self.logits) if self.logits else empty.double(),
                         torch.cat(self.target) if self.target else empty.bool(),
                         torch.cat(self.image) if self.image else empty.long(), self.files,
                         torch.cat(self.cls) if self.cls else empty.long(),
                         torch.tensor(self.n_gt, dtype=torch.long), val_metrics)


def calibrate_output_paths(model: str | Path) -> dict[str, Path]:
    """Where calibrating ``model`` writes: ``<stem>-calibrated.pt`` next to it, and the json, per-image csv and
    diagram under the run's ``calibration/`` folder (the folder above ``weights/``, else next to the checkpoint)."""
    src = Path(model)
    run = src.parent.parent if src.parent.name == "weights" else src.parent
    tag = "" if src.stem == "best" else f"-{src.stem}"
    folder = run / "calibration"
    return {"checkpoint": src.with_name(f"{src.stem}-calibrated.pt"), "folder": folder,
            "json": folder / f"calibrate{tag}.json", "images": folder / f"calibrate{tag}_images.csv",
            "figure": folder / f"calibrate{tag}_reliability.png"}


def _read_checkpoint(src: Path) -> tuple[str, dict[int, str], Any, list[dict]]:
    """(task, class names, the training's data, calibration history) of a YOLO checkpoint, or a clear error."""
    from ultralytics.nn.tasks import torch_safe_load

    from yolo_ls.engine.fold import calibration_history, class_logit_layers

    try:
        ckpt, _ = torch_safe_load(str(src))
    except Exception as e:  # noqa: BLE001 - any unreadable file is the user's input, named
        raise ValueError(f"model={src} is not a readable Ultralytics checkpoint ({type(e).__name__}: {e})") from None
    net = (ckpt.get("ema") or ckpt.get("model")) if isinstance(ckpt, dict) else None
    if net is None or not hasattr(net, "model"):
        raise ValueError(f"model={src} holds no YOLO model: calibrate needs a YOLO best.pt or last.pt")
    task = getattr(net, "task", None) or (ckpt.get("train_args") or {}).get("task")
    if task not in FAMILY:
        raise ValueError(f"model={src} is a '{task}' model; calibrate needs a model with a class head: "
                         f"{', '.join(FAMILY)}")
    class_logit_layers(net)  # a clear error for a model without a class head
    names = getattr(net, "names", None) or {}
    names = dict(enumerate(names)) if isinstance(names, (list, tuple)) else dict(names)
    return task, names, (ckpt.get("train_args") or {}).get("data"), calibration_history(ckpt)


def _collect(src: Path, task: str, data: Any, split: str, conf: float, val_args: dict[str, Any]) -> Collected:
    from ultralytics import YOLO

    sink = _Sink(task, conf)
    model = YOLO(str(src), task=task)
    model.add_callback("on_val_start", sink)
    print(f"yolo-ls calibrate: collecting class logits on split '{split}'")
    with tempfile.TemporaryDirectory(prefix="yolo-ls-calibrate-") as tmp:  # the stock val run folder: not kept
        metrics = model.val(data=data, split=split, plots=False, save_json=False, project=tmp, name="val",
                            **val_args)
    got = sink.result(split, {k: float(v) for k, v in getattr(metrics, "results_dict", {}).items()})
    if not got.files:
        raise ValueError(f"split '{split}' of data={data} holds no image")
    return got


def _check_args(method: Any, folds: Any, fit_split: Any, score_split: Any, target_precision: Any, family: str,
                calib_conf: Any, calib_bins: Any) -> tuple[Any, ...]:
    method = Choice(METHODS[family])("method", method)
    folds = IntRange(2, example=DEFAULT_FOLDS)("folds", folds)
    if (fit_split is None) != (score_split is None):
        raise PluginArgumentError("fit_split and score_split go together: name both (i.e. fit_split=val "
                                  "score_split=test), or neither to cross-fit the val split")
    if fit_split is not None and str(fit_split) == str(score_split):
        raise PluginArgumentError(f"fit_split and score_split are both '{fit_split}': the images a calibration is "
                                  "fitted on are never scored; name two splits, or neither to cross-fit")
    if target_precision is not None:
        if family != "detect":
            raise PluginArgumentError("target_precision is for detection models (a box confidence threshold)")
        target_precision = FloatRange(0.0, 1.0, False, False, example=0.9)("target_precision", target_precision)
    calib_conf = FloatRange(0.0, 1.0, True, False, example=0.25)("calib_conf", calib_conf)
    calib_bins = IntRange(2, example=15)("calib_bins", calib_bins)
    return method, folds, target_precision, calib_conf, calib_bins


def _fit(rows: Collected, method: str, nc: int) -> LogitMap:
    if rows.cls is None:
        return fit_softmax_map(rows.logits, rows.target, method)
    return fit_sigmoid_map(rows.logits, rows.target, rows.cls, nc, method)


def _outputs(m: LogitMap | None, rows: Collected) -> torch.Tensor:
    """Probabilities (classify) or box confidences (detect) of ``rows`` after ``m`` (raw when None)."""
    if rows.cls is None:
        return torch.softmax(rows.logits if m is None else m(rows.logits), 1)
    return torch.sigmoid(rows.logits if m is None else m.per_box(rows.logits, rows.cls))


def _score(out: torch.Tensor, rows: Collected, nc: int, bins: int) -> tuple[dict[str, float], dict[str, Any]]:
    """Calibration metrics and reliability bins of ``out`` on ``rows`` (every row scored: detection boxes were
    already thresholded at ``calib_conf`` on the raw model, so before and after score the same boxes)."""
    if rows.cls is None:
        acc: Any = ClassificationCalibration(nc, bins)
        acc.update(out.float(), rows.target)
    else:
        acc = DetectionCalibration(nc, bins, conf_thres=0.0)
        acc.update(out.float(), rows.target, rows.cls)
    return acc.compute(), acc.bins()


def _mean_sd(per_fold: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    out = {}
    for k in per_fold[0]:
        vals = [f[k] for f in per_fold if isinstance(f[k], (int, float)) and math.isfinite(f[k])]
        out[k] = {"mean": statistics.fmean(vals) if vals else math.nan,
                  "sd": statistics.stdev(vals) if len(vals) > 1 else math.nan}
    return out


def _thresholds(target: float, score: Collected, conf: torch.Tensor, image_folds: torch.Tensor | None
                ) -> dict[str, Any]:
    """The lowest threshold reaching ``target`` precision on the held-out calibrated confidences ``conf`` (and on the
    raw ones), and, for a cross-fit, whether it holds on images it was not chosen on: for each fold, the threshold
    chosen on the other folds, measured on the fold (recall over every ground truth of the fold's images)."""
    raw = precision_threshold(_outputs(None, score), score.target, score.gt_of(), target)
    chosen = precision_threshold(conf, score.target, score.gt_of(), target)
    held = []
    if image_folds is not None:
        row_folds = image_folds[score.image]
        for f in torch.unique(image_folds).tolist():
            inside, other = row_folds == f, row_folds != f
            t = precision_threshold(conf[other], score.target[other], score.gt_of(image_folds != f), target)
            if math.isfinite(t["threshold"]):
                held.append(precision_at(conf[inside], score.target[inside], score.gt_of(image_folds == f),
                                         t["threshold"]))
    out = {"target": target, "calibrated": chosen, "raw": raw}
    if held:
        out["held_out"] = {"folds": len(held),
                           **_mean_sd([{k: h[k] for k in ("precision", "recall", "confidence")} for h in held])}
    return out


def calibrate(model: str | Path, data: Any = None, method: str = "temperature", *, split: str = "val",
              folds: int = DEFAULT_FOLDS, fit_split: str | None = None, score_split: str | None = None,
              target_precision: float | None = None, calib_conf: float = 0.25, calib_bins: int = 15, seed: int = 0,
              plots: bool = True, **val_args: Any) -> dict[str, Any]:
    """Calibrate a checkpoint and write ``<stem>-calibrated.pt``, ``calibration/calibrate.json`` and a before/after
    reliability diagram. Returns the json record.

    Args:
        model: A trained YOLO ``.pt`` checkpoint (classify, detect, segment, pose or obb).
        data: The dataset (default: the one the checkpoint was trained on).
        method: classify ``temperature``, ``vector`` or ``matrix``; detection ``temperature`` or ``platt``.
        split: The split to cross-fit (``folds`` folds by image) when ``fit_split``/``score_split`` are not given.
        fit_split, score_split: Fit on one split, score on another.
        target_precision: Detection: report the lowest threshold whose held-out precision reaches it.
        calib_conf: Detection: the boxes fitted and scored are those the raw model keeps at this confidence.
        **val_args: Ultralytics val arguments (``imgsz``, ``batch``, ``device``, ``workers``, ...).
    """
    from ultralytics import __version__ as ultralytics_version

    from yolo_ls._version import __version__
    from yolo_ls.core.args import check_keys
    from yolo_ls.datasets import resolve_data

    src = Path(str(model))
    if src.suffix != ".pt":
        raise PluginArgumentError(f"model={model} is not a .pt checkpoint: calibrate needs trained weights "
                                  "(i.e. model=runs/classify/train/weights/best.pt)")
    if not src.is_file():
        raise FileNotFoundError(f"model={model} does not exist")
    check_keys(val_args)
    task, names, trained_on, history = _read_checkpoint(src)
    family = FAMILY[task]
    method, folds, target_precision, calib_conf, calib_bins = _check_args(
        method, folds, fit_split, score_split, target_precision, family, calib_conf, calib_bins)
    data = resolve_data(data if data is not None else trained_on)
    if data is None:
        raise PluginArgumentError(f"model={src} does not record its dataset: pass data=")
    nc, paths = len(names), calibrate_output_paths(src)
    fitted_on = fit_split if fit_split is not None else split
    if str(fitted_on) == "train":
        from ultralytics.utils import LOGGER

        LOGGER.warning(f"yolo-ls calibrate: fitting on split 'train', the images {src.name} was trained on: its "
                       "confidences there are those of memorised images, so the calibration will not carry over to "
                       "new ones. Fit on val (the default) or another held-out split.")

    fit, score, scheme = _collect_splits(src, task, data, split, fit_split, score_split, folds, seed, calib_conf,
                                         val_args)
    _check_fit_size(fit, method, family, nc, calib_conf)
    print(f"yolo-ls calibrate: fitting {method} on {len(fit.files)} images ({fit.logits.shape[0]} "
          f"{'boxes' if fit.cls is not None else 'samples'})")
    ev = _evaluate(fit, score, method, nc, folds if fit is score else None, seed, calib_bins)
    record: dict[str, Any] = {
        "model": str(src), "output": str(paths["checkpoint"]), "task": task, "method": method,
        "parameters": ev["final"].params(), "num_classes": nc, **scheme,
        "fit": {"split": fit.split, "images": len(fit.files), "rows": int(fit.logits.shape[0])},
        "score": {"split": score.split, "images": len(score.files), "rows": int(score.logits.shape[0]),
                  "how": "held-out folds, each scored by the map fitted without it" if fit is score
                  else "the map fitted on fit_split"},
        "before": ev["before"], "after": ev["after"], "folds_mean_sd": ev["fold_stats"],
        "calib_conf": calib_conf if family == "detect" else None, "calib_bins": calib_bins,
        "bins": ev["bins"], "history": history, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "ultralytics": ultralytics_version, "yolo_ls": __version__, "val_before": score.val_metrics,
    }
    if target_precision is not None:
        record["target_precision"] = _thresholds(target_precision, score, ev["after_out"], ev["folds"])
    _write(record, paths, ev, fit, score, plots)
    print(summary(record, paths))
    return record


def _collect_splits(src: Path, task: str, data: Any, split: str, fit_split: str | None, score_split: str | None,
                    folds: int, seed: int, conf: float, val_args: dict[str, Any]
                    ) -> tuple[Collected, Collected, dict[str, Any]]:
    """(fit, score, scheme): one split to cross-fit (fit is score), or two splits that share no image."""
    if fit_split is None:
        fit = _collect(src, task, data, split, conf, val_args)
        return fit, fit, {"scheme": "cross-fit", "split": split, "folds": folds, "seed": seed}
    fit = _collect(src, task, data, fit_split, conf, val_args)
    score = _collect(src, task, data, score_split, conf, val_args)
    shared = set(fit.files) & set(score.files)
    if shared:
        raise ValueError(f"fit_split '{fit_split}' and score_split '{score_split}' share {len(shared)} images "
                         f"(i.e. {sorted(shared)[0]}): a calibration is never scored on images it was fitted on")
    return fit, score, {"scheme": "separate splits", "fit_split": fit_split, "score_split": score_split}


def _check_fit_size(fit: Collected, method: str, family: str, nc: int, calib_conf: float) -> None:
    """Enough images per class (classify) or boxes with both outcomes (detect), or one line naming the counts."""
    if fit.cls is None and nc < 2:
        raise ValueError("a one-class classifier always gives probability 1: there is no confidence to calibrate")
    per_class = torch.bincount(fit.target if fit.cls is None else fit.cls, minlength=nc)
    try:
        check_fit_size(method, per_class, family, n_correct=None if fit.cls is None else int(fit.target.sum()))
    except ValueError as e:
        lower = "lower calib_conf, " if calib_conf > 0 else ""
        hint = (f" (boxes the model keeps at calib_conf={calib_conf} on split '{fit.split}': {lower}use more images "
                "or train longer)" if fit.cls is not None else f" (split '{fit.split}')")
        raise ValueError(f"{e}{hint}") from None


def _evaluate(fit: Collected, score: Collected, method: str, nc: int, folds: int | None, seed: int,
              bins: int) -> dict[str, Any]:
    """The final map (fitted on every fitting row) and before/after metrics on held-out rows only: with ``folds``,
    each fold scored by the map fitted on the others (and per-fold mean ± sd, raw and calibrated); else the score
    split by the final map."""
    out: dict[str, Any] = {"final": _fit(fit, method, nc), "folds": None, "fold_stats": None}
    if folds is not None:
        image_folds = assign_folds(fit.files, folds, seed)  # by image file: every image, with a box or not
        fold_ids = image_folds[fit.image]
        res = cross_fit(fold_ids, lambda idx: _fit(fit.rows(idx), method, nc),
                        lambda m, idx: _outputs(m, fit.rows(idx)),
                        lambda o, idx: _score(o, fit.rows(idx), nc, bins)[0])
        held = [fit.rows(torch.nonzero(fold_ids == f).squeeze(1)) for f in torch.unique(fold_ids).tolist()]
        raw_folds = [_score(_outputs(None, rows), rows, nc, bins)[0] for rows in held]
        out.update(folds=image_folds, after_out=res.out_of_fold,
                   fold_stats={"raw": _mean_sd(raw_folds), "calibrated": _mean_sd(res.per_fold)})
    else:
        out["after_out"] = _outputs(out["final"], score)
    out["before"], before_bins = _score(_outputs(None, score), score, nc, bins)
    out["after"], after_bins = _score(out["after_out"], score, nc, bins)
    out["bins"] = {"before": before_bins, "after": after_bins}
    return out


def _write(record: dict[str, Any], paths: dict[str, Path], ev: dict[str, Any], fit: Collected, score: Collected,
           plots: bool) -> None:
    """The calibrated checkpoint (the final map folded in, the record in its history), the per-image csv, the
    before/after diagram and the json."""
    from yolo_ls.engine.checkpoints import atomic_write_bytes
    from yolo_ls.engine.fold import write_calibrated_checkpoint

    ckpt_record = {k: record[k] for k in ("method", "parameters", "num_classes", "date", "yolo_ls")}
    ckpt_record.update(source=Path(record["model"]).name, fit_split=fit.split, fit_images=len(fit.files))
    write_calibrated_checkpoint(record["model"], paths["checkpoint"], ev["final"].weight, ev["final"].bias,
                                ckpt_record)
    paths["folder"].mkdir(parents=True, exist_ok=True)
    _write_images_csv(paths["images"], fit, score, ev["folds"])
    record["images_csv"] = str(paths["images"])
    if plots:
        from yolo_ls.plots.figures import plot_reliability_overlay

        label = "held-out" if fit is score else f"on {score.split}"
        plot_reliability_overlay({"raw": ev["bins"]["before"], f"{record['method']} ({label})": ev["bins"]["after"]},
                                 paths["figure"], title=f"Before and after {record['method']} scaling")
        record["figure"] = str(paths["figure"])
    else:  # a diagram left by an earlier calibration would not show this one
        paths["figure"].unlink(missing_ok=True)
    atomic_write_bytes(paths["json"], json.dumps(_plain(record), indent=2, allow_nan=False).encode())


class CalibrateAtEnd:
    """``calibrate=METHOD``: at the end of training, calibrate best.pt on the run's val split (cross-fitted) and write
    ``weights/best-calibrated.pt``. Runs on rank 0, after the final validation."""

    def __init__(self, method: str, calib_conf: float, calib_bins: int) -> None:
        self.method, self.calib_conf, self.calib_bins = method, calib_conf, calib_bins

    def __call__(self, trainer: Any) -> None:
        from ultralytics.utils import RANK

        best = Path(trainer.best)
        if RANK not in {-1, 0} or self.method == "off" or not best.is_file():
            return
        a = trainer.args
        calibrate(best, a.data, self.method, calib_conf=self.calib_conf, calib_bins=self.calib_bins,
                  plots=bool(a.plots), imgsz=a.imgsz, batch=max(int(trainer.batch_size), 1), device=str(trainer.device),
                  workers=a.workers, verbose=False)


def _plain(x: Any) -> Any:
    """JSON types: tensors and arrays as lists, NaN and infinity as null."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if hasattr(x, "tolist"):  # tensors, numpy arrays and scalars
        x = x.tolist()
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    return x if x is None or isinstance(x, (bool, int, str)) else str(x)


def _write_images_csv(path: Path, fit: Collected, score: Collected, image_folds: torch.Tensor | None) -> None:
    """One row per image: its split, and for a cross-fit the fold it was scored in (fitted on every other fold)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    if image_folds is not None:
        has_rows = torch.zeros(len(fit.files), dtype=torch.bool)
        has_rows[fit.image] = True
        w.writerow(["image", "split", "fold", "role"])
        for i, (f, fold) in enumerate(zip(fit.files, image_folds.tolist())):
            role = f"scored in fold {fold}, fitted in the others" if has_rows[i] else (
                f"no box kept; its ground truths count in fold {fold}'s recall")
            w.writerow([f, fit.split, fold, role])
    else:
        w.writerow(["image", "split", "role"])
        w.writerows([f, fit.split, "fit"] for f in fit.files)
        w.writerows([f, score.split, "score"] for f in score.files)
    from yolo_ls.engine.checkpoints import atomic_write_bytes

    atomic_write_bytes(path, buf.getvalue().encode())


def summary(record: dict[str, Any], paths: dict[str, Path]) -> str:
    """The console summary: the fitted parameters, before/after on held-out images, and what was written."""
    detect = record["task"] != "classify"
    keys = ("d_ece", "d_mce", "d_accuracy", "d_confidence") if detect else ("ece", "mce", "nll", "brier", "accuracy",
                                                                            "confidence")
    params = record["parameters"]
    what = (f"T={params['temperature']:.4f}" if "temperature" in params
            else f"{record['num_classes']} classes' scale and bias")
    how = (f"{record['folds']}-fold cross-fit on '{record['split']}'" if record["scheme"] == "cross-fit"
           else f"fitted on '{record['fit_split']}', scored on '{record['score_split']}'")
    lines = [f"yolo-ls calibrate: {record['method']} {what} ({how}, {record['score']['images']} images)",
             f"  {'':14}{'raw':>10}  {'calibrated (held-out)':>22}"
             + ("   per fold, mean ± sd: raw -> calibrated" if record.get("folds_mean_sd") else "")]
    folds = record.get("folds_mean_sd")
    for k in keys:
        if k not in record["before"]:
            continue
        spread = ""
        if folds and k in folds["calibrated"]:
            r, c = folds["raw"][k], folds["calibrated"][k]
            spread = f"   {r['mean']:.4f} ± {r['sd']:.4f} -> {c['mean']:.4f} ± {c['sd']:.4f}"
        lines.append(f"  {k:14}{record['before'][k]:>10.4f}  {record['after'][k]:>22.4f}{spread}")
    ek = "d_ece" if detect else "ece"
    if record["after"][ek] > record["before"][ek]:
        lines.append(f"  note: {ek} is higher after calibration on held-out images: "
                     + ("the model was already calibrated on this data; keep the raw checkpoint"
                        if record["method"] == "temperature" else
                        f"{record['method']} overfits this split; try method=temperature or more images"))
    tp = record.get("target_precision")
    if tp:
        c = tp["calibrated"]
        if math.isfinite(c["threshold"]):
            held = tp.get("held_out")
            check = (f"; held-out precision at the cross-fitted threshold {held['precision']['mean']:.3f} ± "
                     f"{held['precision']['sd']:.3f}" if held else "")
            lines.append(f"  precision {tp['target']}: conf >= {c['threshold']:.3f} keeps {c['boxes']} boxes (mean "
                         f"confidence {c['confidence']:.3f}), recall {c['recall']:.3f} (raw model: conf >= "
                         f"{tp['raw']['threshold']:.3f}){check}")
        else:
            lines.append(f"  precision {tp['target']}: no threshold reaches it on these boxes")
    lines.append(f"  wrote {paths['checkpoint']} (a stock Ultralytics checkpoint: predict, val and export give "
                 f"calibrated confidences)\n        {paths['json']}")
    return "\n".join(lines)
