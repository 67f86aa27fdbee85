"""Which epoch, iteration or trial is "best": Ultralytics' fitness, or a calibration metric (lower is better).

Used by ``best_by`` (:func:`best_step`, decided as training goes) and ``tune_objective`` (:func:`objective_scores`,
:func:`pick_best`, :func:`ray_metric`). ``fitness_tol`` makes an objective "the lowest <metric> among the candidates
whose fitness is within ``fitness_tol`` of the best fitness" (absolute; None: no constraint).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from yolo_ls.calibration import registry

CLASSIFY_OBJECTIVES = ("fitness", *registry.objectives("classify"))
DETECT_OBJECTIVES = ("fitness", *registry.objectives("detect"))
OBJECTIVES = tuple(dict.fromkeys((*CLASSIFY_OBJECTIVES, *DETECT_OBJECTIVES)))
OBJECTIVES_HELP = (
    f"fitness (Ultralytics' own), or a calibration metric to minimise: {', '.join(CLASSIFY_OBJECTIVES[1:])} "
    f"(classify) or {', '.join(DETECT_OBJECTIVES[1:])} (detect, segment, pose, obb)"
)


def task_objectives(task: str) -> tuple[str, ...]:
    """The objectives that apply to a task."""
    return CLASSIFY_OBJECTIVES if task == "classify" else DETECT_OBJECTIVES


def metric_key(objective: str) -> str:
    """The metrics key an objective reads (``nll`` -> ``calib/nll``); ``fitness`` reads ``fitness``."""
    return "fitness" if objective == "fitness" else registry.calib_key(objective)


def _finite(x: Any) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def objective_scores(fitness: Sequence[float], values: Sequence[float], objective: str, tol: float | None
                     ) -> list[float]:
    """One score per candidate, higher is better, that ranks candidates as the objective does.

    ``objective="fitness"``: the fitness itself. Otherwise candidates whose fitness is within ``tol`` of the best
    fitness (all of them with ``tol=None``) rank by their value, lowest first; a NaN value ranks below every finite
    one; candidates outside the tolerance rank below all those inside it, by fitness. Every score is finite.

    Args:
        fitness: Each candidate's fitness (non-finite fitness: never eligible).
        values: Each candidate's objective value (ignored for ``fitness``).
        objective: One of :data:`OBJECTIVES`.
        tol: The fitness tolerance, or None.
    """
    f = [float(x) if _finite(x) else -math.inf for x in fitness]
    if objective == "fitness":
        low = min((x for x in f if x > -math.inf), default=0.0)
        return [x if x > -math.inf else low - 1.0 for x in f]
    top = max(f, default=-math.inf)
    eligible = [x > -math.inf and (tol is None or x >= top - tol) for x in f]
    scores = [-float(v) if e and _finite(v) else math.nan for v, e in zip(values, eligible)]
    finite = [s for s in scores if not math.isnan(s)]
    floor = min(finite, default=0.0) - 1.0  # below every eligible finite value
    f_low = min((x for x in f if x > -math.inf), default=top)
    out = []
    for s, e, x in zip(scores, eligible, f):
        if e:
            out.append(floor if math.isnan(s) else s)
        elif x > -math.inf:  # outside the tolerance: below every eligible one, by fitness
            out.append(floor - 1.0 - (top - x))
        else:  # no finite fitness: last
            out.append(floor - 2.0 - ((top - f_low) if top > -math.inf else 0.0))
    return out


def pick_best(fitness: Sequence[float], values: Sequence[float], objective: str, tol: float | None) -> int:
    """Index of the best candidate by the objective (the first one on ties), from the whole history.

    Raises:
        ValueError: For an empty history.
    """
    scores = objective_scores(fitness, values, objective, tol)
    if not scores:
        raise ValueError("pick_best needs at least one candidate")
    return max(range(len(scores)), key=lambda i: (scores[i], -i))


def new_best_state() -> dict[str, Any]:
    """The state of :func:`best_step` before the first epoch."""
    return {"epoch": -1, "value": math.inf, "fitness": None, "top_fitness": -math.inf}


def best_step(state: Mapping[str, Any], epoch: int, fitness: float, value: float, tol: float | None
              ) -> tuple[dict[str, Any], bool]:
    """``best_by`` as training goes: is this epoch the new ``best.pt``?

    An epoch is eligible when its fitness is within ``tol`` of the best fitness so far, this epoch included (always,
    with ``tol=None``). It becomes ``best.pt`` when it is eligible and either its value is lower than that of the
    epoch held as ``best.pt`` (ties keep the earlier epoch), or a jump in fitness has left the held epoch outside the
    tolerance (the epoch that made the jump is then eligible itself). A NaN value counts as +inf; an epoch with a
    non-finite fitness is skipped. The first epoch with a finite fitness is always taken, so best.pt exists.

    Args:
        state: The previous state (:func:`new_best_state` at the start; JSON-safe, kept in the checkpoint).
        epoch: This epoch (0-based).
        fitness: This epoch's fitness.
        value: This epoch's objective value.
        tol: The fitness tolerance, or None.

    Returns:
        (new state, whether this epoch is the new best).
    """
    state = dict(state)
    if not _finite(fitness):
        return state, False
    fitness = float(fitness)
    value = float(value) if _finite(value) else math.inf
    state["top_fitness"] = top = max(float(state["top_fitness"]), fitness)

    def eligible(f: float) -> bool:
        return tol is None or f >= top - tol

    held = state["epoch"] >= 0
    chosen = eligible(fitness) and (not held or not eligible(float(state["fitness"])) or value < float(state["value"]))
    if chosen:
        state.update(epoch=int(epoch), value=value, fitness=fitness)
    return state, chosen


def ray_metric(objective: str, tol: float | None, fitness_metric: str) -> tuple[str, str]:
    """Ray Tune's ``(metric, mode)`` for an objective.

    ``fitness``, or any objective with a ``tol``: Ultralytics' ``fitness_metric``, maximised (the tolerance pick is
    made over the trials at the end). A plain calibration objective: ``calib/<name>``, minimised.
    """
    if objective == "fitness" or tol is not None:
        return fitness_metric, "max"
    return metric_key(objective), "min"
