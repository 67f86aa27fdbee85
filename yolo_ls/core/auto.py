"""``ls_schedule=auto``: ε steered by measured calibration.

:func:`auto_update` and :func:`gain_factor` are the update rule; :class:`AutoSchedule` holds the controller's state
(plain data, saved in the checkpoint). The trainer drives it through ``yolo_ls.engine.auto_controller``, reading
calibration on the val set (``ls_auto_split=val``) or a seeded train holdout (``train_holdout``, classify).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from yolo_ls.core.checks import AUTO_GAIN, EPSILON, PluginArgumentError

AUTO_SPLITS = ("val", "train_holdout")  # ls_auto_split: where the calibration that steers ε is measured


# ------------------------------------------------------------------------------------------------- the rule
def gain_factor(mode: str, num_classes: int, prior: Sequence[float] | None = None,
                frequencies: Sequence[float] | None = None,
                matrix: Sequence[Sequence[float]] | None = None) -> float:
    """How much the smoothed target's true-class confidence drops per unit of ε, inverted: Δε = gap · factor.

    The smoothed target gives the true class ``1 - ε/factor``:

    - classify ``uniform`` and detect ``fg``: ``1 - ε(K-1)/K``, so the factor is ``K/(K-1)`` (1 when K = 1);
    - ``exclusive``: ``1 - ε``, factor 1;
    - ``prior`` q: ``1 - ε(1 - q_y)``, averaged over the training labels y ~ p: factor ``1 / (1 - Σ_y p_y q_y)``
      (p = q when the training frequencies are not given);
    - detect ``all``: the binary target 1 becomes ``1 - ε/2``, factor 2; ``positive``: ``(1 - ε)·t``, factor 1.
    - ``matrix`` M (classify and detect) and ``online`` S: ``1 - ε(1 - M_yy)``, averaged over y ~ p: factor
      ``1 / (1 - Σ_y p_y M_yy)`` (p uniform when the frequencies are not given; rows normalised).
    - ``margin`` sets no target confidence and is refused. A diagonal that leaves ε no effect gets factor 1.

    Raises:
        ValueError: For a mode this rule does not know.
    """
    k = int(num_classes)
    if mode in ("uniform", "fg"):
        return k / (k - 1) if k > 1 else 1.0
    if mode in ("exclusive", "positive"):
        return 1.0
    if mode == "all":
        return 2.0
    if mode == "prior":
        if prior is None:
            raise ValueError("gain_factor(mode='prior') needs the prior")
        q = [float(v) for v in prior]
        total = math.fsum(q)
        q = [v / total for v in q]
        p = q if frequencies is None else [float(v) / math.fsum(frequencies) for v in frequencies]
        kept = 1.0 - math.fsum(a * b for a, b in zip(p, q))  # E_y[1 - q_y]
        return 1.0 / kept if kept > 0 else 1.0
    if mode in ("matrix", "online"):
        if matrix is None:
            raise ValueError(f"gain_factor(mode='{mode}') needs the matrix")
        rows = [[float(v) for v in r] for r in matrix]
        diag = [r[i] / math.fsum(r) for i, r in enumerate(rows)]
        p = [1.0 / k] * k if frequencies is None else [float(v) / math.fsum(frequencies) for v in frequencies]
        kept = 1.0 - math.fsum(a * b for a, b in zip(p, diag))  # E_y[1 - M_yy]
        return 1.0 / kept if kept > 1e-12 else 1.0
    raise ValueError(f"gain_factor: unknown ls_mode '{mode}'")


def auto_update(eps: float, confidence: float, accuracy: float, factor: float, gain: float = 0.5,
                eps_max: float = 0.3) -> float:
    """One step of ``ls_schedule=auto``: move ε so the smoothed target confidence follows the measured accuracy.

    ``ε ← clip(ε + gain·(confidence - accuracy)·factor, 0, eps_max)`` (see :func:`gain_factor`): over-confidence
    raises ε, under-confidence lowers it; a missing reading (NaN) keeps ε.
    """
    if not (math.isfinite(confidence) and math.isfinite(accuracy)):
        return eps
    return min(max(eps + gain * (confidence - accuracy) * factor, 0.0), eps_max)


# ---------------------------------------------------------------------------------------------- the state
class AutoSchedule:
    """The ``ls_schedule=auto`` controller state: calling it returns the ε in effect (the epoch does not matter).

    Args:
        eps: Starting ε (``label_smoothing``), within ``[0, eps_max]``.
        eps_max: Upper bound (``ls_max``).
        gain: Damping (``ls_auto_gain``).
        factor: The mode's :func:`gain_factor`; set by :meth:`AutoController.setup` once the classes are known.
    """

    def __init__(self, eps: float, eps_max: float = 0.3, gain: float = 0.5, factor: float = 1.0) -> None:
        self.eps = EPSILON("label_smoothing", eps)
        self.eps_max = EPSILON("ls_max", eps_max)
        if self.eps > self.eps_max:
            raise PluginArgumentError(
                f"'label_smoothing={eps}' is above 'ls_max={eps_max}': ls_schedule=auto starts inside [0, ls_max]."
            )
        self.gain = AUTO_GAIN("ls_auto_gain", gain)
        self.factor = float(factor)
        self.current = self.eps
        self.history: list[dict[str, float]] = []

    def __call__(self, epoch: float) -> float:
        """The ε in effect now."""
        return self.current

    def update(self, epoch: int, confidence: float, accuracy: float) -> float:
        """Feed the calibration measured after ``epoch`` (0-based); returns the ε for the next epoch."""
        new = auto_update(self.current, confidence, accuracy, self.factor, self.gain, self.eps_max)
        self.history.append({"epoch": epoch, "confidence": confidence, "accuracy": accuracy, "eps": self.current,
                             "next_eps": new})
        self.current = new
        return new

    def plan(self, points_per_epoch: int = 1) -> list[tuple[float, float]]:
        """No plan exists ahead of time: the values applied so far, and the current ε for the next epoch."""
        pts = [(float(h["epoch"]), h["eps"]) for h in self.history]
        return [*pts, (float(len(self.history)), self.current)]

    def state_dict(self) -> dict[str, Any]:
        """Plain-data state for checkpoints."""
        return {"current": self.current, "history": list(self.history)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.current = float(state["current"])
        self.history = list(state.get("history", []))

    def __repr__(self) -> str:
        return (f"AutoSchedule(current={self.current:.4g}, eps_max={self.eps_max}, gain={self.gain}, "
                f"factor={self.factor:.4g})")
