"""``model.tune()`` through the plugin: Ultralytics' own Tuner, with the plugin arguments fixed or in ``space``.

Ultralytics' :class:`~ultralytics.engine.tuner.Tuner` runs ``get_cfg`` on its arguments (which drops
``label_smoothing`` and rejects ``ls_*``) and trains each iteration as a CLI subprocess (``_YOLO_CLI_COMMAND train
k=v ...``, i.e. ``python -m ultralytics.cfg.__init__``), which would train stock. This subclass changes these things
and nothing else:

* the plugin keys are taken out before ``get_cfg`` and put back on ``tuner.args``, so the mutation, the history
  (``tune_results.ndjson``), ``best_hyperparameters.yaml`` and each iteration's arguments carry them like any other;
* every iteration's subprocess is ``python -m yolo_ls train k=v ...``, so it trains through the plugin trainers
  (ε in the loss, the schedule, calibration in results.csv) and resolves ``data="digits"``;
* the iterations are told which plugin keys ``space`` searches (the environment variable ``YOLO_LS_TUNED_KEYS``),
  so iteration 1's ``label_smoothing=0.0`` (the default it starts from) with a fixed ``ls_schedule`` is not warned
  about as a schedule that never smooths: ε=0 is then a point of the search, not a setting;
* the plugin's integer arguments (``ls_step_size``, ``ls_off_epoch``, ``calib_bins``) are rounded like Ultralytics'
  own integer keys;
* ``tune_objective`` (with ``fitness_tol``) decides which iteration is best: Ultralytics picks it in
  ``_best_result_index`` (the reported best, ``best_hyperparameters.yaml``, the copied weights) and ranks the parents
  of each mutation by the first column of ``_local_results_to_array``; both read the objective here. Each record of
  ``tune_results.ndjson`` gets ``"objective": {"tune_objective", "fitness_tol", "value"}``.

Plugin values in ``space`` are checked with the plugin's own checks, at both bounds, before the first iteration.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Collection, Mapping
from contextlib import contextmanager
from typing import Any

from ultralytics.engine.tuner import Tuner as _UltralyticsTuner
from ultralytics.utils import LOGGER

from yolo_ls.core.args import (
    ARG_TABLE,
    PLUGIN_KEYS,
    TUNED_KEYS_ENV,
    PluginArgumentError,
    check_keys,
    check_run_args,
    resolve_plugin_args,
    split_plugin_args,
)
from yolo_ls.core.objective import metric_key, objective_scores, pick_best
from yolo_ls.datasets import resolve_data
from yolo_ls.engine.compat import check_tune_supported

YOLO_LS_CLI_COMMAND = [sys.executable, "-m", "yolo_ls"]


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_plugin_space(space: Mapping[str, Any], fixed: Mapping[str, Any], task: str, epochs: int) -> set[str]:
    """Check the plugin entries of a Tuner ``space`` (and the fixed plugin arguments) before anything trains.

    Each plugin entry must be ``(min, max)`` or ``(min, max, gain)`` with numbers that the argument's own check
    accepts at both ends; the fixed plugin arguments combined with either end must make a valid run (mode for the
    task, schedule that builds).

    Args:
        space (Mapping[str, Any]): The Tuner search space (Ultralytics and plugin keys).
        fixed (Mapping[str, Any]): The plugin arguments given as fixed keywords.
        task (str): The model's task.
        epochs (int): Epochs per iteration (a schedule is built for each end).

    Returns:
        (set[str]): The plugin keys in ``space`` whose values are integers.

    Raises:
        SyntaxError: For a ``space`` key that neither Ultralytics nor yolo-ls knows.
        PluginArgumentError: For a plugin entry that is not a numeric range, or a bound the argument refuses.
    """
    check_keys(space)
    ints: set[str] = set()
    plugin = {k: v for k, v in space.items() if k in PLUGIN_KEYS}
    for k, bounds in plugin.items():
        arg = ARG_TABLE[k]
        if isinstance(arg.default, (bool, str)) or k == "ls_prior":
            raise PluginArgumentError(
                f"space['{k}']: '{k}' is not numeric ({arg.allowed}) and the Tuner mutates numbers only. "
                f"Fix it instead, i.e. model.tune({k}={arg.default!r}, ...), and tune once per value."
            )
        if (not isinstance(bounds, (tuple, list)) or len(bounds) not in (2, 3)
                or not all(_is_number(b) for b in bounds)):
            raise PluginArgumentError(
                f"space['{k}']={bounds!r} is invalid. Give (min, max) or (min, max, gain), i.e. "
                f"space={{'{k}': (0.0, 0.2)}}."
            )
        lo, hi = bounds[:2]
        if lo > hi:
            raise PluginArgumentError(f"space['{k}']={tuple(bounds)}: min {lo} is above max {hi}.")
        if _checked_bounds(k, lo, hi, bounds):
            ints.add(k)
    for end in (0, 1):
        ends = {k: (math.ceil(b[0]), math.floor(b[1]))[end] if k in ints else b[end] for k, b in plugin.items()}
        corner = {**fixed, **ends}
        where = f" with space at its {'min' if end == 0 else 'max'} {corner}" if plugin else ""
        check_run_args(corner, task, epochs, f"model.tune(){where}")
    return ints


def _checked_bounds(k: str, lo: float, hi: float, bounds: Any) -> bool:
    """Check both bounds with the argument's own check; return whether the argument is an integer one.

    An integer argument may have fractional bounds: like Ultralytics' integer keys it is then tuned over the integers
    in ``[ceil(min), floor(max)]``, which must hold at least one.
    """
    arg = ARG_TABLE[k]
    try:
        return isinstance(arg.check(k, lo), int) & isinstance(arg.check(k, hi), int)
    except PluginArgumentError as e:
        refused = PluginArgumentError(f"space['{k}']={tuple(bounds)} reaches outside what '{k}' allows: {e}")
    try:
        is_int = isinstance(arg.check(k, math.ceil(lo)), int) and isinstance(arg.check(k, math.floor(hi)), int)
    except PluginArgumentError:
        is_int = False
    if not is_int:
        raise refused
    if math.ceil(lo) > math.floor(hi):
        raise PluginArgumentError(f"space['{k}']={tuple(bounds)} contains no integer value for '{k}'.")
    return True


@contextmanager
def _iterations_through_yolo_ls(tuned: Collection[str] = ()):
    """Make MultiTrainer's per-iteration CLI subprocess ``python -m yolo_ls`` instead of the stock ``yolo``, and tell
    those subprocesses which plugin keys the search varies (:data:`yolo_ls.core.args.TUNED_KEYS_ENV`)."""
    import ultralytics.engine.trainer as engine_trainer

    saved, saved_env = engine_trainer._YOLO_CLI_COMMAND, os.environ.get(TUNED_KEYS_ENV)
    engine_trainer._YOLO_CLI_COMMAND = YOLO_LS_CLI_COMMAND
    os.environ[TUNED_KEYS_ENV] = ",".join(sorted(tuned))
    try:
        yield
    finally:
        engine_trainer._YOLO_CLI_COMMAND = saved
        if saved_env is None:
            os.environ.pop(TUNED_KEYS_ENV, None)
        else:
            os.environ[TUNED_KEYS_ENV] = saved_env


class Tuner(_UltralyticsTuner):
    """Ultralytics' Tuner whose iterations train through yolo-ls, with plugin arguments fixed or in ``space``."""

    def __init__(self, args: dict[str, Any], _callbacks: Any = None, *, model: Any = None):
        """Split the plugin arguments out, check them, resolve ``data``, then build Ultralytics' Tuner.

        Raises:
            SyntaxError: For an unknown key, in the arguments or in ``space``.
            PluginArgumentError: For a plugin value or ``space`` range the plugin refuses; nothing is written then.
        """
        args = dict(args)
        space = args.get("space") or {}
        stock, fixed = split_plugin_args(args)
        if callable(fixed.get("ls_schedule")):
            raise PluginArgumentError(
                "model.tune() trains every iteration in a subprocess, which a callable 'ls_schedule' cannot reach. "
                "Use a named schedule (constant, linear, cosine, step, exp, two_stage, auto)."
            )
        task = stock.get("task") or getattr(model, "task", None) or "detect"
        epochs = int(stock.get("epochs") or 100)
        self.plugin_int_keys = check_plugin_space(space, fixed, task, epochs)
        resolved = resolve_plugin_args(fixed, task)
        self.objective: str = resolved["tune_objective"]  # the tune's, not the iterations'
        self.objective_tol: float | None = resolved["fitness_tol"]
        fixed.pop("tune_objective", None)
        if resolved["best_by"] == "fitness":  # fitness_tol reaches the iterations only where best_by reads it
            fixed.pop("fitness_tol", None)
        data = stock.get("data")
        if data is not None:
            stock["data"] = [resolve_data(d) for d in data] if isinstance(data, (list, tuple)) else resolve_data(data)
        check_tune_supported()  # from yolo_ls.engine.compat: the iterations must be able to train through yolo-ls
        super().__init__(stock, _callbacks, model=model)
        # iteration 1 starts from the default, as Ultralytics does for its keys (a None default: from the minimum)
        defaults = {k: d if _is_number(d := ARG_TABLE[k].default) else space[k][0] for k in space if k in PLUGIN_KEYS}
        vars(self.args).update({**defaults, **fixed})  # what iteration 1 starts from, and what every iteration gets

    def _constrain(self, hyp: dict[str, float]) -> dict[str, float]:
        """Ultralytics' bounds and rounding, and plugin integer arguments rounded into their bounds."""
        hyp = super()._constrain(hyp)
        for k in self.plugin_int_keys:
            lo, hi = self.space[k][:2]
            hyp[k] = min(max(round(hyp[k]), math.ceil(lo)), math.floor(hi))
        return hyp

    # ------------------------------------------------------------------------------------------- tune_objective
    def _objective_value(self, result: Mapping[str, Any]) -> float:
        """The objective's value of one iteration: its mean over the datasets (NaN where not measured)."""
        key = metric_key(self.objective)
        vals = [float(m.get(key, math.nan)) for m in (result.get("datasets") or {}).values() if m]
        return sum(vals) / len(vals) if vals else math.nan

    def _result_record(self, *args: Any, **kwargs: Any) -> dict:
        """Ultralytics' record plus the objective's value."""
        record = super()._result_record(*args, **kwargs)
        record["objective"] = {"tune_objective": self.objective, "fitness_tol": self.objective_tol,
                               "value": self._objective_value(record)}
        return record

    def _best_result_index(self, results: list[dict], fitness: Any) -> int:
        """The best iteration by ``tune_objective`` (rows with training metrics first, as Ultralytics does)."""
        if self.objective == "fitness":
            return super()._best_result_index(results, fitness)
        valid = [i for i, r in enumerate(results) if self._has_training_metrics(r)] or list(range(len(results)))
        values = [self._objective_value(results[i]) for i in valid]
        best = valid[pick_best([float(fitness[i]) for i in valid], values, self.objective, self.objective_tol)]
        tol = f" among fitness within {self.objective_tol} of the best" if self.objective_tol is not None else ""
        value = self._objective_value(results[best])
        LOGGER.info(f"{self.prefix}tune_objective={self.objective}{tol}: best is iteration {best + 1} "
                    f"({self.objective}={value:.5g}, fitness={float(fitness[best]):.5g})")
        return best

    def _local_results_to_array(self, results: list[dict]) -> Any:
        """Ultralytics' history array; while mutating, its first column holds the objective's scores instead."""
        x = super()._local_results_to_array(results)
        if x is not None and self._scoring and self.objective != "fitness":
            x[:, 0] = objective_scores(x[:, 0].tolist(), [self._objective_value(r) for r in results],
                                       self.objective, self.objective_tol)
        return x

    _scoring = False

    def _mutate(self, *args: Any, **kwargs: Any) -> dict[str, float]:
        """Ultralytics' mutation, its parents ranked and weighted by the objective."""
        self._scoring = True
        try:
            return super()._mutate(*args, **kwargs)
        finally:
            self._scoring = False

    def __call__(self, iterations: int = 300, cleanup: bool = True):
        """Ultralytics' evolution loop, each iteration trained by ``python -m yolo_ls train ...``."""
        with _iterations_through_yolo_ls(k for k in self.space if k in PLUGIN_KEYS):
            return super().__call__(iterations=iterations, cleanup=cleanup)
