"""Tests for yolo_ls.calibration.crossfit: folds keep groups whole, and no row is scored by a map fitted on it."""

from __future__ import annotations

import math
import random
import statistics

import pytest
import torch
import torch.nn.functional as F

from yolo_ls.calibration import CrossFit, LogitMap, assign_folds, cross_fit, fit_softmax_map


def _groups(n_groups: int = 37, seed: int = 0) -> list[str]:
    """Image names, each repeated 1..6 times (its boxes), in a shuffled order."""
    rng = random.Random(seed)
    rows = [f"img{i:03d}.jpg" for i in range(n_groups) for _ in range(rng.randint(1, 6))]
    rng.shuffle(rows)
    return rows


def test_assign_folds_keeps_groups_whole_and_balanced():
    groups = _groups()
    folds = assign_folds(groups, k=5)
    assert folds.shape == (len(groups),) and folds.dtype == torch.long
    fold_of = {}
    for g, f in zip(groups, folds.tolist()):
        assert fold_of.setdefault(g, f) == f  # every row of an image in the image's fold
    per_fold = [sum(1 for f in fold_of.values() if f == i) for i in range(5)]
    assert sorted(per_fold) == [7, 7, 7, 8, 8]  # 37 images dealt over 5 folds


def test_assign_folds_is_deterministic_and_ignores_the_order():
    groups = _groups()
    folds = assign_folds(groups, k=4, seed=3)
    assert torch.equal(folds, assign_folds(list(groups), k=4, seed=3))
    order = list(range(len(groups)))
    random.Random(1).shuffle(order)
    shuffled = assign_folds([groups[i] for i in order], k=4, seed=3)
    assert torch.equal(shuffled, folds[order])  # an image's fold does not depend on where its rows are
    assert not torch.equal(assign_folds(groups, k=4, seed=4), folds)  # the seed matters
    assert torch.equal(assign_folds([1, 2, 2, (3, "a")], k=2), assign_folds([1, 2, 2, (3, "a")], k=2))
    ids = [int(g[3:6]) for g in groups]  # image ids as a tensor: grouped by value, as the list of ints
    assert torch.equal(assign_folds(torch.tensor(ids), k=4), assign_folds(ids, k=4))


def test_assign_folds_refuses_too_few_groups():
    with pytest.raises(ValueError, match="5 folds need at least 5 groups \\(images\\), found 3"):
        assign_folds(["a", "b", "b", "c"], k=5)
    with pytest.raises(ValueError, match="k must be an int >= 2, got 1"):
        assign_folds(["a", "b"], k=1)


def test_cross_fit_never_scores_a_row_with_a_map_fitted_on_it():
    """A spy: records the rows each fit, apply and score call saw, and stamps each output row with the fit's id."""
    groups = _groups(20)
    n = len(groups)
    folds = assign_folds(groups, k=5, seed=1)
    fitted, applied, scored = [], [], []

    def fit(idx):
        fitted.append(idx.clone())
        return LogitMap("vector", torch.ones(2), torch.tensor([float(len(fitted) - 1), 0.0]))  # bias[0] = fit id

    def apply(m, idx):
        applied.append((int(m.bias[0]), idx.clone()))
        return torch.stack([idx.double(), m.bias[0].expand(len(idx))], 1)  # (row, fit id)

    def score(out, idx):
        scored.append(idx.clone())
        return {"rows": float(len(idx))}

    res = cross_fit(folds, fit, apply, score)
    assert isinstance(res, CrossFit) and len(fitted) == len(applied) == len(scored) == len(res.maps) == 5
    everything = set(range(n))
    for i, (fit_idx, (fit_id, app_idx), score_idx) in enumerate(zip(fitted, applied, scored)):
        assert fit_id == i and torch.equal(app_idx, score_idx)
        assert fit_idx.dtype == app_idx.dtype == torch.long
        assert set(fit_idx.tolist()).isdisjoint(app_idx.tolist())  # no fitted row is applied or scored
        assert set(fit_idx.tolist()) | set(app_idx.tolist()) == everything
        assert set(folds[app_idx].tolist()) == {i} and i not in set(folds[fit_idx].tolist())
        fit_groups, score_groups = {groups[r] for r in fit_idx.tolist()}, {groups[r] for r in app_idx.tolist()}
        assert fit_groups.isdisjoint(score_groups)  # an image is never on both sides
    all_scored = torch.cat(scored).sort().values
    assert torch.equal(all_scored, torch.arange(n))  # every row scored exactly once
    assert torch.equal(res.out_of_fold[:, 0], torch.arange(n, dtype=torch.float64))  # in row order
    for r in range(n):  # the map that produced row r was fitted without r
        assert r not in set(fitted[int(res.out_of_fold[r, 1])].tolist())
    assert res.per_fold == [{"rows": float((folds == i).sum())} for i in range(5)]


def test_cross_fit_mean_and_sample_sd():
    folds = torch.tensor([0, 1, 2, 0, 1, 2, 3])
    values = {0: 1.0, 1: 2.0, 2: 4.0, 3: 7.0}

    def score(out, idx):
        f = int(folds[idx[0]])
        return {"a": values[f], "b": -values[f]}

    res = cross_fit(folds, lambda idx: LogitMap.identity(1), lambda m, idx: torch.zeros(len(idx), 1), score)
    assert res.mean["a"] == pytest.approx(statistics.mean(values.values()))
    assert res.sd["a"] == pytest.approx(statistics.stdev(values.values()))  # n - 1 in the denominator
    assert res.sd["b"] == res.sd["a"] and res.mean["b"] == -res.mean["a"]
    one = cross_fit(torch.zeros(3, dtype=torch.long), lambda idx: LogitMap.identity(1),
                    lambda m, idx: torch.zeros(len(idx)), lambda out, idx: {"a": 1.0})
    assert one.mean == {"a": 1.0} and math.isnan(one.sd["a"])


def test_cross_fit_checks_its_inputs():
    ident = LogitMap.identity(2)
    with pytest.raises(ValueError, match="integer tensor"):
        cross_fit(torch.zeros(3), lambda idx: ident, lambda m, idx: idx, lambda out, idx: {})
    with pytest.raises(ValueError, match="one row per index"):
        cross_fit(torch.tensor([0, 1]), lambda idx: ident, lambda m, idx: torch.zeros(5), lambda out, idx: {})
    keys = iter([{"a": 1.0}, {"b": 1.0}])
    with pytest.raises(ValueError, match="keys"):
        cross_fit(torch.tensor([0, 1]), lambda idx: ident, lambda m, idx: idx, lambda out, idx: next(keys))


def test_cross_fit_with_real_temperature_fits():
    """End to end: out-of-fold temperature scaling of overconfident logits lowers the NLL on every fold."""
    g = torch.Generator().manual_seed(0)
    n, k = 400, 5
    y = torch.randint(0, k, (n,), generator=g)
    z = torch.randn(n, k, generator=g, dtype=torch.float64)
    z[torch.arange(n), y] += 1.5
    z = 4 * z
    folds = assign_folds(list(range(n)), k=4)
    res = cross_fit(folds, lambda idx: fit_softmax_map(z[idx], y[idx]), lambda m, idx: m(z[idx]),
                    lambda out, idx: {"nll": float(F.cross_entropy(out, y[idx])),
                                      "nll_raw": float(F.cross_entropy(z[idx], y[idx]))})
    assert all(s["nll"] < s["nll_raw"] for s in res.per_fold)
    assert res.out_of_fold.shape == (n, k) and res.sd["nll"] > 0
    assert all(m.method == "temperature" and m.params()["temperature"] > 1 for m in res.maps)
