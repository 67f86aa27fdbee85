"""Drop-in ``YOLO``: the stock Ultralytics model whose task map points at the yolo-ls trainers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ultralytics import YOLO as _UltralyticsYOLO

from yolo_ls.datasets import resolve_data
from yolo_ls.engine.trainers import TRAINERS


class YOLO(_UltralyticsYOLO):
    """``ultralytics.YOLO`` with label smoothing that reaches the loss.

    Examples:
        >>> from yolo_ls import YOLO
        >>> model = YOLO("yolo11n-cls.yaml")
        >>> model.train(data="digits", epochs=3, imgsz=32, label_smoothing=0.1)
    """

    @property
    def task_map(self) -> dict[str, dict[str, Any]]:
        """The stock task map with the yolo-ls trainers for classify, detect, segment, pose and obb."""
        task_map = super().task_map
        for task, trainer in TRAINERS.items():
            if task in task_map:
                task_map[task] = {**task_map[task], "trainer": trainer}
        return task_map

    def train(self, trainer: Any = None, **kwargs: Any) -> Any:
        """Train as Ultralytics does. ``resume=True`` on the checkpoint of a finished run is refused (nothing to
        resume), where Ultralytics would start an unrelated default training instead."""
        if kwargs.get("resume") is True and self.ckpt_path and Path(str(self.ckpt_path)).is_file():
            from yolo_ls.engine.trainers import check_resume_checkpoint

            check_resume_checkpoint(self.ckpt_path)
        return super().train(trainer=trainer, **kwargs)

    def val(self, validator: Any = None, **kwargs: Any) -> Any:
        """Validate as Ultralytics does, with calibration measured and the final reliability diagram written.

        Accepts the embedded dataset names (``data="digits"``) and the calibration arguments ``calibration``,
        ``calib_bins``, ``calib_conf`` and ``calib_plots``; the returned metrics carry ``.calibration``.
        """
        from yolo_ls.core.args import ARG_TABLE, DEFAULTS, PluginArgumentError, check_keys, split_plugin_args
        from yolo_ls.engine.callbacks.calibration import CalibrationCallbacks, registered_calibration

        kwargs, plugin = split_plugin_args(kwargs)
        check_keys(kwargs)
        training_only = [k for k in plugin if not (k == "calibration" or k.startswith("calib_"))]
        if training_only:
            raise PluginArgumentError(f"{training_only} only apply to training, not to 'val'.")
        calib = {k: ARG_TABLE[k].check(k, plugin.get(k, DEFAULTS[k])) for k in ARG_TABLE if k.startswith("calib")}
        if "data" in kwargs:
            kwargs["data"] = resolve_data(kwargs["data"])
        if not calib["calibration"] or registered_calibration(self.callbacks) is not None:
            return super().val(validator=validator, **kwargs)  # off, or add_calibration_callbacks() already did it
        callbacks = CalibrationCallbacks(calib["calib_bins"], calib["calib_plots"], calib["calib_conf"])
        for event in callbacks.EVENTS:  # for this call only: a later train() registers its own
            self.add_callback(event, getattr(callbacks, event))
        try:
            return super().val(validator=validator, **kwargs)
        finally:
            for event in callbacks.EVENTS:
                self.callbacks[event].remove(getattr(callbacks, event))

    def tune(self, use_ray: bool = False, iterations: int = 300, *args: Any, **kwargs: Any) -> Any:
        """Tune hyperparameters with Ultralytics' Tuner, every iteration trained through yolo-ls.

        Plugin arguments may be fixed (``ls_schedule="cosine"``) or tuned (``space={"label_smoothing": (0.0, 0.2)}``);
        ``space`` ranges are checked with the plugin's own checks before the first iteration, the embedded dataset
        names resolve, and ``tune_results.ndjson`` / ``best_hyperparameters.yaml`` record the tuned plugin values.
        The arguments are those of :meth:`ultralytics.engine.model.Model.tune`.

        ``use_ray=True`` runs Ultralytics' Ray Tune through :func:`yolo_ls.tune.ray_tune.run_ray_tune`: fixed plugin
        arguments reach every trial, plugin entries of a Ray ``space`` (``tune.uniform``, ``tune.choice``, ...) are
        checked first, and ``tune_objective``/``fitness_tol`` set Ray's metric and mode (and the final pick).
        """
        _check_tune_request(use_ray, iterations, kwargs)
        if use_ray:
            from yolo_ls.tune.ray_tune import run_ray_tune

            self._check_is_pytorch_model()
            if "optimizer" not in (kwargs.get("space") or {}):
                kwargs.setdefault("optimizer", "AdamW")
            return run_ray_tune(self, *args, iterations=iterations, **kwargs)
        from yolo_ls.tune.tuner import Tuner

        # The same steps as Model.tune in ultralytics 8.4.190, with yolo_ls.tune.tuner.Tuner in place of its Tuner.
        self._check_is_pytorch_model()
        if args:
            raise TypeError(f"Positional arguments {args} require use_ray=True, pass Tuner options as keywords.")
        if "optimizer" not in (kwargs.get("space") or {}):
            kwargs.setdefault("optimizer", "AdamW")
        tune_args = {**self.overrides, **kwargs, "mode": "train"}
        return Tuner(args=tune_args, model=self.model, _callbacks=self.callbacks)(iterations=iterations)


# Ray Tune's searchers by name (ultralytics.utils.tuner.RAY_SEARCH_ALG_REQUIREMENTS, 8.4); None and objects pass as is.
RAY_SEARCHERS = ("random", "ax", "bayesopt", "bohb", "hebo", "hyperopt", "nevergrad", "optuna", "zoopt")


def _check_tune_request(use_ray: bool, iterations: Any, kwargs: dict[str, Any]) -> None:
    """``tune()``'s own arguments, checked before any iteration runs and before Ray starts."""
    from difflib import get_close_matches

    from yolo_ls.core.checks import PluginArgumentError

    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise PluginArgumentError(f"'iterations={iterations!r}' is an invalid value: an integer >= 1, i.e. 20.")
    space = kwargs.get("space")
    if space is not None and not isinstance(space, dict):
        raise PluginArgumentError(f"'space' must be a dict of argument -> range, i.e. "
                                  f"space={{'label_smoothing': (0.0, 0.2)}}, not a {type(space).__name__} ({space!r}).")
    alg = kwargs.get("search_alg")
    if use_ray and isinstance(alg, str) and alg.strip().lower() not in RAY_SEARCHERS:
        close = get_close_matches(alg.strip().lower(), RAY_SEARCHERS, n=1)
        raise PluginArgumentError(f"'search_alg={alg}' is not one of {list(RAY_SEARCHERS)}."
                                  + (f" Did you mean '{close[0]}'?" if close else ""))
