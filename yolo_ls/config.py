"""The plugin argument table: one row per yolo-ls argument.

Every consumer reads this table: the trainers' validation, the CLI's ``help`` and ``cfg`` commands, the README table and
the "did you mean" suggestions. Adding an argument is adding one row.

Errors follow Ultralytics' own wording: an unknown key raises ``SyntaxError("'x' is not a valid YOLO argument. Similar
arguments are i.e. [...]")`` and a bad value raises :class:`PluginArgumentError` (a ``ValueError``) that names the
argument, the value and what is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from difflib import get_close_matches
from typing import Any

from yolo_ls.plots import PLOT_CHOICES, PLOT_CHOICES_HELP

CLASSIFY_MODES = ("uniform", "exclusive", "prior")
DETECT_MODES = ("fg", "all", "positive")
DETECT_TASKS = ("detect", "segment", "pose", "obb")
TASKS = ("classify", *DETECT_TASKS)

# Keys Ultralytics accepts without them being in DEFAULT_CFG_DICT: extras that check_dict_alignment allows, and the
# deprecated keys that its _handle_deprecation maps or drops (label_smoothing is the plugin's, so it is not listed).
_ULTRALYTICS_EXTRA_KEYS = frozenset(
    {"augmentations", "save_dir", "boxes", "hide_labels", "hide_conf", "line_thickness", "end2end", "int8", "half"}
    | {"save_hybrid", "crop_fraction", "keras"}
)


class PluginArgumentError(ValueError):
    """A yolo-ls argument has a value outside what it allows."""


@dataclass(frozen=True)
class PluginArg:
    """One plugin argument: its name, default, one help line, and the check that normalises or rejects a value."""

    name: str
    default: Any
    help: str
    check: Callable[[str, Any], Any]
    allowed: str  # human-readable description of the valid values, used in errors, help and README


def _invalid(name: str, value: Any, allowed: str, hint: str = "") -> PluginArgumentError:
    return PluginArgumentError(f"'{name}={value}' is an invalid value. Valid '{name}' values are {allowed}.{hint}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _float_in(
    lo: float, hi: float, *, lo_closed: bool = True, hi_closed: bool = True, example: float
) -> Callable[[str, Any], float]:
    """A check for a finite float between ``lo`` and ``hi`` (each end closed or open); numpy/torch scalars accepted."""
    kind = {True: "inclusive", False: "exclusive"}
    ends = f"between {lo} ({kind[lo_closed]}) and {hi} ({kind[hi_closed]})"

    def check(name: str, value: Any) -> float:
        if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy / torch scalars
            value = value.item()
        ok = _is_number(value) and math.isfinite(value)
        ok = ok and (lo <= value if lo_closed else lo < value) and (value <= hi if hi_closed else value < hi)
        if not ok:
            raise _invalid(name, value, f"floats {ends}, i.e. {example}")
        return float(value)

    return check


_unit_interval = _float_in(0.0, 1.0, hi_closed=False, example=0.1)  # a smoothing ε


def _choice(options: tuple[str, ...]) -> Callable[[str, Any], str]:
    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or value not in options:
            hint = get_close_matches(str(value), options, n=1)
            raise _invalid(name, value, f"one of {list(options)}", f" Did you mean '{hint[0]}'?" if hint else "")
        return value

    return check


def _non_negative(name: str, value: Any) -> float:
    if not _is_number(value) or not math.isfinite(value) or value < 0:
        raise _invalid(name, value, "finite numbers >= 0, i.e. 2")
    return float(value)


def _positive_int(name: str, value: Any) -> int:
    if not _is_number(value) or not math.isfinite(value) or value < 1 or int(value) != value:
        raise _invalid(name, value, "integers >= 1, i.e. 10")
    return int(value)


def _optional_positive_int(name: str, value: Any) -> int | None:
    return None if value is None else _positive_int(name, value)


def _int_range(lo: int, hi: int) -> Callable[[str, Any], int]:
    def check(name: str, value: Any) -> int:
        if not _is_number(value) or not math.isfinite(value) or int(value) != value or not lo <= value <= hi:
            raise _invalid(name, value, f"integers in [{lo}, {hi}], i.e. 15")
        return int(value)

    return check






def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _invalid(name, value, "True or False")
    return value


def _schedule(name: str, value: Any) -> Any:
    from yolo_ls.schedules import SCHEDULES

    if callable(value):
        return value
    return _choice(SCHEDULES)(name, value)


def _prior(name: str, value: Any) -> list[float] | None:
    """A class distribution: a list of non-negative finite weights with a positive sum (normalised later)."""
    if value is None:
        return None
    if hasattr(value, "tolist"):
        value = value.tolist()
    allowed = "None or a list of non-negative class weights with a positive sum, i.e. [0.5, 0.3, 0.2]"
    if not isinstance(value, (list, tuple)) or len(value) < 2 or not all(_is_number(v) for v in value):
        raise _invalid(name, value, allowed)
    weights = [float(v) for v in value]
    if not all(math.isfinite(w) and w >= 0 for w in weights) or sum(weights) <= 0:
        raise _invalid(name, value, allowed)
    return weights


ARGS: tuple[PluginArg, ...] = (
    PluginArg(
        "label_smoothing",
        0.0,
        "smoothing ε put into the classification term of the loss (0 = hard targets)",
        _unit_interval,
        "a float in [0.0, 1.0)",
    ),
    PluginArg(
        "ls_mode",
        "auto",
        "where ε goes: classify uniform/exclusive/prior, detect fg/all/positive; auto = uniform or fg by task",
        _choice(("auto", *CLASSIFY_MODES, *DETECT_MODES)),
        f"auto, {', '.join(CLASSIFY_MODES)} (classify) or {', '.join(DETECT_MODES)} (detect, segment, pose, obb)",
    ),
    PluginArg(
        "ls_prior",
        None,
        "class distribution for ls_mode=prior, i.e. [0.5,0.3,0.2]; None = the training set's class frequencies",
        _prior,
        "None or a list of nc non-negative weights with a positive sum",
    ),
    PluginArg(
        "ls_schedule",
        "constant",
        "how ε changes: constant, linear, cosine, step, exp, two_stage, auto (calibration-steered), fn(epoch, epochs)",
        _schedule,
        "constant, linear, cosine, step, exp, two_stage, auto, or a callable fn(epoch: float, epochs: int) -> float",
    ),
    PluginArg("ls_final", 0.0, "end value of ε for linear, cosine and exp", _unit_interval, "a float in [0.0, 1.0)"),
    PluginArg(
        "ls_warmup_epochs", 0.0, "epochs of linear ramp 0 -> ε before the schedule starts", _non_negative, ">= 0"
    ),
    PluginArg("ls_step_size", 1, "epochs between decays for ls_schedule=step", _positive_int, "an integer >= 1"),
    PluginArg(
        "ls_gamma",
        0.5,
        "decay factor per step (step) or per epoch (exp)",
        _float_in(0.0, 1.0, lo_closed=False, example=0.5),
        "a float in (0.0, 1.0]",
    ),
    PluginArg(
        "ls_off_epoch",
        None,
        "two_stage: first (0-based) epoch trained without smoothing",
        _optional_positive_int,
        "None or an integer >= 1",
    ),
    PluginArg(
        "ls_per_iter",
        False,
        "update ε every optimizer step (fractional epochs) instead of once per epoch",
        _bool,
        "True or False",
    ),
    PluginArg("ls_max", 0.3, "ls_schedule=auto: upper bound of ε", _unit_interval, "a float in [0.0, 1.0)"),
    PluginArg(
        "ls_auto_gain",
        0.5,
        "ls_schedule=auto: damping of the update ε += gain·(confidence - accuracy)·K/(K-1)",
        _float_in(0.0, 2.0, lo_closed=False, example=0.5),
        "a float in (0.0, 2.0]",
    ),
    PluginArg(
        "ls_auto_split",
        "val",
        "ls_schedule=auto: the data whose calibration steers ε: val, or train_holdout (classify)",
        _choice(("val", "train_holdout")),
        "one of val, train_holdout",
    ),
    PluginArg(
        "ls_auto_holdout",
        0.1,
        "ls_auto_split=train_holdout: fraction of train held out (fixed, seeded) to steer ε",
        _float_in(0.0, 0.5, lo_closed=False, example=0.1),
        "a float in (0.0, 0.5]",
    ),
    PluginArg("calibration", True, "measure calibration at every validation (calibration.csv, calib/* metrics)",
              _bool, "True or False"),
    PluginArg("calib_bins", 15, "equal-width confidence bins for ECE/MCE and the reliability diagrams",
              _int_range(2, 1000), "an integer in [2, 1000]"),
    PluginArg("calib_conf", 0.25, "detection: predictions below this confidence are left out of d_ece",
              _float_in(0.0, 1.0, example=0.25), "a float in [0.0, 1.0]"),
    PluginArg("calib_plots", PLOT_CHOICES[0], PLOT_CHOICES_HELP, _choice(PLOT_CHOICES),
              "one of " + ", ".join(PLOT_CHOICES)),
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
    """Validate plugin arguments for a task and fill in defaults.

    Args:
        given (Mapping[str, Any]): Plugin arguments the user set (unknown keys are rejected).
        task (str): The Ultralytics task, one of classify, detect, segment, pose, obb.

    Returns:
        (dict[str, Any]): Every plugin argument, normalised, with ``ls_mode`` resolved for the task.

    Raises:
        SyntaxError: For a key that is not a plugin argument.
        PluginArgumentError: For a value the argument does not allow, or a mode that does not fit the task.
    """
    if task not in TASKS:
        raise PluginArgumentError(f"yolo-ls supports the tasks {list(TASKS)}, not task='{task}'.")
    unknown = [k for k in given if k not in PLUGIN_KEYS]
    if unknown:
        check_keys(unknown)
    out = {**DEFAULTS}
    for name, value in given.items():
        out[name] = ARG_TABLE[name].check(name, value)

    mode = out["ls_mode"]
    task_modes = CLASSIFY_MODES if task == "classify" else DETECT_MODES
    if mode == "auto":
        mode = "prior" if (task == "classify" and out["ls_prior"] is not None) else task_modes[0]
    if mode not in task_modes:
        kind = "classification" if mode in CLASSIFY_MODES else "detection"
        raise PluginArgumentError(
            f"'ls_mode={mode}' is a {kind} mode and does not apply to task '{task}'. "
            f"Valid 'ls_mode' values for '{task}' are {list(task_modes)}."
        )
    if out["ls_schedule"] == "auto":
        if not out["calibration"]:
            raise PluginArgumentError("'ls_schedule=auto' is steered by measured calibration: keep calibration=True")
        if out["ls_auto_split"] == "train_holdout" and task != "classify":
            raise PluginArgumentError(
                f"'ls_auto_split=train_holdout' is implemented for task 'classify'; for '{task}' use ls_auto_split=val."
            )
    if out["ls_prior"] is not None and mode != "prior":
        raise PluginArgumentError(f"'ls_prior' is only used with 'ls_mode=prior', but 'ls_mode={mode}'.")
    out["ls_mode"] = mode
    return out


def build_schedule_from_args(args: Mapping[str, Any], epochs: int) -> Any:
    """The ε schedule a run's plugin arguments describe (a :class:`yolo_ls.schedules.SmoothingSchedule`).

    Raises:
        PluginArgumentError: For a combination the schedule rejects (i.e. two_stage without ls_off_epoch).
    """
    from yolo_ls.schedules import build_schedule

    try:
        return build_schedule(
            args["ls_schedule"],
            args["label_smoothing"],
            int(epochs),
            final=args["ls_final"],
            warmup_epochs=args["ls_warmup_epochs"],
            step_size=args["ls_step_size"],
            gamma=args["ls_gamma"],
            off_epoch=args["ls_off_epoch"],
            eps_max=args["ls_max"],
            gain=args["ls_auto_gain"],
        )
    except (TypeError, ValueError) as e:
        raise PluginArgumentError(str(e)) from None


def check_num_classes(args: Mapping[str, Any], nc: int) -> None:
    """Checks that need the dataset's number of classes: the prior's length and K >= 2 for ``exclusive``.

    Raises:
        PluginArgumentError: Naming the argument and the dataset's class count.
    """
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
