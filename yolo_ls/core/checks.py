"""Argument checks: each normalises a value or raises a :class:`PluginArgumentError` that names the argument, the
value and what is allowed. The argument table (:mod:`yolo_ls.core.args`) is built from them; the schedules check their
own arguments with the same objects, so each range is written once."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path
from typing import Any


class PluginArgumentError(ValueError):
    """A yolo-ls argument has a value outside what it allows."""


def _invalid(name: str, value: Any, allowed: str, hint: str = "") -> PluginArgumentError:
    """The error for a bad value: the value as given (a string quoted, with its type), then what is allowed."""
    if isinstance(value, str):
        shown = f"{name}={value!r} (a string)"
    else:
        text = str(value)
        text = text if len(text) <= 40 else f"{text[:20]}…{text[-8:]} ({len(text)} characters)"
        plain = value is None or isinstance(value, (bool, int, float))
        shown = f"'{name}={text}'" + ("" if plain else f" (a {type(value).__name__})")
    return PluginArgumentError(f"{shown} is an invalid value. Valid '{name}' values are {allowed}.{hint}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _isfinite(value: Any) -> bool:
    """``math.isfinite`` that answers False for an int too large for a float (``10**400``) instead of raising."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _scalar(value: Any) -> Any:
    """numpy / torch 0-d scalars as Python numbers (``label_smoothing=np.float32(0.1)`` is a float)."""
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0 and not isinstance(value, bool):
        return value.item()
    return value


# ------------------------------------------------------------------------------------------------------ checks
# Each check states its range once: the same object validates a value, words the error and writes the `allowed`
# column of the argument table (help, README). Nothing else in the package restates a range.
@dataclass(frozen=True)
class FloatRange:
    """A finite float between ``lo`` and ``hi``, each end closed or open."""

    lo: float
    hi: float
    lo_closed: bool = True
    hi_closed: bool = True
    example: float = 0.1
    optional: bool = False  # None allowed too

    @property
    def allowed(self) -> str:
        text = f"a float in {'[' if self.lo_closed else '('}{self.lo}, {self.hi}{']' if self.hi_closed else ')'}"
        return f"None or {text}" if self.optional else text

    def contains(self, value: float) -> bool:
        lo_ok = self.lo <= value if self.lo_closed else self.lo < value
        return lo_ok and (value <= self.hi if self.hi_closed else value < self.hi)

    def __call__(self, name: str, value: Any) -> float | None:
        value = _scalar(value)
        if value is None and self.optional:
            return None
        if not (_is_number(value) and _isfinite(value) and self.contains(value)):
            kind = {True: "inclusive", False: "exclusive"}
            ends = f"between {self.lo} ({kind[self.lo_closed]}) and {self.hi} ({kind[self.hi_closed]})"
            raise _invalid(name, value, f"{'None or ' if self.optional else ''}floats {ends}, i.e. {self.example}")
        return float(value)


@dataclass(frozen=True)
class NonNegative:
    """A finite number >= 0."""

    example: float = 2

    allowed = ">= 0"

    def __call__(self, name: str, value: Any) -> float:
        value = _scalar(value)
        if not _is_number(value) or not _isfinite(value) or value < 0:
            raise _invalid(name, value, f"finite numbers >= 0, i.e. {self.example}")
        return float(value)


@dataclass(frozen=True)
class IntRange:
    """An integer in ``[lo, hi]`` (``hi=None``: no upper bound); ``optional`` also allows None."""

    lo: int
    hi: int | None = None
    example: int = 10
    optional: bool = False

    @property
    def allowed(self) -> str:
        rng = f"an integer >= {self.lo}" if self.hi is None else f"an integer in [{self.lo}, {self.hi}]"
        return f"None or {rng}" if self.optional else rng

    def __call__(self, name: str, value: Any) -> int | None:
        value = _scalar(value)
        if value is None and self.optional:
            return None
        ok = _is_number(value) and _isfinite(value) and int(value) == value and value >= self.lo
        if not ok or (self.hi is not None and value > self.hi):
            rng = f"integers >= {self.lo}" if self.hi is None else f"integers in [{self.lo}, {self.hi}]"
            raise _invalid(name, value, f"{'None or ' if self.optional else ''}{rng}, i.e. {self.example}")
        return int(value)


@dataclass(frozen=True)
class Choice:
    """One of a fixed tuple of strings, with a "did you mean"; ``describe`` words the choices for the table."""

    options: tuple[str, ...]
    describe: str = ""
    also_callable: str = ""  # e.g. "fn(epoch: float, epochs: int) -> float": a callable is accepted too

    @property
    def allowed(self) -> str:
        text = self.describe or f"one of {', '.join(self.options)}"
        return f"{text}, or a callable {self.also_callable}" if self.also_callable else text

    def __call__(self, name: str, value: Any) -> Any:
        if self.also_callable and callable(value):
            return value
        if not isinstance(value, str) or value not in self.options:
            hint = get_close_matches(str(value), self.options, n=1)
            raise _invalid(name, value, f"one of {list(self.options)}", f" Did you mean '{hint[0]}'?" if hint else "")
        return value


@dataclass(frozen=True)
class Flag:
    """True or False."""

    allowed = "True or False"

    def __call__(self, name: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise _invalid(name, value, self.allowed)
        return value


@dataclass(frozen=True)
class ClassWeights:
    """None or a class distribution: non-negative finite weights with a positive sum, normalised here.

    Normalising by the largest weight first keeps huge weights (``[1e308] * K``) from overflowing the sum.
    """

    allowed = "None or a list of nc non-negative weights with a positive sum"

    def __call__(self, name: str, value: Any) -> list[float] | None:
        if value is None:
            return None
        if hasattr(value, "tolist"):
            value = value.tolist()
        example = f"{self.allowed}, i.e. [0.5, 0.3, 0.2]"
        if not isinstance(value, (list, tuple)) or len(value) < 2 or not all(_is_number(v) for v in value):
            raise _invalid(name, value, example)
        if not all(_isfinite(v) for v in value):  # inf, NaN or an int too large for a float
            raise _invalid(name, value, example)
        weights = [float(v) for v in value]
        top = max(weights) if all(_isfinite(w) and w >= 0 for w in weights) else -1.0
        if top <= 0:
            raise _invalid(name, value, example)
        scaled = [w / top for w in weights]  # each in [0, 1]: the sum cannot overflow
        total = math.fsum(scaled)
        return [w / total for w in scaled]


def _matrix_rows(name: str, value: Any, example: str) -> list[list[float]]:
    """A square nested list of non-negative finite numbers, each row with a positive sum, rows normalised to sum 1."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    rows = list(value) if isinstance(value, (list, tuple)) else None
    if not rows or len(rows) < 2 or not all(isinstance(r, (list, tuple)) and len(r) == len(rows) for r in rows):
        raise _invalid(name, value, example)
    out = []
    for r in rows:
        if not all(_is_number(_scalar(v)) and _isfinite(_scalar(v)) and _scalar(v) >= 0 for v in r):
            raise _invalid(name, value, example)
        top = max(float(_scalar(v)) for v in r)
        if top <= 0:
            raise _invalid(name, value, f"{example} (row {len(out)} sums to 0)")
        scaled = [float(_scalar(v)) / top for v in r]
        total = math.fsum(scaled)
        out.append([v / total for v in scaled])
    return out


def read_matrix_csv(path: str | Path) -> tuple[list[str], list[list[float]]]:
    """A K×K class matrix CSV: a header row (one corner cell, then K class names), then K rows ``name,v1,...,vK``.

    Returns:
        (class names, rows as written). The row names must equal the header's, in the same order.

    Raises:
        ValueError: For a file that is not such a table.
    """
    import csv

    with open(path, newline="", encoding="utf-8") as f:
        table = [r for r in csv.reader(f) if any(c.strip() for c in r)]
    if len(table) < 3:
        raise ValueError(f"{path} must hold a header row of class names and one row per class")
    names = [c.strip() for c in table[0][1:]]
    rows, index = [], []
    for r in table[1:]:
        if len(r) != len(names) + 1:
            raise ValueError(f"{path}: row {r[:1]} has {len(r) - 1} values, the header names {len(names)} classes")
        index.append(r[0].strip())
        try:
            rows.append([float(c) for c in r[1:]])
        except ValueError:
            raise ValueError(f"{path}: row {r[0]!r} holds a value that is not a number") from None
    if index != names:
        raise ValueError(f"{path}: the row names {index} must equal the header's class names {names}, in order")
    return names, rows


@dataclass(frozen=True)
class ClassMatrix:
    """None, a K×K nested list (row y: where ε goes for true class y), or the path of a CSV of one with class names.

    A list comes back row-normalised; a CSV path comes back as the path (its class names are checked against the
    dataset's once they are known, :func:`load_class_matrix`), after the file has been read and checked here.
    """

    allowed = "None, a KxK nested list of non-negative weights (rows normalised), or a CSV path with class names"

    def __call__(self, name: str, value: Any) -> list[list[float]] | str | None:
        if value is None:
            return None
        example = f"{self.allowed}, i.e. [[0.1, 0.9], [0.5, 0.5]]"
        if isinstance(value, (str, Path)):
            if not Path(value).is_file():
                raise _invalid(name, value, example, f" No file '{value}' found.")
            try:
                names, rows = read_matrix_csv(value)
            except (OSError, ValueError) as e:
                raise _invalid(name, value, example, f" {e}") from None
            _matrix_rows(name, rows, example)
            return str(value)
        return _matrix_rows(name, value, example)


def load_class_matrix(value: Any) -> tuple[list[list[float]], list[str] | None]:
    """The row-normalised matrix of a checked ``ls_matrix`` value, and its class names (None for a nested list)."""
    if isinstance(value, (str, Path)):
        names, rows = read_matrix_csv(value)
        return _matrix_rows("ls_matrix", rows, ClassMatrix.allowed), names
    return _matrix_rows("ls_matrix", value, ClassMatrix.allowed), None


# The ranges that more than one argument (or a schedule and the table) share.
EPSILON = FloatRange(0.0, 1.0, hi_closed=False, example=0.1)  # a smoothing ε
# ε with ls_negative=True (uniform only, Wei et al. 2022): label_smoothing and ls_final take this range instead.
SIGNED_EPSILON = FloatRange(-1.0, 1.0, hi_closed=False, example=-0.1)
DECAY = FloatRange(0.0, 1.0, lo_closed=False, example=0.5)  # a decay factor that never makes ε grow
WARMUP_EPOCHS = NonNegative()
STEP_SIZE = IntRange(1)
AUTO_GAIN = FloatRange(0.0, 1.0, lo_closed=False, example=0.5)


def epsilon_check(negative: bool = False) -> Callable[[str, Any], Any]:
    """The check of an ε (``label_smoothing``, ``ls_final``): ``[0, 1)``, or ``[-1, 1)`` with ls_negative=True."""
    return SIGNED_EPSILON if negative else EPSILON
