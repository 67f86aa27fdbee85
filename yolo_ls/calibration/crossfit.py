"""Cross-fitting: score a calibration map only on rows it was not fitted on.

:func:`assign_folds` puts every group (an image: all its boxes) in one of ``k`` folds; :func:`cross_fit` fits a map on
all folds but one, applies and scores it on that one, for each fold in turn.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from yolo_ls.calibration.scaling import LogitMap

__all__ = ("CrossFit", "assign_folds", "cross_fit")


def _key(group: Hashable, seed: int) -> bytes:
    return hashlib.sha256(f"{seed}\0{group!r}".encode()).digest()


def assign_folds(groups: Sequence[Hashable], k: int = 5, seed: int = 0) -> Tensor:
    """``(N,)`` long fold id in ``[0, k)`` per sample; all samples of one group share a fold.

    The groups are shuffled by a hash of ``(seed, repr(group))`` (so the folds depend on the seed and the set of groups,
    not on their order or on Python's hash seed) and dealt round-robin: the folds hold ``G // k`` or ``G // k + 1``
    groups. ``groups`` may be a sequence, a 1-d tensor or array (image ids). ``k >= 2``; fewer groups than ``k`` raises
    ``ValueError``.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise ValueError(f"k must be an int >= 2, got {k!r}")
    if hasattr(groups, "tolist"):  # a tensor or array: group by value (its elements hash by identity)
        groups = groups.tolist()
    index: dict[Hashable, int] = {}
    ids = [index.setdefault(g, len(index)) for g in groups]
    if len(index) < k:
        raise ValueError(f"{k} folds need at least {k} groups (images), found {len(index)}")
    order = sorted(index, key=lambda g: (_key(g, seed), index[g]))
    fold_of = torch.empty(len(index), dtype=torch.long)
    for rank, g in enumerate(order):
        fold_of[index[g]] = rank % k
    return fold_of[torch.tensor(ids, dtype=torch.long)]


@dataclass
class CrossFit:
    """Scores of each held-out fold, their mean and sample sd (NaN for one fold), the out-of-fold outputs, the maps."""

    per_fold: list[dict[str, float]]
    mean: dict[str, float]
    sd: dict[str, float]
    out_of_fold: Tensor
    maps: list[LogitMap]


def cross_fit(folds: Tensor, fit: Callable[[Tensor], LogitMap], apply: Callable[[LogitMap, Tensor], Tensor],
              score: Callable[[Tensor, Tensor], dict[str, float]]) -> CrossFit:
    """For each fold ``f`` (ascending): ``m = fit(idx_fit)``, ``out = apply(m, idx_f)``, ``score(out, idx_f)``.

    ``idx_fit`` and ``idx_f`` are ``(n,)`` long index tensors (ascending) of the rows outside and inside ``f``, into the
    caller's arrays. ``apply`` returns one output row per index (``(n, ...)``); ``out_of_fold`` gathers them in row
    order, so every row is mapped by the map fitted without it.
    """
    if folds.ndim != 1 or folds.dtype.is_floating_point or folds.dtype == torch.bool:
        raise ValueError(f"folds must be a (N,) integer tensor, got {folds.dtype} of shape {tuple(folds.shape)}")
    folds = folds.detach().to("cpu", torch.long)
    if folds.numel() == 0:
        raise ValueError("folds is empty: nothing to cross-fit")
    per_fold, maps, out_of_fold = [], [], None
    for f in folds.unique(sorted=True).tolist():
        inside = folds == f
        idx_fit, idx_score = (~inside).nonzero().squeeze(1), inside.nonzero().squeeze(1)
        m = fit(idx_fit)
        out = apply(m, idx_score)
        if out.shape[:1] != idx_score.shape:
            raise ValueError(f"apply must return one row per index: {len(idx_score)} rows expected for fold {f}, "
                             f"got shape {tuple(out.shape)}")
        if out_of_fold is None:
            out_of_fold = out.new_empty((len(folds), *out.shape[1:]))
        out_of_fold[idx_score.to(out.device)] = out
        scores = {key: float(v) for key, v in score(out, idx_score).items()}
        if per_fold and scores.keys() != per_fold[0].keys():
            raise ValueError(f"score returned keys {sorted(scores)} for fold {f}, {sorted(per_fold[0])} before")
        per_fold.append(scores)
        maps.append(m)
    mean, sd = {}, {}
    for key in per_fold[0]:
        values = [s[key] for s in per_fold]
        mean[key] = math.fsum(values) / len(values)
        sd[key] = (math.sqrt(math.fsum((v - mean[key]) ** 2 for v in values) / (len(values) - 1))
                   if len(values) > 1 else math.nan)
    return CrossFit(per_fold=per_fold, mean=mean, sd=sd, out_of_fold=out_of_fold, maps=maps)
