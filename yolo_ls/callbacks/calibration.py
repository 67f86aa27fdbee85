"""Per-epoch calibration through Ultralytics callbacks only, so it works on stock trainers and plain ``model.val()``.

What it hooks (all from callbacks; nothing is subclassed):
    - ``on_val_start``: a fresh streaming accumulator on the validator's device. Classification wraps the validator's
      ``update_metrics`` to feed the softmax probabilities of each batch; detection wraps ``metrics.update_stats`` to
      feed the validator's own match statistics (``tp[:, 0]`` at IoU 0.5, ``conf``, ``pred_cls``): no second
      matching pass. The validator's ``get_stats`` is wrapped so the returned metrics carry ``calib/<name>``, which
      is how they reach ``trainer.metrics``, results.csv, TensorBoard and MLflow.
    - ``on_pretrain_routine_end``: seeds ``trainer.metrics`` with the ``calib/*`` keys so results.csv has them from
      its first row.
    - ``on_fit_epoch_end``: one row per validated epoch in ``calibration.csv`` and one entry (the bins) in
      ``calibration/epochs.json``, both written atomically; with ``calib_plots=all`` also
      ``calibration/reliability_epoch{E:03d}.png``. After the final validation of ``best.pt``,
      ``calibration/reliability.png`` and ``calibration/calibration_curves.png`` (unless ``calib_plots=off``).
      Figures are drawn in forked children (:class:`yolo_ls.plots.BackgroundPlots`); ``on_train_end`` waits for
      them. ``yolo-ls plot RUN`` draws every epoch's diagram from ``epochs.json`` on demand.
    - ``on_val_end`` of a plain ``model.val()``: ``reliability.png`` in the val folder, metrics logged and attached to
      the returned metrics object as ``.calibration``.

Classification keeps only per-bin sums (plus the N top confidences for ``ace``). The final epoch and plain
validations also keep the val probabilities to fit a temperature (Guo et al. 2017) and report ``ece_ts``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from yolo_ls.calibration import ClassificationCalibration, DetectionCalibration, apply_temperature, ece, fit_temperature
from yolo_ls.plots import PLOT_CHOICES

CLS_KEYS = ("ece", "mce", "ace", "cw_ece", "brier", "nll", "accuracy", "confidence", "overconfidence", "entropy")
DET_KEYS = ("d_ece", "d_mce", "d_accuracy", "d_confidence")
PREFIX = "calib/"


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

    # ------------------------------------------------------------------------------------------------ register
    def register(self, target: Any) -> Any:
        """Add the callbacks to a YOLO model, trainer or validator (anything with ``add_callback``), once."""
        if registered_calibration(target.callbacks) is not None:
            return target  # already registered (i.e. handed back in by the multi-GPU relaunch)
        for event in self.EVENTS:
            target.add_callback(event, getattr(self, event))
        return target

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
        else:
            metrics = validator.metrics
            orig_stats = getattr(metrics.update_stats, "__wrapped_calibration__", metrics.update_stats)

            def update_stats(stat, _orig=orig_stats):
                self._update_detect(stat, len(validator.names) if hasattr(validator, "names") else None)
                return _orig(stat)

            update_stats.__wrapped_calibration__ = orig_stats
            metrics.update_stats = update_stats
        orig_get = getattr(validator.get_stats, "__wrapped_calibration__", validator.get_stats)

        def get_stats(_orig=orig_get):
            stats = _orig()
            self.last = self._finish(validator)
            return {**stats, **{PREFIX + k: self.last["metrics"][k] for k in metric_keys(task)}}

        get_stats.__wrapped_calibration__ = orig_get
        validator.get_stats = get_stats

    def _update_classify(self, preds: torch.Tensor, batch: dict[str, Any]) -> None:
        probs = preds.float()
        if self.acc is None:
            self.acc = ClassificationCalibration(probs.shape[1], self.bins, device=probs.device)
        labels = batch["cls"].long()
        self.acc.update(probs, labels)
        if self._probs is not None:
            self._probs.append(probs.detach())
            self._labels.append(labels.detach())

    def _update_detect(self, stat: dict[str, Any], nc: int | None) -> None:
        conf = torch.as_tensor(stat["conf"], dtype=torch.float32)
        if self.acc is None:
            self.acc = DetectionCalibration(int(nc or 1), self.bins, self.conf, device=conf.device)
        tp = torch.as_tensor(stat["tp"])
        correct = tp[:, 0] if tp.ndim == 2 and tp.shape[0] else torch.zeros(conf.shape[0], dtype=torch.bool)
        self.acc.update(conf, correct.bool(), torch.as_tensor(stat["pred_cls"]).long())

    def _finish(self, validator: Any) -> dict[str, Any]:
        """Compute this validation's metrics (one host transfer) and the data behind its diagram."""
        keys = metric_keys(self.task)
        if self.acc is None:  # an empty val split
            return {"metrics": dict.fromkeys(keys, math.nan), "bins": None, "per_class": {}, "ece_ts": math.nan,
                    "training": validator.training}
        metrics = self.acc.compute()
        out = {"metrics": {k: metrics[k] for k in keys}, "bins": self.acc.bins(), "per_class": {},
               "ece_ts": math.nan, "training": validator.training}
        if self.task != "classify":
            names = getattr(validator, "names", {}) or {}
            out["per_class"] = {names.get(c, str(c)): v for c, v in self.acc.per_class_d_ece().items()}
        elif self._probs:
            probs, labels = torch.cat(self._probs), torch.cat(self._labels)
            t = fit_temperature(probs, labels, is_probs=True)
            out["temperature"] = t
            out["ece_ts"] = float(ece(apply_temperature(probs, t, is_probs=True), labels, n_bins=self.bins))
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
        if self.in_training:  # final_eval() of a training run: on_fit_epoch_end writes calibration/reliability.png
            return
        if self.plots != "off" and getattr(validator, "save_dir", None):
            from yolo_ls.plots import plot_reliability_diagram

            plot_reliability_diagram(result["bins"], Path(validator.save_dir) / "reliability.png",
                                     title="Reliability diagram", metrics=values, reason=self._empty_reason())

    # --------------------------------------------------------------------------------------------- trainer side
    def on_pretrain_routine_end(self, trainer: Any) -> None:
        """Put the ``calib/*`` keys into ``trainer.metrics`` so results.csv carries them from the first epoch."""
        if isinstance(getattr(trainer, "metrics", None), dict):
            trainer.metrics.update(dict.fromkeys((PREFIX + k for k in metric_keys(trainer.args.task)), 0.0))
        self.final_epoch = False
        self.in_training = True
        self._curves_submitted = False
        if getattr(trainer, "resume", False):
            from yolo_ls.utils import drop_rows_after

            drop_rows_after(Path(trainer.save_dir) / "calibration.csv", trainer.start_epoch)
            from yolo_ls.epoch_bins import drop_epochs_after

            drop_epochs_after(Path(trainer.save_dir) / "calibration" / "epochs.json", trainer.start_epoch)

    def on_train_epoch_end(self, trainer: Any) -> None:
        """Remember whether the coming validation is the last epoch's (it then also fits the temperature)."""
        self.final_epoch = trainer.epoch + 1 >= trainer.epochs
        self.last = None

    def on_fit_epoch_end(self, trainer: Any) -> None:
        """Write the epoch's calibration row and diagram, or after the final ``best.pt`` validation the final plots."""
        from ultralytics.utils import RANK

        result, self.last = self.last, None
        if RANK not in {-1, 0} or result is None:
            return
        save_dir = Path(trainer.save_dir)
        if not result["training"]:  # final_eval() on best.pt
            self._final_plots(save_dir, result, trainer)
            return
        eps = _epoch_eps(trainer)
        row = {"epoch": trainer.epoch + 1, "label_smoothing": eps, **result["metrics"]}
        if trainer.args.task == "classify":
            row["ece_ts"] = result["ece_ts"]
        row.update({f"d_ece/{name}": v for name, v in result["per_class"].items()})
        from yolo_ls.utils import append_csv_row

        append_csv_row(save_dir / "calibration.csv", row)
        from yolo_ls.epoch_bins import save_epoch_bins

        epoch = trainer.epoch + 1
        save_epoch_bins(save_dir / "calibration" / "epochs.json",
                        {"epoch": epoch, "label_smoothing": eps, "metrics": result["metrics"], "bins": result["bins"]},
                        task=self.task, calib_conf=self.conf, calib_bins=self.bins)
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
        save_final_json(save_dir / "calibration" / "final.json", result)
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
        from yolo_ls.plots import curve_metrics, plot_calibration_curves
        from yolo_ls.utils import read_csv

        df = read_csv(save_dir / "calibration.csv")
        if df is not None and len(df):
            plot_calibration_curves(df, save_dir / "calibration" / "calibration_curves.png", metrics=curve_metrics(df))

    def _empty_reason(self) -> str:
        """What an empty diagram says: why this validation may have measured nothing."""
        from yolo_ls.plots import empty_reason

        return empty_reason(getattr(self, "task", None), self.conf)

    def on_train_end(self, trainer: Any) -> None:
        """Wait for the figures drawn off the training thread; a later plain ``val()`` writes its own diagram."""
        self.in_training = False
        self._curves_submitted = False
        from yolo_ls.plots import background

        for line in background(trainer).join():
            from ultralytics.utils import LOGGER

            LOGGER.warning(f"yolo-ls: {line}: drawn in the training process instead")


def save_final_json(path: Path, result: dict[str, Any]) -> None:
    """The final (best.pt) calibration, metrics and bins, as JSON: what comparison reports overlay."""
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
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(plain(data), indent=1))


def _epoch_eps(trainer: Any) -> float:
    """The ε logged for the trainer's current epoch: the plugin's schedule, or 0 for a stock trainer."""
    if getattr(trainer, "ls_schedule", None) is None:
        return 0.0
    from yolo_ls.callbacks.smoothing import epoch_value

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
        >>> from yolo_ls.callbacks import add_calibration_callbacks
        >>> model = add_calibration_callbacks(YOLO("yolo11n-cls.yaml"))
        >>> model.train(data="path/to/digits", epochs=2, imgsz=32)  # calibration.csv, calibration/*.png
    """
    from yolo_ls.config import ARG_TABLE

    ARG_TABLE["calib_bins"].check("calib_bins", bins)
    ARG_TABLE["calib_plots"].check("calib_plots", plots)
    ARG_TABLE["calib_conf"].check("calib_conf", conf)
    return CalibrationCallbacks(bins, plots, conf).register(model)
