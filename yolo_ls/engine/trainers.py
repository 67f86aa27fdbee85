"""Thin subclasses of the Ultralytics trainers: plugin arguments in, smoothing into the loss, checkpoints kept stock.

Plugin arguments are split off before Ultralytics' ``get_cfg``, validated, and kept in ``trainer.args`` (hidden while
Ultralytics re-checks or pickles ``args``). Checkpoints carry them as a plain dict (``ckpt["ema"].yolo_ls``) so that
``resume=True`` restores them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from ultralytics.cfg import cfg2dict
from ultralytics.models import yolo
from ultralytics.utils import DEFAULT_CFG, LOGGER, RANK, colorstr

from yolo_ls._version import __version__
from yolo_ls.core.args import (
    PLUGIN_KEYS,
    PluginArgumentError,
    build_schedule_from_args,
    check_keys,
    check_num_classes,
    inapplicable_args,
    load_class_matrix,
    resolve_plugin_args,
    split_plugin_args,
    tuned_keys,
)
from yolo_ls.core.auto import AutoSchedule, gain_factor
from yolo_ls.core.files import drop_rows_after
from yolo_ls.core.losses import LabelSmoothingState
from yolo_ls.core.objective import best_step, metric_key, new_best_state
from yolo_ls.core.online import OnlineSoftLabels
from yolo_ls.datasets import resolve_data
from yolo_ls.engine import compat  # noqa: F401 -- compat first: the guard speaks before a missing symbol
from yolo_ls.engine.auto_controller import AutoController
from yolo_ls.engine.calibrate import CalibrateAtEnd
from yolo_ls.engine.callbacks import smoothing as smoothing_callbacks
from yolo_ls.engine.callbacks.calibration import CalibrationCallbacks
from yolo_ls.engine.callbacks.measurement import in_words
from yolo_ls.engine.checkpoints import atomic_checkpoint_paths, atomic_final_strip
from yolo_ls.engine.compat import TESTED_ULTRALYTICS, YAML, check_ultralytics_version, unwrap_model  # noqa: F401
from yolo_ls.engine.inject import install_smoothing
from yolo_ls.engine.ray_trial import record_ray_trial

PREFIX = colorstr("yolo-ls:")


@contextmanager
def hidden_plugin_args(args: Any) -> Iterator[dict[str, Any]]:
    """Temporarily remove the plugin keys from an args namespace (restored on exit, even on error)."""
    saved = {k: args.__dict__.pop(k) for k in list(vars(args)) if k in PLUGIN_KEYS}
    try:
        yield saved
    finally:
        vars(args).update(saved)


def plugin_args_of(args: Any) -> dict[str, Any]:
    """The plugin arguments held in a trainer's args namespace."""
    return {k: v for k, v in vars(args).items() if k in PLUGIN_KEYS}


def dataset_num_classes(data: Any, task: str, with_names: bool = False) -> Any:
    """Number of classes of a dataset, resolved the way the Ultralytics trainer will resolve it (and its class names
    in class order with ``with_names=True``: ``(nc, names)``)."""
    from ultralytics.data.utils import check_cls_dataset, check_det_dataset

    info = check_cls_dataset(data) if task == "classify" else check_det_dataset(data)
    nc = int(info["nc"])
    return (nc, class_names(info["names"], nc)) if with_names else nc


def class_names(names: Any, nc: int) -> list[str]:
    """Ultralytics' ``names`` (a dict index -> name, or a list) as a list in class order."""
    return [str(names[i]) for i in range(nc)]


def _yaml_safe(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, list, tuple, dict, type(None))) else repr(value)


_CALLABLE = "callable:"


def serialize_plugin_args(args: Mapping[str, Any]) -> dict[str, Any]:
    """Plugin arguments as plain values for a checkpoint: a callable schedule is stored by its import path."""
    out = dict(args)
    fn = out.get("ls_schedule")
    if callable(fn):
        out["ls_schedule"] = f"{_CALLABLE}{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"
    return {k: _yaml_safe(v) for k, v in out.items()}


def deserialize_plugin_args(saved: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """Undo :func:`serialize_plugin_args`: re-import a callable schedule, or take the one passed again on resume.

    Raises:
        PluginArgumentError: When the callable can be neither imported nor found among the given arguments.
    """
    out = dict(saved)
    sched = out.get("ls_schedule")
    if isinstance(sched, str) and sched.startswith(_CALLABLE):
        if callable(given.get("ls_schedule")):
            out["ls_schedule"] = given["ls_schedule"]
        else:
            import importlib

            module, _, qualname = sched[len(_CALLABLE) :].partition(":")
            try:
                obj: Any = importlib.import_module(module)
                for part in qualname.split("."):
                    obj = getattr(obj, part)
            except Exception:
                raise PluginArgumentError(
                    f"The run was trained with the callable ls_schedule {qualname!r} from {module!r}, which cannot "
                    "be imported to resume it (a lambda or a function defined in __main__?). Pass it again: "
                    "model.train(resume=True, ls_schedule=your_function)."
                ) from None
            out["ls_schedule"] = obj
    return out


def checkpoint_plugin_state(path: str | Path) -> dict[str, Any] | None:
    """The yolo-ls state saved in a checkpoint (``{"version", "args"}``), or None for a checkpoint without it."""
    from ultralytics.utils.patches import torch_load

    ckpt = torch_load(str(path), map_location="cpu", weights_only=False)
    model = ckpt.get("ema") or ckpt.get("model")
    state = getattr(model, "yolo_ls", None)
    return dict(state) if isinstance(state, Mapping) else None


def _check_classify_splits(data: Any, task: str) -> None:
    """A classification folder needs ``train/`` and ``val/`` (or ``test/``); Ultralytics would fail later with a
    TypeError that never names the missing split."""
    root = Path(str(data))
    if task != "classify" or not root.is_dir():
        return
    missing = [s for s in ("train", "val") if not (root / s).is_dir() and not (s == "val" and (root / "test").is_dir())]
    if missing:
        raise PluginArgumentError(f"'data={data}' has no {' and no '.join(s + '/' for s in missing)} folder: a "
                                  "classification dataset is DIR/train/<class>/*.png and DIR/val/<class>/*.png "
                                  "(or DIR/test/).")


def check_resume_checkpoint(resume: Any) -> None:
    """A ``resume=PATH`` that exists must load: a truncated or foreign file is named as such, not as "not found".

    Raises:
        PluginArgumentError: Naming the file and what is wrong with it.
    """
    if not isinstance(resume, (str, Path)) or not Path(resume).is_file():
        return  # resume=True (latest run) or a missing path: Ultralytics' own message says which
    from ultralytics.utils.patches import torch_load

    from yolo_ls.engine.checkpoints import remove_stale_temp_files

    remove_stale_temp_files(Path(resume).parent)  # a kill during an earlier checkpoint write left them

    try:
        ckpt = torch_load(str(resume), map_location="cpu", weights_only=False)
    except Exception as e:
        raise PluginArgumentError(
            f"'resume={resume}' cannot be resumed: the file is not a readable checkpoint ({type(e).__name__}: {e}). "
            "A checkpoint torn by a kill during its write cannot be repaired; resume from another checkpoint "
            "(e.g. weights/epochN.pt with save_period) or start a new run."
        ) from None
    epoch, epochs = ckpt.get("epoch", -1), (ckpt.get("train_args") or {}).get("epochs")
    if epoch == -1 or (epochs is not None and epoch + 1 >= int(epochs)):
        best = Path(resume).with_name("best.pt")
        raise PluginArgumentError(
            f"'resume={resume}': training to {epochs} epochs is finished, nothing to resume (every epoch is trained "
            "and on disk; a kill after the last epoch only skipped the final best.pt validation and figures). "
            f"Get them with 'yolo-ls val model={best if best.exists() else resume}', or start a new run."
        )


class LabelSmoothingMixin:
    """Plugin behaviour shared by every yolo-ls trainer. Subclasses set ``ls_task``."""

    ls_task: str = "detect"

    def __init__(self, cfg: Any = DEFAULT_CFG, overrides: dict[str, Any] | None = None, _callbacks: Any = None):
        cfg, overrides, given, plugin, schedule = self._check_run(cfg, overrides)
        super().__init__(cfg, overrides, _callbacks)
        self.ls_resume_state: dict[str, Any] = {}
        if self.resume:
            plugin, schedule = self._resume_plugin_args(given), None
        vars(self.args).update(plugin)
        if RANK in {-1, 0}:  # Ultralytics wrote args.yaml inside __init__, before the plugin keys were back in args
            YAML.save(self.save_dir / "args.yaml", {k: _yaml_safe(v) for k, v in vars(self.args).items()})
            LOGGER.info(f"{PREFIX} " + ", ".join(f"{k}={v}" for k, v in serialize_plugin_args(plugin).items()))
            record_ray_trial(self.save_dir)  # in a Ray Tune trial: ray_trial.json, so the tune finds these weights
        self._setup_schedule(plugin, schedule)
        self._setup_best_by(plugin)
        self._register_callbacks(plugin)

    # ------------------------------------------------------------------------------------------------ set-up
    def _check_run(self, cfg: Any, overrides: dict[str, Any] | None) -> tuple[Any, dict, dict, dict | None, Any]:
        """Split the plugin arguments off ``cfg``/``overrides`` and check them against the task and the data, before
        Ultralytics creates the run folder. Returns ``(cfg, overrides, given, plugin, schedule)``; ``plugin`` and
        ``schedule`` are None on resume (the checkpoint's arguments are read once the trainer exists)."""
        overrides = dict(overrides or {})
        given: dict[str, Any] = {}
        if isinstance(cfg, (str, Path, dict)):  # a cfg file or dict may carry plugin keys too; overrides win
            cfg, given = split_plugin_args(cfg2dict(cfg))
        overrides, from_overrides = split_plugin_args(overrides)
        given.update(from_overrides)
        check_keys(overrides)  # one "did you mean" over Ultralytics' and the plugin's keys together
        plugin = schedule = None
        if overrides.get("resume"):  # values given now are checked too (a resume keeps the checkpoint's)
            resolve_plugin_args(given, self.ls_task)
            check_resume_checkpoint(overrides["resume"])
        else:
            plugin = resolve_plugin_args(given, self.ls_task)
            epochs = overrides.get("epochs", (cfg if isinstance(cfg, dict) else cfg2dict(cfg)).get("epochs"))
            schedule = (epochs, build_schedule_from_args(plugin, epochs))  # a callable schedule is probed here
            if RANK in {-1, 0}:
                for warning in inapplicable_args(given, plugin, self.ls_task, epochs, tuned_keys()):
                    LOGGER.warning(f"{PREFIX} {warning}")
        if "data" in overrides:
            overrides["data"] = resolve_data(overrides["data"])
            _check_classify_splits(overrides["data"], self.ls_task)
        if plugin is not None and (plugin["ls_mode"] == "exclusive" or plugin["ls_prior"] is not None
                                   or plugin["ls_matrix"] is not None):
            check_num_classes(plugin, *dataset_num_classes(overrides.get("data"), self.ls_task, with_names=True))
        return cfg, overrides, given, plugin, schedule

    def _setup_schedule(self, plugin: dict[str, Any], schedule: tuple[Any, Any] | None) -> None:
        """``ls_schedule`` (ε = ls_schedule(epoch)), built once; the ``auto`` controller; ε's device state."""
        if schedule is not None and schedule[0] == self.epochs:
            self.ls_schedule = schedule[1]
        else:  # a resume, or epochs taken from elsewhere (a cfg file's, the default)
            self.ls_schedule = build_schedule_from_args(plugin, self.epochs)
        self.ls_auto: AutoController | None = None
        if isinstance(self.ls_schedule, AutoSchedule):
            if self.ls_resume_state.get("auto"):
                self.ls_schedule.load_state_dict(self.ls_resume_state["auto"])  # the controller continues where it was
            self.ls_auto = AutoController(self.ls_schedule, plugin["ls_auto_split"])
        self.ls_state: LabelSmoothingState | None = None  # ε on the device, read by the losses
        self.ls_online: OnlineSoftLabels | None = None  # ls_mode=online: S, built in setup_smoothing
        self.ls_applied = smoothing_callbacks.AppliedEpsilon()  # what was applied, for the log and the plot

    def _setup_best_by(self, plugin: dict[str, Any]) -> None:
        """``best_by``: which epoch is best.pt (fitness: Ultralytics' own choice, untouched); survives a resume."""
        self.ls_best_by: str = plugin["best_by"]
        self.ls_best_tol: float | None = plugin["fitness_tol"]
        self.ls_best_state: dict[str, Any] = dict(self.ls_resume_state.get("best") or new_best_state())
        self.ls_best_pending: tuple[dict[str, Any], bool] | None = None  # this epoch's choice, until save_metrics
        self.ls_best_chosen = False  # this epoch is the new best.pt (read once by save_model)

    def _register_callbacks(self, plugin: dict[str, Any]) -> None:
        """The plugin's callbacks (once each: the DDP relaunch hands the parent's back in) and atomic checkpoints."""
        pairs = [("on_train_epoch_end", online_epoch_end), ("on_train_end", online_train_end)]
        pairs = (pairs if plugin["ls_mode"] == "online" else []) + list(smoothing_callbacks.CALLBACKS.items())
        for event, fn in pairs:
            if fn not in self.callbacks[event]:
                self.add_callback(event, fn)
        atomic_checkpoint_paths(self)  # last.pt / best.pt are replaced atomically, never torn by a kill
        self.ls_calibration: CalibrationCallbacks | None = None
        if plugin["calibration"]:
            calib = CalibrationCallbacks(plugin["calib_bins"], plugin["calib_plots"], plugin["calib_conf"])
            self.ls_calibration = calib.attach(self)  # the instance registered (the relaunch may hand one back)
        self.ls_calibrate = CalibrateAtEnd(plugin["calibrate"], plugin["calib_conf"], plugin["calib_bins"])
        ends = self.callbacks["on_train_end"]
        if plugin["calibrate"] != "off" and not any(isinstance(f, CalibrateAtEnd) for f in ends):
            self.add_callback("on_train_end", self.ls_calibrate)
        # Loggers (MLflow) upload the run folder at on_train_end: the plugin's end-of-training files are written first.
        self.callbacks["on_train_end"].sort(key=lambda fn: not getattr(fn, "__module__", "").startswith("yolo_ls."))

    # ------------------------------------------------------------------------------------------------ arguments
    def _resume_plugin_args(self, given: dict[str, Any]) -> dict[str, Any]:
        """Plugin arguments of the run being resumed, read from its checkpoint (values given now are ignored)."""
        state = checkpoint_plugin_state(self.args.resume)
        if state is None:
            LOGGER.warning(
                f"{PREFIX} {self.args.resume} holds no yolo-ls state (not trained with yolo-ls?); "
                f"resuming with the plugin arguments given now: {given or 'defaults'}."
            )
            return resolve_plugin_args(given, self.ls_task)
        self.ls_resume_state = state.get("state") or {}
        saved = resolve_plugin_args(deserialize_plugin_args(state["args"], given), self.ls_task)
        given_now = resolve_plugin_args(given, self.ls_task)
        differ = {k: (given_now[k], saved[k]) for k in given if given_now[k] != saved[k]}
        if differ:
            text = ", ".join(f"{k}={new!r} given now, {old!r} in the checkpoint" for k, (new, old) in differ.items())
            LOGGER.warning(
                f"{PREFIX} Resume continues the run as it was trained and keeps the checkpoint's values ({text}). "
                "Start a new run (without resume) to train with other values."
            )
        return saved

    @property
    def plugin_args(self) -> dict[str, Any]:
        """The plugin arguments of this run."""
        return plugin_args_of(self.args)

    # --------------------------------------------------------------------------------------------- Ultralytics hooks
    def get_validator(self):
        """Build the stock validator; Ultralytics re-checks ``args`` there, so the plugin keys are hidden meanwhile."""
        with hidden_plugin_args(self.args):
            return super().get_validator()

    def save_model(self):
        """Save stock checkpoints: plugin keys hidden from the pickled args, and kept as a plain dict on the EMA."""
        state: dict[str, Any] = {"auto": self.ls_schedule.state_dict()} if self.ls_auto is not None else {}
        if self.ls_online is not None:  # ls_mode=online: S learned so far, so a resume continues with it
            state["online"] = self.ls_online.state_dict()
        if self.ls_calibration is not None:  # the calibration rows written so far: a resume rewrites them exactly
            state["calibration"] = dict(self.ls_calibration.committed)
        if self.ls_best_by != "fitness":  # which epoch best.pt holds and the best fitness so far: resume continues
            state["best"] = dict(self.ls_best_state)
        self.ema.ema.yolo_ls = {"version": __version__, "args": serialize_plugin_args(self.plugin_args), "state": state}
        with hidden_plugin_args(self.args), self._best_by_decides():
            return super().save_model()

    def validate(self):
        """Stock validation; with ``best_by`` set, also decide (committed in :meth:`save_metrics`) whether this epoch
        is the new best.pt."""
        metrics, fitness = super().validate()
        self.ls_best_pending = None
        if self.ls_best_by != "fitness" and metrics is not None:
            value = metrics.get(metric_key(self.ls_best_by), math.nan)
            self.ls_best_pending = best_step(self.ls_best_state, self.epoch, fitness, value, self.ls_best_tol)
        return metrics, fitness

    @contextmanager
    def _best_by_decides(self) -> Iterator[None]:
        """Ultralytics writes best.pt when ``best_fitness == fitness``; with ``best_by`` set, that holds exactly
        when this epoch was chosen (``best_fitness`` is None in the checkpoint of an epoch that was not)."""
        if self.ls_best_by == "fitness":
            yield
            return
        saved, chosen, self.ls_best_chosen = self.best_fitness, self.ls_best_chosen, False
        self.best_fitness = self.fitness if chosen else None
        try:
            yield
        finally:
            self.best_fitness = saved

    def final_eval(self):
        """Stock final validation of best.pt; its rewrite of last.pt/best.pt (optimizer stripped) is atomic too."""
        with atomic_final_strip():
            return super().final_eval()

    def save_metrics(self, metrics: dict[str, Any]) -> None:
        """Log the ε in effect this epoch (as ``label_smoothing`` in results.csv and ``trainer.metrics``), then
        (``ls_schedule=auto``) set the next epoch's ε from this epoch's reading."""
        eps = round(smoothing_callbacks.epoch_value(self), 6)
        if self.ls_best_pending is not None:  # best_by: this epoch counts (Ultralytics keeps it)
            (self.ls_best_state, self.ls_best_chosen), self.ls_best_pending = self.ls_best_pending, None
            self.best_fitness = self.ls_best_state["fitness"]  # the fitness of the epoch best.pt holds
        if isinstance(self.metrics, dict):
            self.metrics["label_smoothing"] = eps
        super().save_metrics({**metrics, "label_smoothing": eps})
        next_eps = self.ls_auto.step(self) if self.ls_auto is not None else None
        LOGGER.info(f"{PREFIX} {self.epoch_summary(eps, next_eps)}")

    def epoch_summary(self, eps: float, next_eps: float | None = None) -> str:
        """One line per epoch: the ε in effect and what calibration measured, i.e.
        ``epoch 7/30  ε=0.083  ece 0.0410 (over-confident +0.030)  nll 0.290``."""
        parts = [f"epoch {self.epoch + 1}/{self.epochs}", f"ε={eps:.3g}"]
        if next_eps is not None:
            parts[-1] += f" (auto: next {next_eps:.3g})"
        if self.ls_best_by != "fitness" and self.ls_best_state["epoch"] >= 0:
            parts.append(f"best.pt: epoch {self.ls_best_state['epoch'] + 1} by {self.ls_best_by}")
        calib = self.ls_calibration
        if calib is not None and calib.last is not None:
            parts.append(in_words(self.ls_task, calib.last["metrics"], calib._empty_reason()))
        return "  ".join(parts)

    def _setup_train(self):
        """Stock set-up, then smoothing into the criteria of the model and of its EMA (the val loss)."""
        super()._setup_train()
        if self.resume and RANK in {-1, 0} and drop_rows_after(self.csv, self.start_epoch):
            LOGGER.info(f"{PREFIX} dropped rows after epoch {self.start_epoch} from {self.csv.name}: trained again now")
        self.setup_smoothing()

    def setup_smoothing(self) -> None:
        """Create the device-side ε and install it in every criterion that computes a loss for this run."""
        args = self.plugin_args
        nc = int(self.data["nc"])
        mode = args["ls_mode"]
        check_num_classes(args, nc, class_names(self.data["names"], nc))
        prior = args["ls_prior"]
        if mode == "prior" and prior is None:
            prior = self.class_frequencies()
        matrix = load_class_matrix(args["ls_matrix"])[0] if mode == "matrix" else None
        self.ls_state = LabelSmoothingState(self.ls_schedule(float(self.start_epoch)), device=self.device)
        if mode == "online":
            self.ls_online = OnlineSoftLabels(nc, device=self.device)
            if self.ls_resume_state.get("online"):
                self.ls_online.load_state_dict(self.ls_resume_state["online"])
            matrix = self.ls_online.state_dict()["matrix"]
        if self.ls_auto is not None:
            self.ls_auto.setup(self, mode, nc, prior=prior, matrix=matrix)
        models = [unwrap_model(self.model)] + ([self.ema.ema] if self.ema else [])
        for i, m in enumerate(models):
            install_smoothing(m, self.ls_state, task=self.ls_task, mode=mode, num_classes=nc, prior=prior,
                              matrix=matrix, margin=args["ls_margin"], online=self.ls_online, accumulate=i == 0)

    def class_frequencies(self) -> list[float]:
        """Class frequencies of the training set (the default prior)."""
        dataset = self.train_loader.dataset
        if hasattr(dataset, "samples"):  # ClassificationDataset
            labels = np.array([s[1] for s in dataset.samples], dtype=np.int64)
        else:  # YOLODataset
            labels = np.concatenate([lb["cls"].reshape(-1) for lb in dataset.labels]).astype(np.int64)
        counts = np.bincount(labels, minlength=int(self.data["nc"])).astype(float)
        if counts.sum() <= 0:
            raise PluginArgumentError("'ls_mode=prior' found no training labels to estimate class frequencies from.")
        return (counts / counts.sum()).tolist()


def online_epoch_end(trainer: Any) -> None:
    """``ls_mode=online``, after each training epoch: S ← what this epoch's correct predictions taught (before the
    validation and the checkpoint, which saves S), ``soft_labels.csv`` rewritten, and the ``auto`` factor updated."""
    online = getattr(trainer, "ls_online", None)
    if online is None:
        return
    matrix = online.swap().cpu().tolist()  # one host copy per epoch
    if trainer.ls_auto is not None:
        trainer.ls_auto.schedule.factor = gain_factor("online", online.num_classes, matrix=matrix)
    if RANK in {-1, 0}:
        online.write_csv(trainer.save_dir / "soft_labels.csv", class_names(trainer.data["names"], online.num_classes))


def online_train_end(trainer: Any) -> None:
    """``ls_mode=online``: draw ``soft_labels.png`` from the final ``soft_labels.csv``."""
    path = trainer.save_dir / "soft_labels.csv"
    if RANK in {-1, 0} and path.is_file():
        from yolo_ls.core.checks import read_matrix_csv
        from yolo_ls.plots.figures import plot_soft_labels

        names, rows = read_matrix_csv(path)
        plot_soft_labels(rows, names, trainer.save_dir / "soft_labels.png", on_plot=trainer.on_plot)


class ClassificationTrainer(LabelSmoothingMixin, yolo.classify.ClassificationTrainer):
    """Ultralytics ``ClassificationTrainer`` with label smoothing in the loss."""

    ls_task = "classify"


class DetectionTrainer(LabelSmoothingMixin, yolo.detect.DetectionTrainer):
    """Ultralytics ``DetectionTrainer`` with label smoothing in the classification term of the loss."""

    ls_task = "detect"


class SegmentationTrainer(LabelSmoothingMixin, yolo.segment.SegmentationTrainer):
    """Ultralytics ``SegmentationTrainer`` with label smoothing in the classification term of the loss."""

    ls_task = "segment"


class PoseTrainer(LabelSmoothingMixin, yolo.pose.PoseTrainer):
    """Ultralytics ``PoseTrainer`` with label smoothing in the classification term of the loss."""

    ls_task = "pose"


class OBBTrainer(LabelSmoothingMixin, yolo.obb.OBBTrainer):
    """Ultralytics ``OBBTrainer`` with label smoothing in the classification term of the loss."""

    ls_task = "obb"


TRAINERS = {
    "classify": ClassificationTrainer,
    "detect": DetectionTrainer,
    "segment": SegmentationTrainer,
    "pose": PoseTrainer,
    "obb": OBBTrainer,
}
