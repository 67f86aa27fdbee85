"""Per-epoch calibration through Ultralytics callbacks only, so it works on stock trainers and plain ``model.val()``.

:class:`CalibrationCallbacks` runs a :class:`~.measurement.Measurement` per validation (its ``calib/*`` keys join the
validator's stats), records each epoch in the run folder (:class:`~.run_record.RunRecord`) and draws the figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from yolo_ls.calibration.registry import ts_key
from yolo_ls.core.args import PLOT_CHOICES
from yolo_ls.engine.callbacks.measurement import Measurement, in_words, metric_keys
from yolo_ls.engine.callbacks.run_record import (  # noqa: F401 (re-exported)
    EPOCHS_JSON,
    RunRecord,
    reset_calibration_files,
    save_final_json,
)
from yolo_ls.engine.callbacks.validator_hooks import before, predict_style_boxes, wrap

PREFIX = "calib/"


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
        self.task: str | None = None
        self.record = RunRecord(self.bins, self.conf)
        self._trainer: Any = None  # the trainer whose epoch is being validated (set at on_train_epoch_end)
        self._curves_submitted = False
        self.best_epoch: int | None = None  # the 1-based epoch best.pt holds, as far as this run has seen

    @property
    def committed(self) -> dict[int, dict[str, Any]]:
        """Epoch -> its calibration.csv row and epochs.json entry (saved in yolo-ls checkpoints)."""
        return self.record.committed

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
        """Start this validation's measurement and hook the validator's predictions and stats."""
        self.task = task = validator.args.task
        m = self.measurement = Measurement(task, self.bins, self.conf, (not validator.training) or self.final_epoch)
        if task == "classify":
            wrap(validator, "update_metrics", before(m.update_classify))
        else:  # score what predict() keeps: single-label NMS at calib_conf over the validator's own raw outputs
            boxes = before(lambda preds: m.keep(predict_style_boxes(validator, preds, self.conf)))
            wrap(validator, "postprocess", boxes)
            wrap(validator, "update_metrics", before(lambda preds, batch: m.update_detect(validator, batch)))
        wrap(validator, "get_stats", lambda orig: lambda: self._stats(validator, orig()))
        from yolo_ls.engine.compat import validates_on_every_rank

        if validates_on_every_rank(validator):  # 8.4: every rank validates a share (8.3: rank 0 alone, all of it)
            wrap(validator, "gather_stats", before(lambda: m.sync_ranks(validator)))

    def _stats(self, validator: Any, stats: dict[str, Any]) -> dict[str, Any]:
        """The validator's stats plus ``calib/*``; a training epoch's rows are committed here, before its checkpoint."""
        self.last = self.measurement.result(validator)
        if self.last["training"] and self._trainer is not None:
            self.commit_epoch(self._trainer, self.last)
        return {**stats, **{PREFIX + k: self.last["metrics"][k] for k in metric_keys(self.task)}}

    def on_val_end(self, validator: Any) -> None:
        """A plain ``model.val()``: write the diagram into the val folder and report the metrics."""
        if validator.training or self.last is None:
            return
        from ultralytics.utils import LOGGER

        result = self.last
        values = {**result["metrics"], ts_key(self.task): result[ts_key(self.task)]}
        where = "best.pt" + (f" (epoch {self.best_epoch})" if self.in_training and self.best_epoch else "")
        LOGGER.info(f"Calibration{f' of {where}' if self.in_training else ''}: "
                    + ", ".join(f"{k}={v:.4f}" for k, v in values.items()))
        if self.in_training:  # the end of a training run: one sentence a person reads first
            first = "calibration/reliability.png" if self.plots != "off" else "calibration/final.json"
            LOGGER.info(f"yolo-ls: {where}: {in_words(self.task, result['metrics'], self._empty_reason())}; "
                        f"open {first} first")
        if hasattr(validator, "metrics"):
            validator.metrics.calibration = values
            validator.metrics.calibration_bins = result["bins"]
            validator.metrics.calibration_ts = {k: result[k] for k in ("temperature", "nll_ts", "d_temperature")
                                                if k in result}
        if self.in_training:  # final_eval() of a training run: on_fit_epoch_end writes calibration/reliability.png
            return
        if self.plots != "off" and getattr(validator, "save_dir", None):
            from yolo_ls.plots import plot_reliability_diagram

            plot_reliability_diagram(result["bins"], Path(validator.save_dir) / "reliability.png",
                                     title="Reliability diagram", metrics=values, reason=self._empty_reason())

    # --------------------------------------------------------------------------------------------- trainer side
    def on_pretrain_routine_end(self, trainer: Any) -> None:
        """Seed ``calib/*`` in ``trainer.metrics`` (NaN: nothing measured yet) so results.csv has them from its first
        row; make the run folder's calibration files this run's own (fresh run) or the checkpoint's (resume)."""
        if isinstance(getattr(trainer, "metrics", None), dict):
            trainer.metrics.update(dict.fromkeys((PREFIX + k for k in metric_keys(trainer.args.task)), float("nan")))
        self.final_epoch = False
        self.in_training = True
        self._curves_submitted = False
        self.best_epoch = None  # a resume learns it again (the summary then names no epoch until a new best)
        from ultralytics.utils import RANK

        if RANK not in {-1, 0}:
            return
        save_dir = Path(trainer.save_dir)
        if getattr(trainer, "resume", False):
            saved = (getattr(trainer, "ls_resume_state", None) or {}).get("calibration")
            if saved is not None:  # the checkpoint's own record: exactly the epochs it holds
                self.restore(save_dir, saved, trainer.start_epoch)
            else:  # a stock trainer: keep what is on disk up to the resume epoch
                RunRecord.trim(save_dir, trainer.start_epoch)
        else:  # a fresh run into an existing folder (exist_ok=True) starts its calibration record afresh
            self.record.reset(save_dir)

    def on_train_epoch_end(self, trainer: Any) -> None:
        """Remember whether the coming validation is the last epoch's (it then also fits the temperature)."""
        self.final_epoch = trainer.epoch + 1 >= trainer.epochs
        self.last = None
        self._trainer = trainer

    def commit_epoch(self, trainer: Any, result: dict[str, Any]) -> None:
        """Write the epoch's rows as soon as it is measured, before Ultralytics saves the epoch's checkpoint."""
        from ultralytics.utils import RANK

        if RANK in {-1, 0}:
            self.record.commit(Path(trainer.save_dir), trainer.epoch + 1, _epoch_eps(trainer), trainer.args.task,
                               result)

    def restore(self, save_dir: Path, committed: dict[Any, dict[str, Any]], epoch: int) -> None:
        """Rewrite ``calibration.csv`` and ``epochs.json`` from a checkpoint's record, up to its (1-based) ``epoch``."""
        self.record.restore(save_dir, committed, epoch, self.task)

    def on_fit_epoch_end(self, trainer: Any) -> None:
        """Draw the epoch's diagram (``calib_plots=all``), or after the final ``best.pt`` validation the final plots."""
        from ultralytics.utils import RANK

        result, self.last = self.last, None
        if RANK not in {-1, 0} or result is None:
            return
        save_dir = Path(trainer.save_dir)
        if not result["training"]:  # final_eval() on best.pt
            self._final_plots(save_dir, result, trainer)
            return
        epoch = trainer.epoch + 1
        self.best_epoch = _best_epoch(trainer, epoch, self.best_epoch)
        if not hasattr(trainer, "epoch_summary"):  # a stock trainer: the plugin trainers print their own line
            from ultralytics.utils import LOGGER

            LOGGER.info(f"yolo-ls: epoch {epoch}/{trainer.epochs}  "
                        f"{in_words(self.task, result['metrics'], self._empty_reason())}")
        from yolo_ls.plots import background, plot_reliability_diagram

        if self.plots == "all":
            background(trainer).submit(plot_reliability_diagram, result["bins"],
                                       save_dir / "calibration" / f"reliability_epoch{epoch:03d}.png",
                                       title=f"Epoch {epoch}, ε={_epoch_eps(trainer):g}", metrics=result["metrics"],
                                       reason=self._empty_reason())
        if self.plots != "off" and (self.final_epoch or getattr(trainer, "stop", False)):
            self._curves_submitted = True  # the last epoch: calibration.csv is complete, draw its curves meanwhile
            background(trainer).submit(self._plot_curves, save_dir)

    def _final_plots(self, save_dir: Path, result: dict[str, Any], trainer: Any = None) -> None:
        """final.json, then (unless ``calib_plots=off``) the best.pt diagram and the curves, off the training thread
        when a trainer is given (``on_train_end`` waits for them)."""
        metrics = getattr(trainer, "metrics", None) if trainer is not None else None
        val = {k: v for k, v in metrics.items() if k.startswith("metrics/")} if isinstance(metrics, dict) else {}
        save_final_json(save_dir / "calibration" / "final.json", {**result, "val_metrics": val})
        if self.plots == "off":
            return
        from yolo_ls.plots import BackgroundPlots, background, plot_reliability_diagram

        bg = background(trainer) if trainer is not None else BackgroundPlots()
        bg.submit(plot_reliability_diagram, result["bins"], save_dir / "calibration" / "reliability.png",
                  title="Reliability diagram (best.pt)", metrics=result["metrics"], reason=self._empty_reason())
        if not self._curves_submitted:
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
            plot_calibration_curves(df, save_dir / "calibration" / "calibration_curves.png", metrics=curve_metrics(df),
                                    best_epoch=self.best_epoch)

    def _empty_reason(self) -> str:
        """What an empty diagram says: why this validation may have measured nothing."""
        from yolo_ls.plots.run_folder import empty_reason

        return empty_reason(self.task, self.conf)

    def on_train_end(self, trainer: Any) -> None:
        """Wait for the figures drawn off the training thread; a later plain ``val()`` writes its own diagram."""
        self.in_training = False
        self._curves_submitted = False
        self._trainer = None
        from ultralytics.utils import LOGGER

        from yolo_ls.plots import background

        for line in background(trainer).join():
            LOGGER.warning(f"yolo-ls: {line}: drawn in the training process instead")
        folder = Path(trainer.save_dir) / "calibration"
        if getattr(trainer, "_mlflow_active", False) and folder.is_dir():  # MLflow uploads top-level files only
            try:
                import mlflow

                if mlflow.active_run() is not None:  # still open: Ultralytics' own on_train_end has not closed it
                    mlflow.log_artifacts(str(folder), artifact_path="calibration")
            except Exception as e:  # a logger must never fail the run
                LOGGER.warning(f"yolo-ls: could not log calibration/ to MLflow: {e}")


def _best_epoch(trainer: Any, epoch: int, known: int | None) -> int | None:
    """The epoch best.pt holds after this one: ``best_by``'s choice on the plugin trainers, else Ultralytics' rule
    (best.pt is written whenever the epoch's fitness equals the best so far)."""
    state = getattr(trainer, "ls_best_state", None)
    if getattr(trainer, "ls_best_by", "fitness") != "fitness" and state is not None:
        return state["epoch"] + 1 if state["epoch"] >= 0 else known
    fitness, best = getattr(trainer, "fitness", None), getattr(trainer, "best_fitness", None)
    return epoch if fitness is not None and best is not None and fitness == best else known


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
        >>> from yolo_ls import add_calibration_callbacks
        >>> model = add_calibration_callbacks(YOLO("yolo11n-cls.yaml"))
        >>> model.train(data="path/to/digits", epochs=2, imgsz=32)  # calibration.csv, calibration/*.png
    """
    from yolo_ls.core.args import ARG_TABLE

    ARG_TABLE["calib_bins"].check("calib_bins", bins)
    ARG_TABLE["calib_plots"].check("calib_plots", plots)
    ARG_TABLE["calib_conf"].check("calib_conf", conf)
    return CalibrationCallbacks(bins, plots, conf).register(model)
