"""``yolo_ls.YOLO.tune(use_ray=True)``: Ultralytics' Ray Tune run with plugin arguments fixed or searched.

Ultralytics' :func:`ultralytics.utils.tuner.run_ray_tune` trains every trial with ``model.train(**config)`` (the
drop-in ``YOLO``'s task map, so the plugin trainers: ε in the loss, calibration on), and its Ray callback reports
``trainer.metrics`` at each epoch end, where ``calib/*`` and ``label_smoothing`` are by then. Two things stop plugin
arguments before the first trial, and one thing stops a calibration objective:

* it runs ``get_cfg(DEFAULT_CFG, train_args)`` to name the tune folder, which rejects ``ls_*`` keys
  (``SyntaxError``) and drops ``label_smoothing``. yolo-ls hands that one call the stock keys only (a patch of the
  name ``get_cfg`` in ``ultralytics.utils.tuner`` for the duration of the call); the fixed plugin arguments still
  reach every trial, which trains with ``{**config, **train_args}``;
* ``data="digits"`` is resolved to its absolute path first, so trials (which run in their own folders) find it;
* its scheduler and searchers are built with ``metric=TASK2METRIC[task], mode="max"`` written into the function, so
  a metric to *minimise* cannot be wrapped in. For ``tune_objective=nll`` (etc., without ``fitness_tol``) yolo-ls
  runs :func:`run_objective_tune`, the same few lines (trainable, ASHA, tune folder, Tuner) with Ray's
  ``metric="calib/nll", mode="min"``; ``tune_objective=fitness``, and any objective with ``fitness_tol``, run
  Ultralytics' own function (the search and ASHA chase accuracy; the tolerance pick is made over the trials at the
  end, :func:`best_result`).

At the end the best trial (by ``tune_objective``, Ultralytics' own metric for ``fitness``) is logged with its run
folder, the one holding ``weights/best.pt`` (:func:`result_run_dir`), not Ray's trial folder, which has none.

Plugin entries of ``space`` (``tune.uniform``, ``tune.choice``, ``tune.randint``, ``tune.grid_search``, constants)
are checked with the plugin's own checks at their bounds and every choice, combined with the fixed plugin arguments,
before Ray starts.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from yolo_ls.core.args import (
    ARG_TABLE,
    PLUGIN_KEYS,
    PluginArgumentError,
    check_keys,
    check_run_args,
    resolve_plugin_args,
    split_plugin_args,
)
from yolo_ls.core.objective import pick_best, ray_metric
from yolo_ls.datasets import resolve_data
from yolo_ls.engine.compat import check_ray_tune_supported
from yolo_ls.engine.ray_trial import result_trial_id, trial_run_dir

_MAX_CORNERS = 512  # combinations of plugin bounds/choices checked before the first trial


def domain_values(key: str, domain: Any) -> list[Any]:
    """The values of a Ray search-space entry that must all be valid: both bounds, every choice, or the constant.

    Raises:
        PluginArgumentError: For a domain whose values cannot be known before it samples (``tune.sample_from``).
    """
    from ray.tune.search.sample import Categorical, Domain, Float, Integer

    if isinstance(domain, Mapping) and set(domain) == {"grid_search"}:
        return list(domain["grid_search"])
    if isinstance(domain, Categorical):
        return list(domain.categories)
    if isinstance(domain, Float):
        return [domain.lower, domain.upper]
    if isinstance(domain, Integer):
        return [domain.lower, domain.upper - 1]  # Ray's integer upper bound is exclusive
    if isinstance(domain, Domain):
        raise PluginArgumentError(
            f"space['{key}']={domain!r} cannot be checked before the trials start. For a plugin argument use "
            f"tune.uniform/loguniform/randint/choice/grid_search, i.e. space={{'{key}': tune.choice([...])}}."
        )
    return [domain]


def check_ray_space(space: Mapping[str, Any], fixed: Mapping[str, Any], task: str, epochs: int) -> None:
    """Check the plugin entries of a Ray ``space`` and the fixed plugin arguments before Ray starts.

    Every value of each plugin entry is checked by its argument, then every combination of those values (up to
    512) together with the fixed plugin arguments must make a valid run (mode for the task, a schedule that builds).

    Raises:
        SyntaxError: For a key neither Ultralytics nor yolo-ls knows.
        PluginArgumentError: For a value or combination the plugin refuses.
    """
    check_keys(space)
    plugin = {k: domain_values(k, v) for k, v in space.items() if k in PLUGIN_KEYS}
    for k in ("tune_objective", "fitness_tol"):
        if k in plugin:
            raise PluginArgumentError(f"space['{k}']: '{k}' chooses between the trials and cannot vary between them. "
                                      f"Fix it instead, i.e. model.tune(use_ray=True, {k}=...).")
    for k, values in plugin.items():
        for v in values:
            try:
                ARG_TABLE[k](v)
            except PluginArgumentError as e:
                raise PluginArgumentError(f"space['{k}'] reaches a value '{k}' does not allow: {e}") from None
    corners = itertools.islice(itertools.product(*plugin.values()), _MAX_CORNERS)
    for corner in corners if plugin else [()]:
        where = f" with space at {dict(zip(plugin, corner))}" if plugin else ""
        check_run_args({**fixed, **dict(zip(plugin, corner))}, task, epochs, f"model.tune(use_ray=True){where}")


@contextmanager
def _stock_keys_for_the_tune_folder() -> Iterator[None]:
    """Ultralytics names the tune folder with ``get_cfg(DEFAULT_CFG, train_args)``: give it the stock keys only."""
    import ultralytics.utils.tuner as ray_tuner

    stock_get_cfg = ray_tuner.get_cfg

    def get_cfg(cfg: Any = None, overrides: Any = None) -> Any:
        return stock_get_cfg(cfg, split_plugin_args(overrides or {})[0])

    ray_tuner.get_cfg = get_cfg
    try:
        yield
    finally:
        ray_tuner.get_cfg = stock_get_cfg


def run_ray_tune(model: Any, space: dict[str, Any] | None = None, grace_period: int = 10,
                 gpu_per_trial: int | None = None, iterations: int = 300, search_alg: Any = "optuna",
                 **train_args: Any) -> Any:
    """Ultralytics' ``run_ray_tune`` with plugin arguments, and ``tune_objective``/``fitness_tol``.

    Arguments are those of :func:`ultralytics.utils.tuner.run_ray_tune`, plus the plugin arguments (fixed for every
    trial, or in ``space``).

    Returns:
        (ray.tune.ResultGrid): Ray's results; with a plain calibration objective its ``get_best_result()`` uses it.
        :func:`best_result` picks the best trial by any objective (with ``fitness_tol``) from it.

    Raises:
        SyntaxError: For an unknown key.
        PluginArgumentError: For a plugin value, space entry or objective the plugin refuses; Ray is not started.
    """
    from ultralytics.cfg import TASK2METRIC

    train_args, fixed = split_plugin_args(train_args)
    check_keys(train_args)
    task = model.task
    epochs = int(train_args.get("epochs") or 100)
    check_ray_space(space or {}, fixed, task, epochs)
    resolved = resolve_plugin_args(fixed, task)
    objective, tol = resolved["tune_objective"], resolved["fitness_tol"]
    fixed.pop("tune_objective", None)
    if resolved["best_by"] == "fitness":  # fitness_tol reaches the trials only where best_by reads it
        fixed.pop("fitness_tol", None)
    if train_args.get("data") is not None:
        data = train_args["data"]
        train_args["data"] = [resolve_data(d) for d in data] if isinstance(data, (list, tuple)) else resolve_data(data)
    metric, mode = ray_metric(objective, tol, TASK2METRIC[task])
    check_ray_tune_supported()  # after every argument check, before Ray starts
    kwargs = dict(space=space, grace_period=grace_period, gpu_per_trial=gpu_per_trial, iterations=iterations,
                  search_alg=search_alg, **{"task": task, **train_args}, **fixed)  # the tune folder under the task
    if mode == "max":
        from ultralytics.utils.tuner import run_ray_tune as stock_run_ray_tune

        with _stock_keys_for_the_tune_folder():
            grid = stock_run_ray_tune(model, **kwargs)
    else:
        grid = run_objective_tune(model, metric=metric, mode=mode, **kwargs)
    _log_best_trial(grid, task, objective, tol)
    return grid


def result_run_dir(result: Any) -> Path | None:
    """The training run folder of a Ray trial (the one holding its ``weights/best.pt``), or None when not found.

    Ray's own trial folder (``result.path``: params.json, progress.csv) holds no weights; the trial trained in an
    Ultralytics run folder beside the tune folder, which its yolo-ls trainer marked with the trial id
    (:mod:`yolo_ls.engine.ray_trial`).
    """
    trial_id = result_trial_id(result)
    if trial_id is None or not getattr(result, "path", None):
        return None
    return trial_run_dir(Path(str(result.path)).parents[1], trial_id)  # <project>/<tune dir>/<trial folder>


def _log_best_trial(grid: Any, task: str, objective: str, tol: float | None) -> None:
    """Log the best trial by the objective: its run folder (with weights/best.pt) and its searched values."""
    from ultralytics.utils import LOGGER

    best = best_result(grid, task, objective, tol)
    if best is None:
        return
    run = result_run_dir(best)
    by = f"tune_objective={objective}{f' fitness_tol={tol}' if tol is not None else ''}"
    values = {k: v for k, v in (best.config or {}).items() if k != "data"}
    if run is None:
        LOGGER.info(f"yolo-ls: best trial by {by}: {best.path} (Ray's trial folder; the run folder with its weights "
                    f"was not found) with {values}")
        return
    held = next((f"weights/{w}" for w in ("best.pt", "last.pt") if (run / "weights" / w).is_file()), "no weights yet")
    LOGGER.info(f"yolo-ls: best trial by {by}: {run} ({held}) with {values}")


def best_result(grid: Any, task: str, tune_objective: str = "fitness", fitness_tol: float | None = None) -> Any:
    """The best trial of a Ray ``ResultGrid`` by an objective: each trial's last reported result (which for a trial
    that finished is its best.pt validation), ``fitness_tol`` in units of Ultralytics' Ray metric (``TASK2METRIC``).

    Returns:
        (ray.tune.Result | None): The best trial's result, or None when no trial reported.
    """
    from ultralytics.cfg import TASK2METRIC

    from yolo_ls.core.objective import metric_key

    results = [r for r in grid if r.metrics]
    if not results:
        return None
    fitness = [float(r.metrics.get(TASK2METRIC[task], math.nan)) for r in results]
    values = fitness if tune_objective == "fitness" else [
        float(r.metrics.get(metric_key(tune_objective), math.nan)) for r in results]
    return results[pick_best(fitness, values, tune_objective, fitness_tol)]


def run_objective_tune(model: Any, metric: str, mode: str, space: dict[str, Any] | None = None,
                       grace_period: int = 10, gpu_per_trial: int | None = None, iterations: int = 300,
                       search_alg: Any = "optuna", **train_args: Any) -> Any:
    """The lines of Ultralytics' ``run_ray_tune`` (8.4.190) with Ray's ``metric``/``mode`` given.

    Same trainable, ASHA settings, tune folder and resume; ``search_alg`` is None/``"random"``, ``"optuna"``, another
    name Ray's ``create_searcher`` knows, or a searcher object (used as given); an empty ``space`` is Ultralytics'
    default. Raises ``PluginArgumentError`` for a search algorithm that needs Ultralytics' own search-space conversion
    (ax, bohb, zoopt, nevergrad).
    """
    from ultralytics.cfg import TASK2DATA, get_cfg, get_save_dir
    from ultralytics.utils import DEFAULT_CFG, DEFAULT_CFG_DICT, LOGGER, NUM_THREADS, checks, colorstr
    from ultralytics.utils.tuner import RAY_SEARCH_ALG_REQUIREMENTS

    try:
        import ray
        from ray import tune
        from ray.tune import RunConfig
        from ray.tune.schedulers import ASHAScheduler
    except ImportError:
        raise ModuleNotFoundError('Ray Tune required but not found. To install run: pip install "ray[tune]"') from None

    searcher = _searcher(search_alg, metric, mode, RAY_SEARCH_ALG_REQUIREMENTS, checks)
    if not space:
        space = _stock_default_space(tune)
        LOGGER.warning("Search space not provided, using default search space.")
    task = model.task
    _tune = _trial_function(ray.put(model), train_args.get("name", "tune"), train_args)
    data = train_args.get("data", TASK2DATA[task])
    space = {**space, "data": data}
    trainable = tune.with_resources(_tune, {"cpu": NUM_THREADS, "gpu": gpu_per_trial or 0})
    max_t = train_args.get("epochs") or DEFAULT_CFG_DICT["epochs"] or 100
    scheduler = ASHAScheduler(time_attr="epoch", max_t=max_t, grace_period=min(grace_period, max_t),
                              reduction_factor=3)  # metric/mode come from TuneConfig
    stock_args, _ = split_plugin_args(train_args)
    tune_dir = get_save_dir(get_cfg(DEFAULT_CFG, {**stock_args, "exist_ok": train_args.pop("resume", False)}),
                            name=train_args.pop("name", "tune"))
    tune_dir.mkdir(parents=True, exist_ok=True)
    if tune.Tuner.can_restore(tune_dir):
        LOGGER.info(f"{colorstr('Tuner: ')} Resuming tuning run {tune_dir}...")
        tuner = tune.Tuner.restore(str(tune_dir), trainable=trainable, resume_errored=True)
    else:
        tuner = tune.Tuner(
            trainable,
            param_space=space,
            tune_config=tune.TuneConfig(
                metric=metric, mode=mode, search_alg=searcher, scheduler=scheduler, num_samples=iterations,
                trial_name_creator=lambda trial: f"{trial.trainable_name}_{trial.trial_id}",
                trial_dirname_creator=lambda trial: f"{trial.trainable_name}_{trial.trial_id}",
            ),
            run_config=RunConfig(storage_path=tune_dir.parent, name=tune_dir.name),
        )
    tuner.fit()
    results = tuner.get_results()
    ray.shutdown()
    return results


def _trial_function(model_in_store: Any, base_name: str, train_args: dict[str, Any]) -> Any:
    """Ultralytics' trainable: a fresh copy of the stored model trained with the trial's config and ``train_args``
    (read when the trial runs), in a run named ``<base_name>_<trial id>``; returns its ``results_dict``."""
    import ray
    from ray import tune
    from ultralytics.utils.tuner import _sanitize_tune_value

    def _tune(config: dict[str, Any]) -> dict[str, Any]:
        model_to_train = ray.get(model_in_store)
        model_to_train.trainer = None
        model_to_train.reset_callbacks()
        config = _sanitize_tune_value(dict(config))
        config.update(train_args)
        try:
            trial_id = tune.get_context().get_trial_id()
            config["name"] = f"{base_name}_{trial_id.split('_')[-1] if '_' in trial_id else trial_id}"
        except Exception:
            config["name"] = base_name
        return model_to_train.train(**config).results_dict

    return _tune


def _searcher(search_alg: Any, metric: str, mode: str, requirements: Mapping[str, Any], checks: Any) -> Any:
    """A Ray searcher for ``metric``/``mode`` (None for random search)."""
    if search_alg is None or not isinstance(search_alg, str):
        return search_alg
    name = search_alg.strip().lower()
    if name in ("", "random"):
        return None
    if name not in requirements:
        raise PluginArgumentError(f"Unsupported Ray Tune search_alg '{search_alg}'. Supported values: "
                                  f"{', '.join(sorted(requirements))}.")
    if name in ("ax", "bohb", "zoopt", "nevergrad"):
        raise PluginArgumentError(
            f"search_alg='{name}' needs Ultralytics' own search-space conversion, which optimises its accuracy metric "
            f"only. With a calibration tune_objective use search_alg='random', 'optuna' or 'hyperopt' (or pass a "
            f"searcher object), or add fitness_tol=... to let Ultralytics' search chase accuracy."
        )
    if requirements[name]:
        checks.check_requirements(requirements[name])
    if name == "optuna":
        from optuna.samplers import TPESampler
        from ray.tune.search.optuna import OptunaSearch

        return OptunaSearch(sampler=TPESampler(multivariate=True, constant_liar=True))
    from ray.tune.search import create_searcher

    return create_searcher(name)


def _stock_default_space(tune: Any) -> dict[str, Any]:
    """Ultralytics' default Ray search space (8.4.190), which ``run_ray_tune`` keeps inside the function."""
    u = tune.uniform
    return {
        "lr0": u(1e-5, 1e-2), "lrf": u(0.01, 1.0), "momentum": u(0.7, 0.98), "weight_decay": u(0.0, 0.001),
        "warmup_epochs": u(0.0, 5.0), "warmup_momentum": u(0.0, 0.95), "box": u(1.0, 20.0), "cls": u(0.1, 4.0),
        "cls_pw": u(0.0, 1.0), "dfl": u(0.4, 12.0), "hsv_h": u(0.0, 0.1), "hsv_s": u(0.0, 0.9),
        "hsv_v": u(0.0, 0.9), "degrees": u(0.0, 45.0), "translate": u(0.0, 0.9), "scale": u(0.0, 0.95),
        "shear": u(0.0, 10.0), "perspective": u(0.0, 0.001), "flipud": u(0.0, 1.0), "fliplr": u(0.0, 1.0),
        "bgr": u(0.0, 1.0), "mosaic": u(0.0, 1.0), "mixup": u(0.0, 1.0), "cutmix": u(0.0, 1.0),
        "copy_paste": u(0.0, 1.0), "close_mosaic": tune.randint(0, 11),
    }
