"""precision_threshold / precision_at against a brute force over every candidate threshold."""

from __future__ import annotations

import math

import pytest
import torch

from yolo_ls.calibration.threshold import precision_at, precision_threshold


def brute(conf: list[float], correct: list[bool], n_gt: int, target: float) -> dict:
    best = None
    for t in sorted(set(conf)):
        kept = [c for c, _ in zip(conf, correct) if c >= t]
        tp = sum(ok for c, ok in zip(conf, correct) if c >= t)
        if tp / len(kept) >= target:
            best = {"threshold": t, "precision": tp / len(kept), "recall": tp / n_gt, "boxes": len(kept),
                    "confidence": sum(kept) / len(kept)}
            break  # ascending: the first that reaches the target is the lowest
    return best


@pytest.mark.parametrize("seed", range(20))
def test_lowest_threshold_matches_brute_force(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    n = int(torch.randint(1, 60, (1,), generator=g))
    conf = (torch.randint(0, 20, (n,), generator=g) / 20).tolist()  # ties on purpose
    correct = (torch.rand(n, generator=g) < torch.tensor(conf) * 0.9 + 0.05).tolist()
    target = float(torch.rand(1, generator=g)) * 0.8 + 0.1
    got = precision_threshold(torch.tensor(conf), torch.tensor(correct), n + 3, target)
    want = brute(conf, correct, n + 3, target)
    if want is None:
        assert math.isnan(got["threshold"]) and got["boxes"] == 0
    else:
        assert got["threshold"] == pytest.approx(want["threshold"])
        assert got["precision"] == pytest.approx(want["precision"])
        assert got["recall"] == pytest.approx(want["recall"])
        assert got["boxes"] == want["boxes"]
        assert got["confidence"] == pytest.approx(want["confidence"])


def test_hand_computed() -> None:
    conf = torch.tensor([0.95, 0.9, 0.8, 0.7, 0.6])
    correct = torch.tensor([True, True, False, True, False])
    # thresholds 0.95: 1/1, 0.9: 2/2, 0.8: 2/3, 0.7: 3/4, 0.6: 3/5
    assert precision_threshold(conf, correct, 4, 0.75) == {"threshold": pytest.approx(0.7), "precision": 0.75,
                                                           "recall": 0.75, "boxes": 4,
                                                           "confidence": pytest.approx((0.95 + 0.9 + 0.8 + 0.7) / 4)}
    assert precision_threshold(conf, correct, 4, 1.0)["boxes"] == 2
    at = precision_at(conf, correct, 4, 0.8)
    assert at["boxes"] == 3 and at["precision"] == pytest.approx(2 / 3) and at["recall"] == 0.5
    assert math.isnan(precision_at(conf, correct, 4, 0.99)["precision"])
