"""ece_ts / d_ece_ts: temperature scaling scored on held-out samples only (cross-fitted), against known temperatures."""

from __future__ import annotations

import math

import pytest
import torch

from yolo_ls.calibration import heldout
from yolo_ls.calibration.metrics import binary_ece, ece


def _overconfident(n: int = 3000, k: int = 10, t: float = 3.0, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels drawn from softmax(z); the model reports softmax(t·z): over-confident by a temperature t."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, k, generator=g, dtype=torch.float64)
    y = torch.multinomial(torch.softmax(z, 1), 1, generator=g).squeeze(1)
    return torch.softmax(t * z, 1), y


def test_ece_ts_recovers_the_temperature_and_removes_the_error() -> None:
    probs, y = _overconfident()
    out = heldout.held_out_temperature(probs, y)
    assert out["temperature"] == pytest.approx(3.0, rel=0.1)
    assert out["ece_ts"] < 0.25 * float(ece(probs, y)) and out["nll_ts"] < float(-probs[range(len(y)), y].log().mean())


def test_every_sample_is_scored_by_a_temperature_fitted_without_it(monkeypatch) -> None:
    """Spy on the cross-fit: the rows a fitted temperature scales never include a row it was fitted on."""
    probs, y = _overconfident(n=400)
    fitted, scored = {}, []
    real = heldout.cross_fit

    def spy(folds, fit, apply, score):
        def fit_spy(idx):
            m = fit(idx)
            fitted[id(m)] = set(idx.tolist())
            return m

        def apply_spy(m, idx):
            assert not set(idx.tolist()) & fitted[id(m)]
            scored.extend(idx.tolist())
            return apply(m, idx)

        return real(folds, fit_spy, apply_spy, score)

    monkeypatch.setattr(heldout, "cross_fit", spy)
    heldout.held_out_temperature(probs, y)
    assert sorted(scored) == list(range(400)) and len(fitted) == heldout.HELD_OUT_FOLDS


def test_too_few_samples_give_nan_not_a_number() -> None:
    probs, y = _overconfident(n=3)
    out = heldout.held_out_temperature(probs, y)
    assert math.isnan(out["ece_ts"]) and math.isnan(out["nll_ts"])


def test_one_class_gives_nan() -> None:
    """A softmax over one class is always 1: nothing to scale, NaN rather than an error or a faked number."""
    out = heldout.held_out_temperature(torch.ones(30, 1), torch.zeros(30, dtype=torch.long))
    assert all(math.isnan(v) for v in out.values())


def test_d_ece_ts_on_over_confident_boxes() -> None:
    """Box scores sigmoid(3·z) for boxes correct with probability sigmoid(z): T ≈ 3; held-out d_ece far below raw."""
    g = torch.Generator().manual_seed(1)
    n = 4000
    z = torch.randn(n, generator=g, dtype=torch.float64) * 2
    correct = torch.rand(n, generator=g, dtype=torch.float64) < torch.sigmoid(z)
    cls = torch.randint(0, 5, (n,), generator=g)
    image = torch.arange(n) // 4  # four boxes per image, an image's boxes in one fold
    conf = torch.sigmoid(3 * z)
    out = heldout.held_out_box_temperature(conf, correct, cls, image, 5)
    assert out["d_temperature"] == pytest.approx(3.0, rel=0.1)
    assert out["d_ece_ts"] < 0.3 * float(binary_ece(conf, correct))


def test_d_ece_ts_is_nan_when_it_cannot_be_fitted() -> None:
    conf = torch.full((40,), 0.9)
    cls = torch.zeros(40, dtype=torch.long)
    every_right = heldout.held_out_box_temperature(conf, torch.ones(40, dtype=torch.bool), cls, torch.arange(40), 1)
    few_images = heldout.held_out_box_temperature(conf, torch.arange(40) % 2 == 0, cls, torch.arange(40) % 3, 1)
    assert math.isnan(every_right["d_ece_ts"]) and math.isnan(few_images["d_ece_ts"])
