"""The sweep grammar of ``yolo-ls compare``: comma lists, their Cartesian product, the hard-target collapse, names.

``label_smoothing`` and every scalar plugin argument (``ls_mode``, ``ls_schedule``, ``ls_final``, ``ls_margin``,
``ls_negative``, ``calib_bins``, ...) take a comma list (``"0,0.1"`` from the CLI, a list or tuple from Python). The
variants are the Cartesian product of the lists, each checked with the plugin's own checks before anything trains.

Variants that would train the same model are one variant. The main case is hard targets: a variant whose ε is 0 at
every epoch it trains (a pure schedule evaluated over the run; ``ls_schedule=auto`` is never hard, it may raise ε) is
the stock hard-target loss whatever its other smoothing arguments (``label_smoothing`` and every ``ls_*`` key) say, so
those are reset to their defaults and all such variants collapse into one, named ``eps0``. ``ls_schedule=linear`` with
``label_smoothing=0 ls_final=0.1`` is not hard (it ramps up) and stays a variant of its own. The calibration arguments
(``calib_bins``, ...) change what is measured, so they never collapse. Variants whose arguments resolve to the same
training otherwise (``ls_mode=auto`` and ``ls_mode=uniform`` for classify) collapse too.

Names encode ε and the varied keys, ``ls_`` dropped: ``eps0.1_mode-margin``, ``eps0_bins-10``; they are unique and
filesystem-safe. Pure functions only: nothing here trains or writes.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from yolo_ls.core.args import (
    ARG_TABLE,
    SIGNED_ARGS,
    SIGNED_EPSILON,
    ClassMatrix,
    ClassWeights,
    IntRange,
    PluginArgumentError,
    build_schedule_from_args,
    resolve_plugin_args,
)

# Keys that take a comma list: label_smoothing and every plugin argument with a scalar value (a list for ls_prior or
# ls_matrix is one value: a class distribution or a matrix).
SWEEP_KEYS: tuple[str, ...] = tuple(k for k, a in ARG_TABLE.items() if not isinstance(a.check, (ClassWeights,
                                                                                               ClassMatrix)))
# The smoothing arguments: nothing of them reaches the loss when ε is 0 at every epoch.
SMOOTHING_KEYS: frozenset[str] = frozenset({"label_smoothing", *(k for k in ARG_TABLE if k.startswith("ls_"))})
SEED_CHECK = IntRange(0, example=0)


@dataclass(frozen=True)
class Variant:
    """One training setting of a sweep (every seed of it trains the same arguments).

    Attributes:
        name: Folder name, i.e. ``eps0.1_mode-margin``.
        label: Display name, i.e. ``ε=0.1 mode=margin``.
        eps: ``label_smoothing`` (0.0 for the hard-target variant).
        plugin: The other plugin arguments the variant trains with (as given, hard: smoothing keys removed).
        values: The varied keys and this variant's value of each (None: not used, the smoothing keys of ``hard``).
        hard: True when ε is 0 at every epoch: the stock hard-target loss.
        same_as: Names of the product's combinations that collapsed into this variant.
    """

    name: str
    label: str
    eps: float
    plugin: dict[str, Any]
    values: dict[str, Any]
    hard: bool
    same_as: tuple[str, ...] = field(default=())


def _is_list(value: Any) -> bool:
    return isinstance(value, (list, tuple)) or (isinstance(value, str) and "," in value)


def split_values(key: str, value: Any) -> list[Any]:
    """The values one argument takes in a sweep: a comma string or a list/tuple is split, anything else is one value.

    The items of a string are parsed as Ultralytics parses a CLI value (``"0.1"`` -> 0.1, ``"True"`` -> True).
    """
    from ultralytics.cfg import smart_value

    if key not in SWEEP_KEYS or callable(value):
        return [value]
    if isinstance(value, str):
        return [smart_value(v.strip()) for v in value.split(",")]
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def check_value(key: str, value: Any, negative: bool = False) -> Any:
    """One value of a sweep list, checked (and normalised) by the plugin's own check for ``key``."""
    if key in SIGNED_ARGS and negative:
        return SIGNED_EPSILON(key, value)
    return ARG_TABLE[key](value)


def sweep_lists(given: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Every plugin argument of ``given`` as its list of distinct, checked values (``label_smoothing`` first).

    Raises:
        PluginArgumentError: For a value the argument does not allow, naming the argument and the value.
    """
    lists = {k: split_values(k, v) for k, v in given.items()}
    negative = any(v is True for v in lists.get("ls_negative", []))
    out: dict[str, list[Any]] = {}
    for key in sorted(lists, key=lambda k: k != "label_smoothing"):
        seen: dict[str, Any] = {}
        for v in lists[key]:
            checked = check_value(key, v, negative)
            seen.setdefault(json.dumps(checked, default=repr, sort_keys=True), checked)
        out[key] = list(seen.values())
    return out


def parse_seeds(seeds: Any) -> list[int]:
    """``0,1,2`` (string, list or tuple) or one integer -> the distinct seeds, in order, each an integer >= 0."""
    from ultralytics.cfg import smart_value

    if isinstance(seeds, str):
        items = [smart_value(v.strip()) for v in seeds.split(",")]
    else:
        items = list(seeds) if isinstance(seeds, (list, tuple)) else [seeds]
    out: list[int] = []
    for v in items:
        s = SEED_CHECK("seeds", v)
        if s not in out:
            out.append(s)
    return out


def is_hard(resolved: Mapping[str, Any], epochs: int) -> bool:
    """True when the run's ε is 0 at every point where it is read: every epoch (every quarter epoch with
    ``ls_per_iter``). ``ls_schedule=auto`` is never hard (the controller may raise ε from 0)."""
    if resolved["ls_schedule"] == "auto":
        return False
    schedule = build_schedule_from_args(resolved, epochs)
    steps = 4 if resolved.get("ls_per_iter") else 1
    return all(schedule(i / steps) == 0 for i in range(max(1, int(epochs)) * steps))


def format_value(value: Any) -> str:
    """A value as it appears in a folder name: floats shortest-exact (``0.1``, ``0.1000001``), the rest as text, any
    character outside ``[A-Za-z0-9.+-]`` dropped."""
    if isinstance(value, float):
        short = f"{value:g}"
        text = short if float(short) == value else repr(value)
    else:
        text = str(value)
    return re.sub(r"[^A-Za-z0-9.+-]", "", text)


def alias(key: str) -> str:
    """The short name of a key in variant names and labels: ``eps`` for label_smoothing, ``ls_`` dropped."""
    return "eps" if key == "label_smoothing" else key.removeprefix("ls_")


def variant_name(eps: float, values: Mapping[str, Any] | None = None) -> str:
    """Folder name of a variant: ``eps<ε>`` then ``_<key>-<value>`` per other varied key (``eps0.1_mode-margin``);
    unique per distinct float (``eps0.1000001``)."""
    parts = [f"eps{format_value(float(eps))}"]
    parts += [f"{alias(k)}-{format_value(v)}" for k, v in (values or {}).items()
              if k != "label_smoothing" and v is not None]
    return "_".join(parts)


def variant_label(eps: float, values: Mapping[str, Any] | None = None, hard: bool = False) -> str:
    """Display name: ``ε=0.1 mode=margin``, ``ε=0 (hard)``."""
    smoothing_varied = any(k in SMOOTHING_KEYS and k != "label_smoothing" for k in (values or {}))
    parts = [f"ε={float(eps):g}" + (" (hard)" if hard and smoothing_varied else "")]
    parts += [f"{alias(k)}={v:g}" if isinstance(v, float) else f"{alias(k)}={v}" for k, v in (values or {}).items()
              if k != "label_smoothing" and v is not None]
    return " ".join(parts)


def plain_value(value: Any) -> Any:
    """A JSON-stable form of an argument value (a callable by its import path, tuples as lists)."""
    if callable(value):
        return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', type(value).__name__)}"
    return json.loads(json.dumps(value, default=repr))


def _canonical(eps: float, plugin: Mapping[str, Any], task: str) -> str:
    resolved = resolve_plugin_args({**plugin, "label_smoothing": eps}, task)
    return json.dumps({k: plain_value(v) for k, v in sorted(resolved.items())}, sort_keys=True)


def expand_variants(given: Mapping[str, Any], task: str, epochs: int) -> list[Variant]:
    """The variants of a sweep: the Cartesian product of the argument lists, checked, hard targets collapsed.

    Args:
        given: ``label_smoothing`` and the other plugin arguments, each one value or a list (see :func:`split_values`).
        task: The Ultralytics task (``ls_mode`` resolves per task).
        epochs: The run length (a schedule is evaluated over it to decide whether a variant is hard).

    Raises:
        PluginArgumentError: For a bad value, or a combination the plugin refuses (naming the combination).
    """
    lists = sweep_lists(given)
    varied = [k for k, vs in lists.items() if len(vs) > 1]
    keys = list(lists)
    out: dict[str, Variant] = {}
    for combo in itertools.product(*(lists[k] for k in keys)):
        args = dict(zip(keys, combo))
        eps = float(args.pop("label_smoothing", 0.0))
        values = {k: (eps if k == "label_smoothing" else args[k]) for k in varied}
        asked = variant_name(eps, values)
        try:
            resolved = resolve_plugin_args({**args, "label_smoothing": eps}, task)
            hard = is_hard(resolved, epochs)
        except PluginArgumentError as e:
            where = f" (variant {asked})" if varied else ""
            raise PluginArgumentError(f"{e}{where}") from None
        if hard:
            eps, args = 0.0, {k: v for k, v in args.items() if k not in SMOOTHING_KEYS}
            values = {k: (0.0 if k == "label_smoothing" else None if k in SMOOTHING_KEYS else v)
                      for k, v in values.items()}
        key = _canonical(eps, args, task)
        if key in out:
            first = out[key]
            if asked != first.name and asked not in first.same_as:
                out[key] = Variant(**{**first.__dict__, "same_as": (*first.same_as, asked)})
            continue
        name = variant_name(eps, values)
        taken = {v.name for v in out.values()}
        while name in taken:  # distinct trainings with equal names cannot come from distinct values; guard anyway
            name += "_"
        same = (asked,) if asked != name else ()
        out[key] = Variant(name, variant_label(eps, values, hard), eps, args, values, hard, same)
    return list(out.values())


def describe_collapse(variants: Sequence[Variant]) -> list[str]:
    """One line per variant that stands for several combinations of the product (what collapsed into what)."""
    lines = []
    for v in variants:
        if v.same_as:
            why = "ε is 0 at every epoch, so the other smoothing arguments do not reach the loss" if v.hard else \
                "the arguments resolve to the same training"
            lines.append(f"{', '.join(v.same_as)} -> {v.name} ({why}): trained once")
    return lines


def finite(value: Any) -> bool:
    """A real number (not None, not NaN)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
