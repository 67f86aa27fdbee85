"""Per-epoch calibration through Ultralytics callbacks only, so it works on stock trainers and plain ``model.val()``.

What it hooks (all from callbacks; nothing is subclassed):
    - ``on_val_start``: a fresh streaming accumulator on the validator's device. Classification wraps the validator's
      ``update_metrics`` to feed the softmax probabilities of each batch; detection wraps ``postprocess`` to run
      predict()'s single-label NMS at ``calib_conf`` on the same raw outputs (no second forward pass) and
      ``update_metrics`` to match those boxes to the batch's ground truth at IoU 0.5. The validator's ``get_stats``
      is wrapped so the returned metrics carry ``calib/<name>``, which is how they reach ``trainer.metrics``,
      results.csv, TensorBoard and MLflow. Under DDP every rank validates its share of the val set; the validator's
      ``gather_stats`` (which Ultralytics runs on every rank) is wrapped to reduce the accumulators to rank 0 first
      (:meth:`CalibrationCallbacks._sync_ranks`: one reduction per validation, never per batch), so the metrics,
      diagrams and the ``auto`` reading cover the whole val set. (Ultralytics 8.3 validates on rank 0 alone, over the
      whole val set, and has no ``gather_stats``: nothing to reduce there, see :mod:`yolo_ls.engine.compat`.)
    - ``on_pretrain_routine_end``: seeds ``trainer.metrics`` with the ``calib/*`` keys (NaN until measured) so
      results.csv has them from its first row. A fresh run into an existing folder removes the previous run's
      ``calibration.csv`` and ``calibration/``; a resume rewrites them from the checkpoint's record (yolo-ls trainers)
      or trims them to the resume epoch (stock trainers).
    - Inside each training validation (``get_stats``), before Ultralytics saves the epoch's checkpoint: the epoch's row
      in ``calibration.csv`` and its bins in ``calibration/epochs.json``, both written atomically
      (:meth:`CalibrationCallbacks.commit_epoch`). So the checkpoint of epoch E implies E's rows on disk.
    - ``on_fit_epoch_end``: with ``calib_plots=all``, ``calibration/reliability_epoch{E:03d}.png``. After the final
      validation of ``best.pt``, ``calibration/reliability.png`` and ``calibration/calibration_curves.png`` (unless
      ``calib_plots=off``). Figures are drawn in forked children (:class:`yolo_ls.plots.BackgroundPlots`);
      ``on_train_end`` waits for them. ``yolo-ls plot RUN`` draws every epoch's diagram from ``epochs.json`` on demand.
    - ``on_val_end`` of a plain ``model.val()``: ``reliability.png`` in the val folder, metrics logged and attached to
      the returned metrics object as ``.calibration``.

Classification keeps only per-bin sums (plus the N top confidences for ``ace``). The final epoch and plain
validations also keep the val probabilities to fit a temperature (Guo et al. 2017) and report ``ece_ts``; under
DDP every rank's kept probabilities are gathered to rank 0 first, so the temperature is fitted on the whole val set.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from yolo_ls.calibration import CLASSIFICATION_METRICS as CLS_KEYS
from yolo_ls.calibration import DETECTION_METRICS as DET_KEYS
from yolo_ls.calibration import (
    ClassificationCalibration,
    DetectionCalibration,
    apply_temperature,
    ece,
    fit_temperature,
    nll,
)
from yolo_ls.core.args import PLOT_CHOICES

PREFIX = "calib/"
EPOCHS_JSON = Path("calibration") / "epochs.json"  # per-epoch bins, relative to the run folder


def metric_keys(task: str) -> tuple[str, ...]:
    """The calibration metric names logged for a task (without the ``calib/`` prefix)."""
    return CLS_KEYS if task == "classify" else DET_KEYS


def _is_calibration_callback(fn: Any) -> bool:
    return isinstance(getattr(fn, "__self__", None), CalibrationCallbacks)


def registered_calibration(callbacks: dict[str, list]) -> CalibrationCallbacks | None:
    """The CalibrationCallbacks instance registered in an Ultralytics callbacks dict, if any."""
    return next((fn.__self__ for fn in callbacks.get("on_val_start", []) if _is_calibration_callback(fn)), None)


class CalibrationCallbacks:
    """The callbacks that measure calibration at every validation and write it out.

    Args:
        bins (int): Equal-width confidence bins (``calib_bins``).
        plots (str): One of ``PLOT_CHOICES``: ``final`` (the final figures; per-epoch bins kept for ``yolo-ls plot``),
            ``all`` (also each epoch's diagram, drawn in a forked child as the epoch ends) or ``off`` (no figures).
        conf (float): Detection predictions with confidence below this are ignored (``calib_conf``).
    """

    EVENTS = ("on_pretrain_routine_end", "on_train_epoch_end", "on_val_start", "on_val_end", "on_fit_epoch_end",
              "on_train_end")

    def __init__(self, bins: int = 15, plots: str = "final", conf: float = 0.25) -> None:
        if plots not in PLOT_CHOICES:
            raise ValueError(f"plots='{plots}' is invalid, expected one of {list(PLOT_CHOICES)}")
        self.bins, self.plots, self.conf = int(bins), plots, float(conf)
        self.final_epoch = False
        self.in_training = False  # set once a trainer runs these callbacks: its final val writes the final plots
        self.last: dict[str, Any] | None = None  # result of the latest validation
        self._trainer: Any = None  # the trainer whose epoch is being validated (set at on_train_epoch_end)
        self.committed: dict[int, dict[str, Any]] = {}  # epoch -> its calibration.csv row and epochs.json entry

    # ------------------------------------------------------------------------------------------------ register
    def register(self, target: Any) -> Any:
        """Add the callbacks to a YOLO model, trainer or validator (anything with ``add_callback``), once."""
        self.attach(target)
        return target

    def attach(self, target: Any) -> CalibrationCallbacks:
        """Register on ``target`` unless an instance already is (the multi-GPU relaunch hands the parent's callbacks
        back in); returns the instance that is registered, which the trainer then holds as ``ls_calibration``."""
        existing = registered_calibration(target.callbacks)
        if existing is not None:
            return existing
        for event in self.EVENTS:
            target.add_callback(event, getattr(self, event))
        return self

    # ------------------------------------------------------------------------------------------- validator side
    def on_val_start(self, validator: Any) -> None:
        """Start an accumulator for this validation and hook the validator's predictions and stats."""
        task = validator.args.task
        self.task = task
        keep = (not validator.training) or self.final_epoch
        self._probs: list[torch.Tensor] | None = [] if (task == "classify" and keep) else None
        self._labels: list[torch.Tensor] = []
        self.acc = None
        if task == "classify":
            orig = getattr(validator.update_metrics, "__wrapped_calibration__", validator.update_metrics)

            def update_metrics(preds, batch, _orig=orig):
                self._update_classify(preds, batch)
                return _orig(preds, batch)

            update_metrics.__wrapped_calibration__ = orig
            validator.update_metrics = update_metrics
        else:  # score what predict() keeps: single-label NMS at calib_conf over the validator's own raw outputs
            self._det_kept: list[dict[str, torch.Tensor]] | None = None
            orig_post = getattr(validator.postprocess, "__wrapped_calibration__", validator.postprocess)
            orig_update = getattr(validator.update_metrics, "__wrapped_calibration__", validator.update_metrics)

            def postprocess(preds, _orig=orig_post):
                self._det_kept = self._predict_style(validator, preds)
                return _orig(preds)

            def update_metrics(preds, batch, _orig=orig_update):
                self._update_detect(validator, batch)
                return _orig(preds, batch)

            postprocess.__wrapped_calibration__ = orig_post
            update_metrics.__wrapped_calibration__ = orig_update
            validator.postprocess, validator.update_metrics = postprocess, update_metrics
        orig_get = getattr(validator.get_stats, "__wrapped_calibration__", validator.get_stats)

        def get_stats(_orig=orig_get):
            stats = _orig()
            self.last = self._finish(validator)
            if self.last["training"] and self._trainer is not None:  # before Ultralytics saves this epoch's checkpoint
                self.commit_epoch(self._trainer, self.last)
            return {**stats, **{PREFIX + k: self.last["metrics"][k] for k in metric_keys(task)}}

        get_stats.__wrapped_calibration__ = orig_get
        validator.get_stats = get_stats
        from yolo_ls.engine.compat import validates_on_every_rank

        if not validates_on_every_rank(validator):  # 8.3: rank 0 alone validates the whole val set
            return
        orig_gather = getattr(validator.gather_stats, "__wrapped_calibration__", validator.gather_stats)

        def gather_stats(_orig=orig_gather):  # every rank runs it (Ultralytics' own gather is next to ours)
            self._sync_ranks(validator)
            return _orig()

        gather_stats.__wrapped_calibration__ = orig_gather
        validator.gather_stats = gather_stats

    def _update_classify(self, preds: torch.Tensor, batch: dict[str, Any]) -> None:
        probs = preds.float()
        if self.acc is None:
            self.acc = ClassificationCalibration(probs.shape[1], self.bins, device=probs.device)
        labels = batch["cls"].long()
        self.acc.update(probs, labels)
        if self._probs is not None:
            self._probs.append(probs.detach())
            self._labels.append(labels.detach())

    def _predict_style(self, validator: Any, preds: Any) -> list[dict[str, torch.Tensor]]:
        """The boxes ``predict(conf=calib_conf)`` keeps from this batch's raw outputs, in the validator's image space.

        Same call as ``DetectionPredictor.postprocess``: one class per box (``multi_label=False``), confidence above
        ``calib_conf``, the validator's ``iou`` (predict's default 0.7), ``max_det`` and ``agnostic_nms``; end-to-end
        heads (YOLO26) only filter their one-box-per-query output, rotated NMS for OBB; segmentation drops boxes with
        an empty mask as ``SegmentationPredictor`` does.
        """
        from ultralytics.utils import nms

        args, task = validator.args, validator.args.task
        raw = preds
        while isinstance(raw, (list, tuple)):  # (y, raw dict); segment: ((y, proto), raw dict)
            raw = raw[0]
        out = nms.non_max_suppression(
            raw, self.conf, args.iou, agnostic=bool(args.single_cls or args.agnostic_nms), multi_label=False,
            max_det=args.max_det, nc=0 if task == "detect" else len(validator.names),
            end2end=bool(getattr(validator, "end2end", False)), rotated=task == "obb",
        )
        proto = None
        if task == "segment":  # predict() drops boxes whose mask is empty (SegmentationPredictor.construct_result)
            from yolo_ls.engine.compat import segment_proto  # the output layout differs between releases

            proto = segment_proto(preds)
        kept = []
        for i, x in enumerate(out):
            if proto is not None and x.shape[0]:
                from ultralytics.utils import ops

                shape = [4 * s for s in proto.shape[2:]]  # the input size, as the segment validator derives it
                x = x[ops.process_mask(proto[i], x[:, 6:], x[:, :4], shape, upsample=True).amax((-2, -1)) > 0]
            boxes = torch.cat([x[:, :4], x[:, 6:7]], 1) if task == "obb" else x[:, :4]  # OBB: xywh + angle (last)
            kept.append(validator._prepare_pred({"bboxes": boxes, "conf": x[:, 4], "cls": x[:, 5]}))  # single_cls
        return kept

    def _update_detect(self, validator: Any, batch: dict[str, Any]) -> None:
        """Match this batch's predict-style boxes to its ground truth (IoU 0.5, greedy) and feed the accumulator."""
        kept, self._det_kept = self._det_kept, None
        if kept is None or len(kept) != len(batch["im_file"]):
            raise RuntimeError("yolo-ls calibration: the validator's update_metrics ran without its postprocess on the "
                               "same batch, so the detections to score are unknown")
        from ultralytics.models.yolo.detect import DetectionValidator
        from ultralytics.utils.metrics import batch_probiou

        from yolo_ls.calibration.detection import box_iou, match_predictions

        obb = validator.args.task == "obb"
        # ground truth in the space the validator matches in; the base detect scaling skips segment/pose extras
        prepare = validator._prepare_batch if obb else DetectionValidator._prepare_batch.__get__(validator)
        conf, correct, cls = [], [], []
        for si, pred in enumerate(kept):
            gt = prepare(si, batch)
            if gt["cls"].shape[0] and pred["cls"].shape[0]:
                iou = batch_probiou(gt["bboxes"], pred["bboxes"]) if obb else box_iou(gt["bboxes"], pred["bboxes"])
            else:
                iou = torch.zeros((gt["cls"].shape[0], pred["cls"].shape[0]), device=pred["conf"].device)
            correct.append(match_predictions(iou, pred["cls"], gt["cls"], pred["conf"]))
            conf.append(pred["conf"].float())
            cls.append(pred["cls"].long())
        conf_t = torch.cat(conf)
        if self.acc is None:
            self.acc = DetectionCalibration(len(validator.names), self.bins, self.conf, device=conf_t.device)
        self.acc.update(conf_t, torch.cat(correct).to(conf_t.device), torch.cat(cls).to(conf_t.device))

    def _sync_ranks(self, validator: Any) -> None:
        """Under DDP, combine every rank's share of this validation so rank 0 measures the whole val set.

        Runs in the validator's ``gather_stats``, which Ultralytics calls on every rank once per validation, after the
        last batch. The accumulator's sums are all-reduced (its :meth:`~ClassificationCalibration.sync`, which also
        gathers the top-1 confidences ``ace`` needs); the val probabilities kept for the temperature fit (final epoch
        and plain validations) are gathered to rank 0. A rank that saw no batch still takes part: its accumulator is
        created here from the validator's class names, so the shapes match. Nothing happens outside DDP.
        """
        import torch.distributed as dist
        from ultralytics.utils import RANK

        if RANK == -1 or not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
            return
        nc = len(validator.names)
        if self.acc is None:
            device = getattr(validator, "device", None)
            if self.task == "classify":
                self.acc = ClassificationCalibration(nc, self.bins, device=device)
            else:
                self.acc = DetectionCalibration(nc, self.bins, self.conf, device=device)
        self.acc.sync()
        if self._probs is not None:
            self._probs, self._labels = self._gather_probs(nc, self.acc.device)

    def _gather_probs(self, nc: int, device: torch.device) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Every rank's kept (probabilities, labels), concatenated on rank 0 in rank order (empty lists elsewhere)."""
        import torch.distributed as dist

        probs = torch.cat(self._probs).float() if self._probs else torch.zeros(0, nc, device=device)
        labels = torch.cat(self._labels) if self._labels else torch.zeros(0, dtype=torch.long, device=device)
        mine = torch.cat([probs.to(device), labels.to(device, probs.dtype)[:, None]], 1)  # labels < 2**24: exact
        world, rank = dist.get_world_size(), dist.get_rank()
        length = torch.tensor([mine.shape[0]], device=device)
        lengths = [torch.zeros_like(length) for _ in range(world)]
        dist.all_gather(lengths, length)
        sizes = [int(x) for x in torch.cat(lengths).tolist()]
        padded = torch.zeros(max(sizes), nc + 1, dtype=mine.dtype, device=device)
        padded[: mine.shape[0]] = mine
        parts = [torch.empty_like(padded) for _ in range(world)] if rank == 0 else None
        dist.gather(padded, parts, dst=0)
        if rank != 0:
            return [], []
        rows = torch.cat([p[:m] for p, m in zip(parts, sizes)])
        return [rows[:, :nc]], [rows[:, nc].long()]

    def _finish(self, validator: Any) -> dict[str, Any]:
        """Compute this validation's metrics (one host transfer) and the data behind its diagram."""
        keys = metric_keys(self.task)
        if self.acc is None or (self.task == "classify" and int(self.acc.bins()["count"].sum()) == 0):  # empty split
            return {"metrics": dict.fromkeys(keys, math.nan), "bins": None, "per_class": {}, "ece_ts": math.nan,
                    "training": validator.training}
        metrics = self.acc.compute()
        if self.task != "classify" and int(self.acc.bins()["count"].sum()) == 0:
            metrics = dict.fromkeys(metrics, math.nan)  # no detection scored: nothing measured, not a perfect 0
        out = {"metrics": {k: metrics[k] for k in keys}, "bins": self.acc.bins(), "per_class": {},
               "ece_ts": math.nan, "training": validator.training}
        if self.task != "classify":
            names = getattr(validator, "names", {}) or {}
            out["per_class"] = {names.get(c, str(c)): v for c, v in self.acc.per_class_d_ece().items()}
        elif self._probs:
            probs, labels = torch.cat(self._probs), torch.cat(self._labels)
            t = fit_temperature(probs, labels, is_probs=True)
            out["temperature"] = t
            scaled = apply_temperature(probs, t, is_probs=True)
            out["ece_ts"] = float(ece(scaled, labels, n_bins=self.bins))
            out["nll_ts"] = float(nll(scaled, labels))
        self._probs = None
        return out

    def on_val_end(self, validator: Any) -> None:
        """A plain ``model.val()``: write the diagram into the val folder and report the metrics."""
        if validator.training or self.last is None:
            return
        from ultralytics.utils import LOGGER

        result = self.last
        values = {**result["metrics"], **({"ece_ts": result["ece_ts"]} if self.task == "classify" else {})}
        LOGGER.info("Calibration: " + ", ".join(f"{k}={v:.4f}" for k, v in values.items()))
        if hasattr(validator, "metrics"):
            validator.metrics.calibration = values
            validator.metrics.calibration_bins = result["bins"]
            validator.metrics.calibration_ts = {k: result[k] for k in ("temperature", "nll_ts") if k in result}
        if self.in_training:  # final_eval() of a training run: on_fit_epoch_end writes calibration/reliability.png
            return
        if self.plots != "off" and getattr(validator, "save_dir", None):
            from yolo_ls.plots.figures import plot_reliability_diagram

            plot_reliability_diagram(result["bins"], Path(validator.save_dir) / "reliability.png",
                                     title="Reliability diagram", metrics=values, reason=self._empty_reason())

    # --------------------------------------------------------------------------------------------- trainer side
    def on_pretrain_routine_end(self, trainer: Any) -> None:
        """Seed ``calib/*`` in ``trainer.metrics`` (NaN: nothing measured yet) so results.csv has them from its first
        row; make the run folder's calibration files this run's own (fresh run) or the checkpoint's (resume)."""
        if isinstance(getattr(trainer, "metrics", None), dict):
            trainer.metrics.update(dict.fromkeys((PREFIX + k for k in metric_keys(trainer.args.task)), math.nan))
        self.final_epoch = False
        self.in_training = True
        self._curves_submitted = False
        from ultralytics.utils import RANK

        if RANK not in {-1, 0}:
            return
        save_dir = Path(trainer.save_dir)
        if getattr(trainer, "resume", False):
            saved = (getattr(trainer, "ls_resume_state", None) or {}).get("calibration")
            if saved is not None:  # the checkpoint's own record: exactly the epochs it holds
                self.restore(save_dir, saved, trainer.start_epoch)
            else:  # a stock trainer: keep what is on disk up to the resume epoch
                from yolo_ls.core.epoch_bins import drop_epochs_after
                from yolo_ls.core.files import drop_rows_after

                drop_rows_after(save_dir / "calibration.csv", trainer.start_epoch)
                drop_epochs_after(save_dir / EPOCHS_JSON, trainer.start_epoch)
        else:  # a fresh run into an existing folder (exist_ok=True) starts its calibration record afresh
            reset_calibration_files(save_dir)
            self.committed = {}

    def on_train_epoch_end(self, trainer: Any) -> None:
        """Remember whether the coming validation is the last epoch's (it then also fits the temperature)."""
        self.final_epoch = trainer.epoch + 1 >= trainer.epochs
        self.last = None
        self._trainer = trainer

    def commit_epoch(self, trainer: Any, result: dict[str, Any]) -> None:
        """Write the epoch's ``calibration.csv`` row and ``epochs.json`` entry as soon as the epoch is measured.

        This runs inside the validation, before Ultralytics saves the epoch's checkpoint, so "epoch E is in the
        checkpoint" implies "epoch E's rows are on disk"; a kill in between resumes from epoch E-1 and the resume
        (:meth:`restore`) drops the extra row. The rows are also kept in :attr:`committed`, which the yolo-ls trainers
        save in the checkpoint so a resume can rewrite both files exactly.
        """
        from ultralytics.utils import RANK

        if RANK not in {-1, 0}:
            return
        from yolo_ls.core.epoch_bins import save_epoch_bins
        from yolo_ls.core.files import append_csv_row

        save_dir = Path(trainer.save_dir)
        epoch = trainer.epoch + 1
        eps = _epoch_eps(trainer)
        row = {"epoch": epoch, "label_smoothing": eps, **result["metrics"]}
        if trainer.args.task == "classify":
            row["ece_ts"] = result["ece_ts"]
        row.update({f"d_ece/{name}": v for name, v in result["per_class"].items()})
        entry = {"epoch": epoch, "label_smoothing": eps, "metrics": result["metrics"], "bins": result["bins"]}
        append_csv_row(save_dir / "calibration.csv", row)
        save_epoch_bins(save_dir / EPOCHS_JSON, entry, **self._bins_header())
        from yolo_ls.core.epoch_bins import _plain

        self.committed[epoch] = _plain({"row": row, "entry": entry})

    def _bins_header(self) -> dict[str, Any]:
        return {"task": getattr(self, "task", None), "calib_conf": self.conf, "calib_bins": self.bins}

    def restore(self, save_dir: Path, committed: dict[Any, dict[str, Any]], epoch: int) -> None:
        """Rewrite ``calibration.csv`` and ``epochs.json`` from a checkpoint's record, up to its (1-based) ``epoch``."""
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
            save_epoch_bins(save_dir / EPOCHS_JSON, self.committed[e]["entry"], **self._bins_header())

    def on_fit_epoch_end(self, trainer: Any) -> None:
        """Draw the epoch's diagram (``calib_plots=all``), or after the final ``best.pt`` validation the final plots.

        The epoch's rows were already written by :meth:`commit_epoch`, inside the validation."""
        from ultralytics.utils import RANK

        result, self.last = self.last, None
        if RANK not in {-1, 0} or result is None:
            return
        save_dir = Path(trainer.save_dir)
        if not result["training"]:  # final_eval() on best.pt
            self._final_plots(save_dir, result, trainer)
            return
        epoch = trainer.epoch + 1
        eps = _epoch_eps(trainer)
        from yolo_ls.plots import background, plot_reliability_diagram

        if self.plots == "all":
            background(trainer).submit(plot_reliability_diagram, result["bins"],
                                       save_dir / "calibration" / f"reliability_epoch{epoch:03d}.png",
                                       title=f"Epoch {epoch}, ε={eps:g}", metrics=result["metrics"],
                                       reason=self._empty_reason())
        if self.plots != "off" and (self.final_epoch or getattr(trainer, "stop", False)):
            self._curves_submitted = True  # the last epoch: calibration.csv is complete, draw its curves meanwhile
            background(trainer).submit(self._plot_curves, save_dir)

    def _final_plots(self, save_dir: Path, result: dict[str, Any], trainer: Any = None) -> None:
        """final.json, then (unless ``calib_plots=off``) the best.pt diagram and the curves, off the training thread
        when a trainer is given (:class:`yolo_ls.plots.BackgroundPlots`; ``on_train_end`` waits for them)."""
        metrics = getattr(trainer, "metrics", None) if trainer is not None else None
        val = {k: v for k, v in metrics.items() if k.startswith("metrics/")} if isinstance(metrics, dict) else {}
        save_final_json(save_dir / "calibration" / "final.json", {**result, "val_metrics": val})
        if self.plots == "off":
            return
        from yolo_ls.plots import BackgroundPlots, background, plot_reliability_diagram

        bg = background(trainer) if trainer is not None else BackgroundPlots()
        bg.submit(plot_reliability_diagram, result["bins"], save_dir / "calibration" / "reliability.png",
                  title="Reliability diagram (best.pt)", metrics=result["metrics"], reason=self._empty_reason())
        if not getattr(self, "_curves_submitted", False):
            bg.submit(self._plot_curves, save_dir)
        if trainer is None:
            bg.join()

    def _plot_curves(self, save_dir: Path) -> None:
        """calibration/calibration_curves.png from calibration.csv."""
        from yolo_ls.core.files import read_csv
        from yolo_ls.plots import plot_calibration_curves
        from yolo_ls.plots.run_folder import curve_metrics

        df = read_csv(save_dir / "calibration.csv")
        if df is not None and len(df):
            plot_calibration_curves(df, save_dir / "calibration" / "calibration_curves.png", metrics=curve_metrics(df))

    def _empty_reason(self) -> str:
        """What an empty diagram says: why this validation may have measured nothing."""
        from yolo_ls.plots.run_folder import empty_reason

        return empty_reason(getattr(self, "task", None), self.conf)

    def on_train_end(self, trainer: Any) -> None:
        """Wait for the figures drawn off the training thread; a later plain ``val()`` writes its own diagram."""
        self.in_training = False
        self._curves_submitted = False
        self._trainer = None
        from yolo_ls.plots import background

        for line in background(trainer).join():
            from ultralytics.utils import LOGGER

            LOGGER.warning(f"yolo-ls: {line}: drawn in the training process instead")
        folder = Path(trainer.save_dir) / "calibration"
        if getattr(trainer, "_mlflow_active", False) and folder.is_dir():  # MLflow uploads top-level files only
            try:
                import mlflow

                if mlflow.active_run() is not None:  # still open: Ultralytics' own on_train_end has not closed it
                    mlflow.log_artifacts(str(folder), artifact_path="calibration")
            except Exception as e:  # a logger must never fail the run
                from ultralytics.utils import LOGGER

                LOGGER.warning(f"yolo-ls: could not log calibration/ to MLflow: {e}")


def reset_calibration_files(save_dir: Path) -> None:
    """Remove a previous run's calibration record from a run folder: ``calibration.csv`` and ``calibration/``."""
    import shutil

    (Path(save_dir) / "calibration.csv").unlink(missing_ok=True)
    shutil.rmtree(Path(save_dir) / "calibration", ignore_errors=True)


def save_final_json(path: Path, result: dict[str, Any]) -> None:
    """The final (best.pt) calibration, metrics and bins, as JSON: what comparison reports overlay and score."""
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
    # temperature scaling's NLL and the temperature (classify), and the validator's own accuracy metrics of the same
    # validation (``metrics/accuracy_top1``, ``metrics/mAP50-95(B)``, ...): what a compare report scores best.pt by
    data.update({k: result[k] for k in ("nll_ts", "temperature", "val_metrics") if result.get(k) is not None})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(plain(data), indent=1))


def _epoch_eps(trainer: Any) -> float:
    """The ε logged for the trainer's current epoch: the plugin's schedule, or 0 for a stock trainer."""
    from yolo_ls.engine.callbacks.smoothing import epoch_value

    return round(epoch_value(trainer), 6)


def add_calibration_callbacks(model: Any, bins: int = 15, plots: str = "final", conf: float = 0.25) -> Any:
    """Measure calibration at every validation of a stock ``ultralytics.YOLO`` (training or plain ``val()``).

    Args:
        model (Any): An ``ultralytics.YOLO`` (or a trainer/validator): anything with ``add_callback``.
        bins (int): Equal-width confidence bins.
        plots (str): One of ``PLOT_CHOICES`` (``final``, ``all``, ``off``), as ``calib_plots``.
        conf (float): Detection confidence threshold for ``d_ece``.

    Returns:
        The same model, for chaining.

    Examples:
        >>> from ultralytics import YOLO
        >>> from yolo_ls.engine.callbacks import add_calibration_callbacks
        >>> model = add_calibration_callbacks(YOLO("yolo11n-cls.yaml"))
        >>> model.train(data="path/to/digits", epochs=2, imgsz=32)  # calibration.csv, calibration/*.png
    """
    from yolo_ls.core.args import ARG_TABLE

    ARG_TABLE["calib_bins"].check("calib_bins", bins)
    ARG_TABLE["calib_plots"].check("calib_plots", plots)
    ARG_TABLE["calib_conf"].check("calib_conf", conf)
    return CalibrationCallbacks(bins, plots, conf).register(model)
