"""The plugin argument table: one row per yolo-ls argument.

Every consumer reads this table: the trainers' validation, the CLI's ``help`` and ``cfg`` commands, the README table and
the "did you mean" suggestions. Adding an argument is adding one row.

Errors follow Ultralytics' own wording: an unknown key raises ``SyntaxError("'x' is not a valid YOLO argument. Similar
arguments are i.e. [...]")`` and a bad value raises :class:`PluginArgumentError` (a ``ValueError``) that names the
argument, the value and what is allowed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from difflib import get_close_matches
from typing import Any

from yolo_ls.calibration.methods import CALIBRATE_CHOICES, SIGMOID_METHODS, SOFTMAX_METHODS
from yolo_ls.core.auto import AUTO_SPLITS
from yolo_ls.core.checks import (
    AUTO_GAIN,
    DECAY,
    EPSILON,
    SIGNED_EPSILON,
    STEP_SIZE,
    WARMUP_EPOCHS,
    Choice,
    ClassMatrix,
    ClassWeights,
    Flag,
    FloatRange,
    IntRange,
    PluginArgumentError,
    _is_number,
    _scalar,
    epsilon_check,
    load_class_matrix,
)
from yolo_ls.core.modes import CLASSIFY_MODES, DETECT_MODES, MODES, TASKS
from yolo_ls.core.objective import OBJECTIVES, OBJECTIVES_HELP, task_objectives
from yolo_ls.core.schedules import PURE_SCHEDULES

SCHEDULES = (*PURE_SCHEDULES, "auto")  # auto: steered by measured calibration (core/auto.py)

# Keys Ultralytics accepts without them being in DEFAULT_CFG_DICT: extras that check_dict_alignment allows, and the
# deprecated keys that its _handle_deprecation maps or drops (label_smoothing is the plugin's, so it is not listed).
# "session" is the key Model.train passes up to about 8.4.112.
_ULTRALYTICS_EXTRA_KEYS = frozenset(
    {"augmentations", "save_dir", "boxes", "hide_labels", "hide_conf", "line_thickness", "end2end", "int8", "half"}
    | {"save_hybrid", "crop_fraction", "keras", "session"}
)


# ----------------------------------------------------------------------------------------------- choice lists
PLOT_CHOICES = ("final", "all", "off")  # calib_plots; the first is the default
PLOT_CHOICES_HELP = (
    "calibration figures: final (best.pt diagram and curves at the end; every epoch's bins kept in "
    "calibration/epochs.json for 'yolo-ls plot RUN'), all (also each epoch's diagram as it ends), off (none)"
)
SIGNED_ARGS = ("label_smoothing", "ls_final")


@dataclass(frozen=True)
class PluginArg:
    """One plugin argument: its name, default, one help line, and the check that normalises or rejects a value."""

    name: str
    default: Any
    help: str
    check: Callable[[str, Any], Any]

    @property
    def allowed(self) -> str:
        """Human-readable valid values, written by the check itself (errors, help and README use it)."""
        return self.check.allowed  # type: ignore[attr-defined]

    def __call__(self, value: Any) -> Any:
        """Check a value of this argument: the normalised value, or a :class:`PluginArgumentError`."""
        return self.check(self.name, value)


ARGS: tuple[PluginArg, ...] = (
    PluginArg("label_smoothing", 0.0, "smoothing ε put into the classification term of the loss (0 = hard targets)",
              EPSILON),
    PluginArg(
        "ls_mode",
        "auto",
        "where ε goes: classify uniform/exclusive/prior/margin (MbLS)/online (OLS)/matrix, detect "
        "fg/all/positive/matrix; auto = uniform or fg by task",
        Choice(
            MODES,
            f"auto, {', '.join(CLASSIFY_MODES)} (classify) or {', '.join(DETECT_MODES)} (detect, segment, pose, obb)",
        ),
    ),
    PluginArg("ls_prior", None,
              "class distribution for ls_mode=prior, i.e. [0.5,0.3,0.2]; None = the training set's class frequencies",
              ClassWeights()),
    PluginArg("ls_margin", 10.0, "ls_mode=margin (MbLS): the logit margin m; ε is the penalty weight λ",
              FloatRange(0.0, 1e6, lo_closed=False, example=10.0)),
    PluginArg("ls_matrix", None, "ls_mode=matrix: KxK matrix, row y = where ε goes for true class y (list or CSV path)",
              ClassMatrix()),
    PluginArg("ls_negative", False,
              f"allow negative ε: label_smoothing and ls_final then take {SIGNED_EPSILON.allowed} "
              "(ls_mode=uniform, pure schedules)",
              Flag()),
    PluginArg(
        "ls_schedule",
        "constant",
        "how ε changes: constant, linear, cosine, step, exp, two_stage, auto (calibration-steered), fn(epoch, epochs)",
        Choice(SCHEDULES, ", ".join(SCHEDULES), also_callable="fn(epoch: float, epochs: int) -> float"),
    ),
    PluginArg("ls_final", 0.0, "end value of ε for linear, cosine and exp", EPSILON),
    PluginArg("ls_warmup_epochs", 0.0, "epochs of linear ramp 0 -> ε before the schedule starts", WARMUP_EPOCHS),
    PluginArg("ls_step_size", 1, "epochs between decays for ls_schedule=step", STEP_SIZE),
    PluginArg("ls_gamma", 0.5, "decay factor per step (step) or per epoch (exp)", DECAY),
    PluginArg("ls_off_epoch", None, "two_stage: first (0-based) epoch trained without smoothing",
              IntRange(1, optional=True, example=5)),
    PluginArg("ls_per_iter", False, "update ε every optimizer step (fractional epochs) instead of once per epoch",
              Flag()),
    PluginArg("ls_max", 0.3, "ls_schedule=auto: upper bound of ε", EPSILON),
    PluginArg("ls_auto_gain", 0.5,
              "ls_schedule=auto: damping of the update ε += gain·(confidence - accuracy)·c, c set by ls_mode",
              AUTO_GAIN),
    PluginArg("ls_auto_split", "val",
              "ls_schedule=auto: the data whose calibration steers ε: val, or train_holdout (classify)",
              Choice(AUTO_SPLITS)),
    PluginArg("ls_auto_holdout", 0.1,
              "ls_auto_split=train_holdout: fraction of train held out (fixed, seeded) to steer ε",
              FloatRange(0.0, 0.5, lo_closed=False, example=0.1)),
    PluginArg("calibration", True, "measure calibration at every validation (calibration.csv, calib/* metrics)",
              Flag()),
    PluginArg("calib_bins", 15, "equal-width confidence bins for ECE/MCE and the reliability diagrams",
              IntRange(2, 1000, example=15)),
    PluginArg("calib_conf", 0.25, "detection: predictions below this confidence are left out of d_ece",
              FloatRange(0.0, 1.0, example=0.25)),
    PluginArg("calib_plots", PLOT_CHOICES[0], PLOT_CHOICES_HELP, Choice(PLOT_CHOICES)),
    PluginArg("calibrate", "off",
              "after training: fit a post-hoc calibration on val (cross-fitted by image) and write "
              "weights/best-calibrated.pt: off, temperature, vector, matrix (classify), platt (detect)",
              Choice(CALIBRATE_CHOICES)),
    PluginArg("best_by", "fitness",
              "which epoch is saved as best.pt: fitness (stock), or the lowest val calibration metric "
              "(with fitness_tol: among epochs within fitness_tol of the best fitness so far)",
              Choice(OBJECTIVES, OBJECTIVES_HELP)),
    PluginArg("tune_objective", "fitness",
              "model.tune(): which iteration (built-in Tuner) or trial (use_ray=True) is best, as best_by; "
              "with fitness_tol: the lowest metric among those within fitness_tol of the best fitness",
              Choice(OBJECTIVES, OBJECTIVES_HELP)),
    PluginArg("fitness_tol", None,
              "best_by/tune_objective: how far below the best fitness a candidate may be (absolute); None = no limit",
              FloatRange(0.0, 1.0, example=0.01, optional=True)),
)

ARG_TABLE: dict[str, PluginArg] = {a.name: a for a in ARGS}
PLUGIN_KEYS: frozenset[str] = frozenset(ARG_TABLE)
DEFAULTS: dict[str, Any] = {a.name: a.default for a in ARGS}


def ultralytics_keys() -> frozenset[str]:
    """Every key stock Ultralytics accepts in ``train``/``val``/``predict`` overrides."""
    from ultralytics.utils import DEFAULT_CFG_DICT

    return frozenset(DEFAULT_CFG_DICT) | _ULTRALYTICS_EXTRA_KEYS


def check_keys(keys: Iterable[str]) -> None:
    """Raise a SyntaxError for keys that neither Ultralytics nor yolo-ls knows, suggesting the closest of both.

    Raises:
        SyntaxError: In Ultralytics' wording, one line per unknown key.
    """
    from ultralytics.utils import DEFAULT_CFG_DICT

    valid = ultralytics_keys() | PLUGIN_KEYS
    lines = []
    for key in keys:
        if key in valid:
            continue
        matches = get_close_matches(key, sorted(valid))
        shown = []
        for m in matches:
            default = DEFAULTS[m] if m in DEFAULTS else DEFAULT_CFG_DICT.get(m)
            shown.append(f"{m}={default}" if default is not None else m)
        hint = f" Similar arguments are i.e. {shown}." if shown else ""
        lines.append(f"'{key}' is not a valid YOLO or yolo-ls argument.{hint}")
    if lines:
        raise SyntaxError("\n".join(lines))


def split_plugin_args(args: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a mapping into (Ultralytics arguments, plugin arguments)."""
    stock = {k: v for k, v in args.items() if k not in PLUGIN_KEYS}
    plugin = {k: v for k, v in args.items() if k in PLUGIN_KEYS}
    return stock, plugin


def resolve_plugin_args(given: Mapping[str, Any], task: str) -> dict[str, Any]:
    """Validate the plugin arguments a user set for ``task`` (classify, detect, segment, pose, obb); fill in defaults.

    Returns every plugin argument, normalised, with ``ls_mode`` resolved for the task. Raises ``SyntaxError`` for a key
    that is not a plugin argument, ``PluginArgumentError`` for a value the argument does not allow or a mode that does
    not fit the task.
    """
    if task not in TASKS:
        raise PluginArgumentError(f"yolo-ls supports the tasks {list(TASKS)}, not task='{task}'.")
    unknown = [k for k in given if k not in PLUGIN_KEYS]
    if unknown:
        check_keys(unknown)
    out = {**DEFAULTS}
    negative = ARG_TABLE["ls_negative"](given.get("ls_negative", False))
    for name, value in given.items():
        try:
            out[name] = epsilon_check(negative)(name, value) if name in SIGNED_ARGS else ARG_TABLE[name](value)
        except PluginArgumentError as e:
            v = _scalar(value)
            if name in SIGNED_ARGS and not negative and _is_number(v) and SIGNED_EPSILON.contains(v) and v < 0:
                raise PluginArgumentError(
                    f"{e} Negative smoothing (Wei et al. 2022) is opt-in: ls_negative=True (ls_mode=uniform) "
                    f"allows {SIGNED_EPSILON.allowed}."
                ) from None
            raise

    mode = out["ls_mode"]
    methods = SOFTMAX_METHODS if task == "classify" else SIGMOID_METHODS
    if out["calibrate"] not in ("off", *methods):
        raise PluginArgumentError(f"'calibrate={out['calibrate']}' does not apply to task '{task}'. Valid 'calibrate' "
                                  f"values for '{task}' are {['off', *methods]}.")
    task_modes = CLASSIFY_MODES if task == "classify" else DETECT_MODES
    if mode == "auto":
        mode = "prior" if (task == "classify" and out["ls_prior"] is not None) else task_modes[0]
    if mode not in task_modes:
        kind = "classification" if mode in CLASSIFY_MODES else "detection"
        raise PluginArgumentError(
            f"'ls_mode={mode}' is a {kind} mode and does not apply to task '{task}'. "
            f"Valid 'ls_mode' values for '{task}' are {list(task_modes)}."
        )
    if negative and mode != "uniform":
        raise PluginArgumentError(f"'ls_negative=True' applies to 'ls_mode=uniform' only, but 'ls_mode={mode}'.")
    if negative and callable(out["ls_schedule"]):
        raise PluginArgumentError("'ls_negative=True' works with the named schedules; a callable ls_schedule returns "
                                  "ε in [0, 1).")
    if mode == "matrix" and out["ls_matrix"] is None:
        raise PluginArgumentError("'ls_mode=matrix' needs 'ls_matrix': a KxK nested list or a CSV path.")
    if out["ls_matrix"] is not None and mode != "matrix":
        raise PluginArgumentError(f"'ls_matrix' is only used with 'ls_mode=matrix', but 'ls_mode={mode}'.")
    if out["ls_schedule"] == "auto":
        if mode == "margin":
            raise PluginArgumentError(
                "'ls_schedule=auto' steers ε by the target confidence it sets, and the MbLS margin penalty "
                "(ls_mode=margin) sets none: use a pure schedule (i.e. ls_schedule=constant) with ls_mode=margin."
            )
        if negative:
            raise PluginArgumentError("'ls_schedule=auto' keeps ε in [0, ls_max]: it cannot be combined with "
                                      "'ls_negative=True'; use a pure schedule.")
        if not out["calibration"]:
            raise PluginArgumentError("'ls_schedule=auto' is steered by measured calibration: keep calibration=True")
        if out["ls_auto_split"] == "train_holdout" and task != "classify":
            raise PluginArgumentError(
                f"'ls_auto_split=train_holdout' is implemented for task 'classify'; for '{task}' use ls_auto_split=val."
            )
    for key in ("best_by", "tune_objective"):
        objective = out[key]
        if objective not in task_objectives(task):
            kind = "classification" if task != "classify" else "detection"
            raise PluginArgumentError(
                f"'{key}={objective}' is a {kind} metric and does not apply to task '{task}'. "
                f"Valid '{key}' values for '{task}' are {list(task_objectives(task))}."
            )
        if objective != "fitness" and not out["calibration"]:
            raise PluginArgumentError(f"'{key}={objective}' reads the calibration measured at each validation: keep "
                                      f"calibration=True, or use {key}=fitness.")
    if out["ls_prior"] is not None and mode != "prior":
        raise PluginArgumentError(f"'ls_prior' is only used with 'ls_mode=prior', but 'ls_mode={mode}'.")
    out["ls_mode"] = mode
    return out


# Which arguments each setting reads: a key given by the user outside these is accepted but has no effect, so it is
# named in a warning (a typo'd schedule name or a forgotten ls_schedule is the usual cause).
_USED_BY_SCHEDULE = {
    "ls_final": ("linear", "cosine", "exp"),
    "ls_step_size": ("step",),
    "ls_gamma": ("step", "exp"),
    "ls_off_epoch": ("two_stage",),
    "ls_max": ("auto",),
    "ls_auto_gain": ("auto",),
    "ls_auto_split": ("auto",),
    "ls_auto_holdout": ("auto",),
}


# model.tune() sets this for its iterations (each a ``yolo-ls train`` subprocess): the plugin keys its space searches,
# comma-separated. An iteration's value of a searched key is the search's, not a setting the user fixed.
TUNED_KEYS_ENV = "YOLO_LS_TUNED_KEYS"


def tuned_keys(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """The plugin keys a running ``model.tune()`` searches (:data:`TUNED_KEYS_ENV`); empty outside a tune."""
    value = (os.environ if environ is None else environ).get(TUNED_KEYS_ENV, "")
    return frozenset(k for k in (s.strip() for s in value.split(",")) if k in PLUGIN_KEYS)


def inapplicable_args(given: Mapping[str, Any], resolved: Mapping[str, Any], task: str, epochs: int | None = None,
                      tuned: Collection[str] = ()) -> list[str]:
    """Warnings for arguments the user set that this run will not use, and for schedules with no room to run.

    Args:
        given: The plugin arguments the user set.
        resolved: The same after :func:`resolve_plugin_args` (defaults filled in, ``ls_mode`` resolved).
        task: The Ultralytics task.
        epochs: The run's epochs, for the schedule-length warning.
        tuned: The plugin keys a tune searches (this run is one of its iterations): a searched ε (or ``ls_final``
            of a ramp) at 0 is a point of the search, not a schedule left without ε, so it is not warned about.
    """
    schedule = resolved["ls_schedule"]
    name = "a callable" if callable(schedule) else schedule
    out = []
    for key, schedules in _USED_BY_SCHEDULE.items():
        if key in given and (callable(schedule) or schedule not in schedules):
            out.append(f"'{key}' is only used by ls_schedule={'/'.join(schedules)}; it has no effect with "
                       f"ls_schedule={name}.")
    if "ls_auto_holdout" in given and resolved["ls_auto_split"] != "train_holdout" and schedule == "auto":
        out.append("'ls_auto_holdout' is only used with ls_auto_split=train_holdout.")
    if "ls_margin" in given and resolved["ls_mode"] != "margin":
        out.append(f"'ls_margin' is only used with ls_mode=margin; it has no effect with "
                   f"ls_mode={resolved['ls_mode']}.")
    if "calib_conf" in given and task == "classify":
        out.append("'calib_conf' is only used by detection tasks; it has no effect with task=classify.")
    if not resolved["calibration"]:
        out += [f"'{k}' has no effect with calibration=False." for k in ("calib_bins", "calib_conf", "calib_plots")
                if k in given]
    if "fitness_tol" in given and resolved["best_by"] == "fitness" and resolved["tune_objective"] == "fitness":
        out.append("'fitness_tol' is only used with best_by or tune_objective set to a calibration metric.")
    if "tune_objective" in given and resolved["tune_objective"] != "fitness":
        out.append("'tune_objective' is only used by model.tune(); training picks best.pt by 'best_by'.")
    ramps = schedule in ("linear", "cosine", "exp") and (resolved["ls_final"] > 0 or "ls_final" in tuned)
    if (not callable(schedule) and schedule not in ("constant", "auto") and resolved["label_smoothing"] == 0
            and not ramps and "label_smoothing" not in tuned):
        out.append(f"ls_schedule={schedule} with label_smoothing=0.0 never smooths: set label_smoothing to the "
                   "start value.")
    if epochs is not None and int(epochs) <= 1 and schedule in ("linear", "cosine", "exp"):
        out.append(f"ls_schedule={schedule} with epochs={epochs} has no room to run: its only epoch trains at its end "
                   f"value (ls_final={resolved['ls_final']}).")
    return out


def build_schedule_from_args(args: Mapping[str, Any], epochs: int) -> Any:
    """The ε schedule a run's plugin arguments describe, checked over the whole run before anything is written.

    Returns a pure :class:`yolo_ls.core.schedules.SmoothingSchedule`, or for ``ls_schedule=auto`` a
    :class:`.auto.AutoSchedule`. A callable schedule is probed at every epoch of the run
    (:func:`probe_callable_schedule`).

    Raises:
        PluginArgumentError: For a combination the schedule rejects (i.e. two_stage without ls_off_epoch).
    """
    if args["ls_schedule"] == "auto":
        from yolo_ls.core.auto import AutoSchedule

        if args["ls_warmup_epochs"]:
            raise PluginArgumentError("'ls_warmup_epochs' does not apply to 'ls_schedule=auto' (it starts at ε).")
        return AutoSchedule(args["label_smoothing"], eps_max=args["ls_max"], gain=args["ls_auto_gain"])
    from yolo_ls.core.schedules import CallableSchedule, build_schedule

    try:
        schedule = build_schedule(
            args["ls_schedule"],
            args["label_smoothing"],
            int(epochs),
            final=args["ls_final"],
            warmup_epochs=args["ls_warmup_epochs"],
            step_size=args["ls_step_size"],
            gamma=args["ls_gamma"],
            off_epoch=args["ls_off_epoch"],
            negative=bool(args.get("ls_negative")),
        )
    except (TypeError, ValueError) as e:
        raise PluginArgumentError(str(e)) from None
    if isinstance(schedule, CallableSchedule):
        probe_callable_schedule(schedule, int(epochs), bool(args.get("ls_per_iter")))
    return schedule


def check_run_args(plugin: Mapping[str, Any], task: str, epochs: int, context: str) -> None:
    """Whether plugin arguments make a valid run (mode for the task, a schedule that builds), before anything runs.

    Raises:
        PluginArgumentError: The plugin's own message, after ``context`` (which run of a search it is about).
    """
    try:
        build_schedule_from_args(resolve_plugin_args(plugin, task), epochs)
    except PluginArgumentError as e:
        raise PluginArgumentError(f"{context}: {e}") from None


def probe_callable_schedule(schedule: Any, epochs: int, per_iter: bool = False) -> None:
    """Call a user's schedule at every epoch it will see (and mid-epoch with ``ls_per_iter``), before the run starts.

    Raises:
        PluginArgumentError: Naming the callable, the epoch and what it returned or raised.
    """
    name = getattr(schedule.fn, "__qualname__", repr(schedule.fn))
    points = [float(e) for e in range(epochs)] + ([e + 0.5 for e in range(epochs)] if per_iter else [])
    for epoch in points:
        try:
            schedule(epoch)
        except ValueError as e:
            raise PluginArgumentError(f"'ls_schedule={name}' is invalid: {e}") from None
        except Exception as e:  # wrong signature, or the function itself fails
            raise PluginArgumentError(
                f"'ls_schedule={name}' failed when called as fn(epoch={epoch}, epochs={epochs}): "
                f"{type(e).__name__}: {e}. A callable schedule takes (epoch: float, epochs: int) and returns ε."
            ) from None


def check_num_classes(args: Mapping[str, Any], nc: int, names: Sequence[str] | None = None) -> None:
    """Checks that need the dataset's classes: the prior's length, K >= 2 for ``exclusive``, the matrix's shape and
    (for a CSV) its class names against the dataset's ``names``.

    Raises:
        PluginArgumentError: Naming the argument and the dataset's class count.
    """
    if args.get("ls_matrix") is not None:
        rows, csv_names = load_class_matrix(args["ls_matrix"])
        if len(rows) != nc:
            raise PluginArgumentError(
                f"'ls_matrix' is {len(rows)}x{len(rows)} but the dataset has nc={nc} classes. Give a {nc}x{nc} matrix."
            )
        if csv_names is not None and names is not None and list(csv_names) != [str(n) for n in names]:
            raise PluginArgumentError(
                f"'ls_matrix={args['ls_matrix']}' names the classes {csv_names}, but the dataset's classes are "
                f"{[str(n) for n in names]}: the rows must follow the dataset's class order and names."
            )
    if args["ls_mode"] == "exclusive" and nc < 2:
        raise PluginArgumentError(
            f"'ls_mode=exclusive' spreads ε over the other K-1 classes and needs at least 2 classes, "
            f"but the dataset has nc={nc}. Use 'ls_mode=uniform'."
        )
    prior = args.get("ls_prior")
    if prior is not None and len(prior) != nc:
        raise PluginArgumentError(
            f"'ls_prior' has {len(prior)} weights but the dataset has nc={nc} classes. Give one weight per class."
        )


def markdown_table() -> str:
    """The plugin argument table as Markdown, as README.md shows it (a test keeps the two identical)."""
    rows = ["| argument | default | allowed | what it does |", "|---|---|---|---|"]
    for a in ARGS:
        rows.append(f"| `{a.name}` | `{a.default}` | {a.allowed} | {a.help} |")
    return "\n".join(rows)
