"""Label-smoothing schedules: ε as a pure function of the fractional epoch and the total epochs.

A schedule keeps no state: the same ``(e, E)`` always gives the same ε, so a resumed run reproduces it.

* ``e = epoch + iteration / iters_per_epoch`` (or the integer epoch with per-epoch updates); epochs are 0-based.
* The schedule proper spans ``span = (E - 1) - warmup_epochs`` epochs, so the last epoch ``E - 1`` lands on the end
  value; with ``span <= 0`` it sits at its end value.
* Warmup: for ``e < warmup_epochs``, ``ε(e) = start * e / warmup_epochs``; the schedule proper then starts at ``t = 0``.

Values are never clamped: parameters are validated, and a callable returning a value outside ``[0, 1)`` raises
``ValueError``. ``ls_schedule=auto`` lives in ``yolo_ls.core.auto``.
"""

from __future__ import annotations

import difflib
import math
import warnings
from collections.abc import Callable

from yolo_ls.core.checks import DECAY, STEP_SIZE, WARMUP_EPOCHS, _scalar, epsilon_check

PURE_SCHEDULES = ("constant", "linear", "cosine", "step", "exp", "two_stage")  # functions of the epoch alone

__all__ = [
    "SCHEDULES",
    "CallableSchedule",
    "ConstantSchedule",
    "CosineSchedule",
    "ExpSchedule",
    "LinearSchedule",
    "SmoothingSchedule",
    "StepSchedule",
    "TwoStageSchedule",
    "build_schedule",
    "fractional_epoch",
]

SCHEDULES = PURE_SCHEDULES  # the names build_schedule knows (ls_schedule=auto is yolo_ls.core.auto.AutoSchedule)


def _check_epoch(value: object, name: str = "epoch") -> float:
    """A position in training: a finite real number (the argument ranges themselves are the table's checks)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


def _lerp(a: float, b: float, w: float) -> float:
    """Interpolate ``(1 - w) * a + w * b``; exact at ``w = 0`` and ``w = 1`` and never outside ``[a, b]``."""
    v = (1.0 - w) * a + w * b
    return min(max(v, min(a, b)), max(a, b))


class SmoothingSchedule:
    """Base class: ε as a pure function of the fractional epoch.

    Subclasses implement :meth:`_value`; this class handles warmup and the common validation.

    Args:
        eps: Starting smoothing value ε (the value the schedule starts from once warmup ends), in ``[0, 1)``.
        epochs: Total number of training epochs ``E`` (>= 1). Epochs are 0-based: ``0 .. E-1``.
        warmup_epochs: Length of the linear warmup from 0 to the starting value, in epochs; ``0 <= w < epochs``.

    Raises:
        TypeError: If an argument is not a number of the right kind.
        ValueError: If an argument is out of range.
    """

    def __init__(self, eps: float, epochs: int, warmup_epochs: float = 0.0, *, negative: bool = False) -> None:
        if isinstance(epochs, bool) or not isinstance(epochs, int):
            raise TypeError(f"epochs must be an int, got {epochs!r} ({type(epochs).__name__})")
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        self.negative = bool(negative)  # built for an ls_negative=True run: ε and final may be in [-1, 0) too
        self.eps = epsilon_check(self.negative)("label_smoothing", eps)
        self.epochs = epochs
        self.warmup_epochs = WARMUP_EPOCHS("ls_warmup_epochs", warmup_epochs)
        if not self.warmup_epochs < epochs:
            raise ValueError(f"ls_warmup_epochs must be >= 0 and < epochs ({epochs}), got {self.warmup_epochs!r}")

    @property
    def span(self) -> float:
        """Length in epochs of the schedule proper: ``(epochs - 1) - warmup_epochs`` (may be <= 0)."""
        return (self.epochs - 1) - self.warmup_epochs

    def _value(self, t: float, span: float) -> float:
        """Value of the schedule proper.

        Args:
            t: Epochs elapsed since warmup ended (``>= 0``).
            span: Length of the schedule proper, see :attr:`span`. ``span <= 0`` means "already at the end value".

        Returns:
            The smoothing value ε at ``t``.
        """
        raise NotImplementedError

    def __call__(self, epoch: float) -> float:
        """Return ε at the fractional epoch ``epoch``.

        Args:
            epoch: Fractional, 0-based epoch (``epoch + iteration / iters_per_epoch``), ``>= 0``. Values past the last
                epoch are allowed and hold the schedule's end behaviour.

        Returns:
            The smoothing value, in ``[0, 1)``.

        Raises:
            ValueError: If ``epoch`` is negative or not finite.
        """
        epoch = _check_epoch(epoch)
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch!r}")
        span = self.span
        if epoch < self.warmup_epochs:
            return self._value(0.0, span) * epoch / self.warmup_epochs
        return self._value(epoch - self.warmup_epochs, span)

    def plan(self, points_per_epoch: int = 1) -> list[tuple[float, float]]:
        """Planned schedule over ``[0, epochs)``, for plotting or logging.

        Args:
            points_per_epoch: Samples per epoch (>= 1); the epochs sampled are ``k + j / points_per_epoch``, the same
                fractional epochs :func:`fractional_epoch` produces with ``iters_per_epoch = points_per_epoch``.

        Returns:
            ``epochs * points_per_epoch`` pairs ``(epoch, ε)``, starting at epoch 0.0.
        """
        if isinstance(points_per_epoch, bool) or not isinstance(points_per_epoch, int) or points_per_epoch < 1:
            raise ValueError(f"points_per_epoch must be an int >= 1, got {points_per_epoch!r}")
        out = []
        for k in range(self.epochs):
            for j in range(points_per_epoch):
                e = k + j / points_per_epoch
                out.append((e, self(e)))
        return out

    def _extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        extra = self._extra_repr()
        return (
            f"{type(self).__name__}(eps={self.eps}, epochs={self.epochs}, warmup_epochs={self.warmup_epochs}"
            f"{', ' + extra if extra else ''})"
        )


def _progress(t: float, span: float) -> float:
    """Fraction of the schedule proper completed, in ``[0, 1]``; 1 when there is no room (``span <= 0``)."""
    if span <= 0:
        return 1.0
    return min(max(t / span, 0.0), 1.0)


class ConstantSchedule(SmoothingSchedule):
    """Constant ε (after the optional warmup)."""

    def _value(self, t: float, span: float) -> float:
        return self.eps


class LinearSchedule(SmoothingSchedule):
    """Linear from ε to ``final`` over the schedule's span, then holds ``final``.

    With per-epoch updates the last epoch ``E - 1`` is exactly ``final``.

    Args:
        eps: Starting value, in ``[0, 1)``.
        epochs: Total epochs.
        final: End value, in ``[0, 1)`` (may be above ``eps`` for a ramp up).
        warmup_epochs: Warmup length in epochs.
    """

    def __init__(
        self, eps: float, epochs: int, final: float = 0.0, warmup_epochs: float = 0.0, *, negative: bool = False
    ) -> None:
        super().__init__(eps, epochs, warmup_epochs, negative=negative)
        self.final = epsilon_check(self.negative)("ls_final", final)

    def _value(self, t: float, span: float) -> float:
        return _lerp(self.eps, self.final, _progress(t, span))

    def _extra_repr(self) -> str:
        return f"final={self.final}"


class CosineSchedule(SmoothingSchedule):
    """Cosine from ε to ``final``: ``final + (ε - final) * ½(1 + cos(π·min(t/span, 1)))``, then holds ``final``.

    Args:
        eps: Starting value, in ``[0, 1)``.
        epochs: Total epochs.
        final: End value, in ``[0, 1)``.
        warmup_epochs: Warmup length in epochs.
    """

    def __init__(
        self, eps: float, epochs: int, final: float = 0.0, warmup_epochs: float = 0.0, *, negative: bool = False
    ) -> None:
        super().__init__(eps, epochs, warmup_epochs, negative=negative)
        self.final = epsilon_check(self.negative)("ls_final", final)

    def _value(self, t: float, span: float) -> float:
        w = 0.5 * (1.0 + math.cos(math.pi * _progress(t, span)))
        return _lerp(self.final, self.eps, w)

    def _extra_repr(self) -> str:
        return f"final={self.final}"


class StepSchedule(SmoothingSchedule):
    """Step decay: ``ε * gamma ** floor(t / step_size)``, ``t`` counted from the end of warmup.

    Args:
        eps: Starting value, in ``[0, 1)``.
        epochs: Total epochs.
        step_size: Epochs between decays, ``>= 1``.
        gamma: Multiplicative decay per step, in ``(0, 1]``.
        warmup_epochs: Warmup length in epochs.
    """

    def __init__(
        self, eps: float, epochs: int, step_size: int = 1, gamma: float = 0.5, warmup_epochs: float = 0.0, *,
        negative: bool = False,
    ) -> None:
        super().__init__(eps, epochs, warmup_epochs, negative=negative)
        self.step_size = STEP_SIZE("ls_step_size", step_size)
        self.gamma = DECAY("ls_gamma", gamma)

    def _value(self, t: float, span: float) -> float:
        return self.eps * self.gamma ** math.floor(t / self.step_size)

    def _extra_repr(self) -> str:
        return f"step_size={self.step_size}, gamma={self.gamma}"


class ExpSchedule(SmoothingSchedule):
    """Exponential approach towards ``final``: ``final + (ε - final) * gamma ** t``.

    Args:
        eps: Starting value, in ``[0, 1)``.
        epochs: Total epochs.
        gamma: Per-epoch factor applied to the distance from ``final``, in ``(0, 1]``.
        final: Asymptote, in ``[0, 1)``.
        warmup_epochs: Warmup length in epochs.
    """

    def __init__(
        self, eps: float, epochs: int, gamma: float = 0.5, final: float = 0.0, warmup_epochs: float = 0.0, *,
        negative: bool = False,
    ) -> None:
        super().__init__(eps, epochs, warmup_epochs, negative=negative)
        self.gamma = DECAY("ls_gamma", gamma)
        self.final = epsilon_check(self.negative)("ls_final", final)

    def _value(self, t: float, span: float) -> float:
        return _lerp(self.final, self.eps, self.gamma**t)

    def _extra_repr(self) -> str:
        return f"gamma={self.gamma}, final={self.final}"


class TwoStageSchedule(SmoothingSchedule):
    """ε while ``epoch < off_epoch``, then exactly 0.

    ``off_epoch`` is an absolute, 0-based epoch: ``off_epoch=3`` smooths epochs 0, 1, 2 (fractional ``e < 3.0``).
    ``off_epoch >= epochs`` only warns (``UserWarning``): smoothing never switches off in that run.

    Args:
        eps: Value before the switch, in ``[0, 1)``.
        epochs: Total epochs.
        off_epoch: First epoch without smoothing, ``> 0`` and ``> warmup_epochs``.
        warmup_epochs: Warmup length in epochs.

    Raises:
        ValueError: If ``off_epoch <= 0`` or ``off_epoch <= warmup_epochs``.
    """

    def __init__(
        self, eps: float, epochs: int, off_epoch: float, warmup_epochs: float = 0.0, *, negative: bool = False
    ) -> None:
        super().__init__(eps, epochs, warmup_epochs, negative=negative)
        self.off_epoch = _check_epoch(off_epoch, "ls_off_epoch")
        if self.off_epoch <= 0:
            raise ValueError(f"ls_off_epoch must be > 0 (first 0-based epoch without smoothing), got {off_epoch!r}")
        if self.off_epoch <= self.warmup_epochs:
            raise ValueError(
                f"ls_off_epoch ({off_epoch!r}) must be greater than ls_warmup_epochs ({warmup_epochs!r}): "
                "smoothing would switch off before warmup finishes"
            )
        if self.off_epoch >= epochs:
            warnings.warn(
                f"ls_off_epoch={off_epoch!r} >= epochs={epochs}: the last epoch is {epochs - 1}, so label smoothing "
                "will never switch off in this run",
                UserWarning,
                stacklevel=2,
            )

    def __call__(self, epoch: float) -> float:
        epoch = _check_epoch(epoch)
        if epoch >= self.off_epoch:
            return 0.0
        return super().__call__(epoch)

    def _value(self, t: float, span: float) -> float:
        return self.eps

    def _extra_repr(self) -> str:
        return f"off_epoch={self.off_epoch}"


class CallableSchedule(SmoothingSchedule):
    """User-defined schedule ``fn(epoch, epochs) -> ε``.

    Warmup does not apply (implement it inside ``fn``). A returned value that is not a finite number in ``[0, 1)``
    raises ``ValueError``. ``fn`` should be pure so that a resumed run reproduces the schedule.

    Args:
        fn: Callable ``(epoch: float, epochs: int) -> float``.
        epochs: Total epochs.
        eps: Configured ε, kept for reference (``repr``/logging) only; it does not affect the values.

    Raises:
        TypeError: If ``fn`` is not callable.
    """

    def __init__(self, fn: Callable[[float, int], float], epochs: int, eps: float = 0.0) -> None:
        if not callable(fn):
            raise TypeError(f"ls_schedule must be a schedule name or a callable, got {fn!r}")
        super().__init__(eps, epochs, 0.0)
        self.fn = fn

    def __call__(self, epoch: float) -> float:
        epoch = _check_epoch(epoch)
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch!r}")
        v = _scalar(self.fn(epoch, self.epochs))  # torch.tensor(0.1) and np.float32(0.1) are numbers too
        where = f"at epoch {epoch!r} (epochs={self.epochs})"
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"ls_schedule callable returned {v!r} {where}; it must return a float in [0, 1)")
        v = float(v)
        if not math.isfinite(v) or not 0.0 <= v < 1.0:
            raise ValueError(f"ls_schedule callable returned {v!r} {where}; it must return a finite float in [0, 1)")
        return v

    def __repr__(self) -> str:
        return f"CallableSchedule(fn={self.fn!r}, epochs={self.epochs})"


def build_schedule(
    schedule: str | Callable[[float, int], float],
    eps: float,
    epochs: int,
    *,
    final: float = 0.0,
    warmup_epochs: float = 0.0,
    step_size: float = 1,
    gamma: float = 0.5,
    off_epoch: float | None = None,
    negative: bool = False,
) -> SmoothingSchedule:
    """Build a schedule from config values: call it with a fractional epoch to get ε.

    Args:
        schedule: One of :data:`SCHEDULES` (case-insensitive) or a callable ``fn(epoch, epochs) -> ε``.
        eps: Starting smoothing value (``label_smoothing``), in ``[0, 1)``.
        epochs: Total training epochs.
        final: End value for ``linear``/``cosine``/``exp`` (``ls_final``), in ``[0, 1)``.
        warmup_epochs: Linear warmup from 0 (``ls_warmup_epochs``); ``0 <= w < epochs``. Must be 0 for callables.
        step_size: Epochs between decays for ``step`` (``ls_step_size``), ``>= 1``.
        gamma: Decay factor for ``step``/``exp`` (``ls_gamma``), in ``(0, 1]``.
        off_epoch: First epoch without smoothing for ``two_stage`` (``ls_off_epoch``), required there; ``>= epochs``
            only warns (smoothing never switches off).
        negative: For an ``ls_negative=True`` run: ``eps`` and ``final`` may be in ``[-1, 1)`` (whether a run may be
            negative is decided by ``yolo_ls.core.args.resolve_plugin_args``).

    Raises:
        ValueError: Unknown schedule name (with a "did you mean" hint), missing ``off_epoch`` for ``two_stage``,
            warmup with a callable, or an argument out of range.
        TypeError: ``schedule`` is neither a string nor a callable, or an argument is not a number.
    """
    if callable(schedule):
        return _callable_schedule(schedule, eps, epochs, warmup_epochs)
    if not isinstance(schedule, str):
        raise TypeError(f"ls_schedule must be one of {SCHEDULES} or a callable, got {schedule!r}")
    name = schedule.strip().lower()
    warm = {"warmup_epochs": warmup_epochs, "negative": negative}
    if name == "constant":
        return ConstantSchedule(eps, epochs, warmup_epochs, negative=negative)
    if name == "linear":
        return LinearSchedule(eps, epochs, final=final, **warm)
    if name == "cosine":
        return CosineSchedule(eps, epochs, final=final, **warm)
    if name == "step":
        return StepSchedule(eps, epochs, step_size=step_size, gamma=gamma, **warm)
    if name == "exp":
        return ExpSchedule(eps, epochs, gamma=gamma, final=final, **warm)
    if name == "auto":
        raise ValueError("ls_schedule='auto' is steered by measured calibration, not a function of the epoch: "
                         "use yolo_ls.core.auto.AutoSchedule (or yolo_ls.core.args.build_schedule_from_args)")
    if name == "two_stage":
        if off_epoch is None:
            raise ValueError("ls_schedule='two_stage' needs the epoch at which smoothing switches off: "
                             "set ls_off_epoch")
        return TwoStageSchedule(eps, epochs, off_epoch=off_epoch, **warm)
    close = difflib.get_close_matches(name, SCHEDULES, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"Unknown ls_schedule {schedule!r}; expected one of {', '.join(SCHEDULES)} or a callable.{hint}")


def _callable_schedule(fn: Callable[[float, int], float], eps: float, epochs: int, warmup_epochs: float
                       ) -> CallableSchedule:
    """A callable ``ls_schedule``; a warmup is refused (the callable implements its own)."""
    if warmup_epochs:
        raise ValueError(
            f"ls_warmup_epochs={warmup_epochs!r} does not apply to a callable ls_schedule; "
            "implement the warmup inside the callable and set ls_warmup_epochs=0"
        )
    return CallableSchedule(fn, epochs, eps=eps)


def fractional_epoch(epoch: int, iteration: int, iters_per_epoch: int, per_iter: bool) -> float:
    """Position in training as a fractional epoch.

    Args:
        epoch: 0-based epoch index.
        iteration: 0-based batch index within the epoch.
        iters_per_epoch: Batches per epoch (>= 1).
        per_iter: Whether ε is updated every iteration; if False the integer epoch is returned.

    Returns:
        ``epoch + iteration / iters_per_epoch`` if ``per_iter``, else ``float(epoch)``.

    Raises:
        ValueError: If ``per_iter`` and ``iters_per_epoch < 1`` or ``iteration`` is outside ``[0, iters_per_epoch)``.
    """
    if not per_iter:
        return float(epoch)
    if iters_per_epoch < 1:
        raise ValueError(f"iters_per_epoch must be >= 1, got {iters_per_epoch!r}")
    if not 0 <= iteration < iters_per_epoch:
        raise ValueError(f"iteration must be in [0, {iters_per_epoch}), got {iteration!r}")
    return epoch + iteration / iters_per_epoch
