"""Tests for yolo_ls.calibration: metrics vs torchmetrics and hand arithmetic, accumulators, temperature scaling."""

from __future__ import annotations

import ast
import math
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torchmetrics.functional.classification import binary_calibration_error, multiclass_calibration_error

from tests.helpers import device_params
from yolo_ls.calibration import (
    ClassificationCalibration,
    DetectionCalibration,
    accuracy,
    ace,
    apply_temperature,
    binary_ece,
    binary_mce,
    brier,
    confidence,
    cw_ece,
    ece,
    entropy,
    fit_temperature,
    mce,
    nll,
    overconfidence,
    reliability_bins,
)
from yolo_ls.calibration.metrics import _bin_edges, _bin_index

CAL_DIR = Path(__file__).resolve().parents[1] / "yolo_ls" / "calibration"
KEYS = ("ece", "mce", "ace", "cw_ece", "brier", "nll", "accuracy", "confidence", "overconfidence", "entropy")
DEVICES = device_params()  # "cpu", and "cuda" (marked cuda, skipped without a GPU)


def random_probs(n: int, k: int, seed: int, scale: float = 3.0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    probs = (torch.randn(n, k, generator=g) * scale).softmax(1)
    labels = torch.randint(0, k, (n,), generator=g)
    return probs, labels


def f(t: torch.Tensor) -> float:
    assert t.ndim == 0, "metrics must return 0-d tensors"
    return float(t)


def one_shot(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> dict[str, float]:
    return {
        "ece": f(ece(probs, labels, n_bins)),
        "mce": f(mce(probs, labels, n_bins)),
        "ace": f(ace(probs, labels, n_bins)),
        "cw_ece": f(cw_ece(probs, labels, n_bins)),
        "brier": f(brier(probs, labels)),
        "nll": f(nll(probs, labels)),
        "accuracy": f(accuracy(probs, labels)),
        "confidence": f(confidence(probs)),
        "overconfidence": f(overconfidence(probs, labels)),
        "entropy": f(entropy(probs)),
    }


# ----------------------------------------------------------------------------------------------------------------------
# Agreement with torchmetrics
# ----------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("k", [2, 10])
@pytest.mark.parametrize("device", DEVICES)
def test_ece_mce_match_torchmetrics(seed: int, k: int, device: str) -> None:
    probs, labels = random_probs(500, k, seed)
    for n_bins in (15, 7):
        ref_l1 = multiclass_calibration_error(probs, labels, num_classes=k, n_bins=n_bins, norm="l1")
        ref_max = multiclass_calibration_error(probs, labels, num_classes=k, n_bins=n_bins, norm="max")
        p, y = probs.to(device), labels.to(device)
        assert f(ece(p, y, n_bins)) == pytest.approx(float(ref_l1), abs=1e-6)
        assert f(mce(p, y, n_bins)) == pytest.approx(float(ref_max), abs=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binary_ece_mce_match_torchmetrics(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    conf = torch.rand(400, generator=g)
    correct = torch.rand(400, generator=g) < conf**2  # overconfident
    ref_l1 = binary_calibration_error(conf, correct.long(), norm="l1")
    assert f(binary_ece(conf, correct)) == pytest.approx(float(ref_l1), abs=1e-6)
    ref_max = binary_calibration_error(conf, correct.long(), norm="max")
    assert f(binary_mce(conf, correct)) == pytest.approx(float(ref_max), abs=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_cw_ece_is_mean_of_per_class_binary_torchmetrics(seed: int) -> None:
    probs, labels = random_probs(300, 5, seed)
    ref = np.mean([float(binary_calibration_error(probs[:, c].contiguous(), (labels == c).long())) for c in range(5)])
    assert f(cw_ece(probs, labels)) == pytest.approx(ref, abs=1e-6)


def test_boundary_goes_to_right_bin_like_torchmetrics() -> None:
    # n_bins=4, edges 0, .25, .5, .75, 1 (exact in binary). conf 0.5 is an inner edge -> bin [.5, .75).
    # Samples: conf .5 correct (argmax of a tie is index 0 = label), conf .7 wrong.
    # Same bin [.5, .75): ECE = |acc_sum - conf_sum| / N = |1 - 1.2| / 2 = 0.1.
    # (Had 0.5 gone left: (|1 - .5| + |0 - .7|) / 2 = 0.6.)
    probs = torch.tensor([[0.5, 0.5], [0.7, 0.3]])
    labels = torch.tensor([0, 1])
    assert _bin_index(torch.tensor([0.0, 0.25, 0.5, 0.74, 0.75, 1.0]), 4).tolist() == [0, 1, 2, 2, 3, 3]
    assert f(ece(probs, labels, 4)) == pytest.approx(0.1, abs=1e-7)
    assert f(ece(probs, labels, 4)) == pytest.approx(float(multiclass_calibration_error(probs, labels, 2, 4)), abs=1e-7)


def test_confidence_one_goes_to_last_bin() -> None:
    # Deliberate deviation from torchmetrics, which gives conf == 1.0 a degenerate extra bin [1, 1]:
    # here 1.0 is clamped into the last bin [.75, 1] (n_bins=4).
    # conf 1.0 wrong, conf .8 correct, same bin: ECE = |1 - 1.8| / 2 = 0.4; MCE = 0.4.
    # torchmetrics: (|0 - 1| + |1 - .8|) / 2 = 0.6.
    probs = torch.tensor([[1.0, 0.0], [0.8, 0.2]])
    labels = torch.tensor([1, 0])
    assert f(ece(probs, labels, 4)) == pytest.approx(0.4, abs=1e-7)
    assert f(mce(probs, labels, 4)) == pytest.approx(0.4, abs=1e-7)
    assert float(multiclass_calibration_error(probs, labels, 2, 4)) == pytest.approx(0.6, abs=1e-6)


# ----------------------------------------------------------------------------------------------------------------------
# Hand-computed cases
# ----------------------------------------------------------------------------------------------------------------------
def test_ece_mce_hand_case_with_empty_bins() -> None:
    # n_bins=5, edges 0, .2, .4, .6, .8, 1.
    # rows: conf .9 correct, conf .85 wrong, conf .7 correct (class 1), conf .55 correct.
    # bin [.8, 1]: n=2, acc_sum 1, conf_sum 1.75 -> |1 - 1.75| = .75 (acc .5, conf .875, gap .375)
    # bin [.6, .8): n=1, |1 - .7| = .3;  bin [.4, .6): n=1, |1 - .55| = .45;  bins [0, .2), [.2, .4) empty.
    # ECE = (.75 + .3 + .45) / 4 = 0.375;  MCE = max(.375, .3, .45) = 0.45 (empty bins ignored).
    probs = torch.tensor([[0.9, 0.1], [0.85, 0.15], [0.3, 0.7], [0.55, 0.45]])
    labels = torch.tensor([0, 1, 1, 0])
    assert f(ece(probs, labels, 5)) == pytest.approx(0.375, abs=1e-6)
    assert f(mce(probs, labels, 5)) == pytest.approx(0.45, abs=1e-6)
    # accuracy 3/4, confidence (.9 + .85 + .7 + .55) / 4 = .75, overconfidence 0.
    assert f(accuracy(probs, labels)) == pytest.approx(0.75)
    assert f(confidence(probs)) == pytest.approx(0.75)
    assert f(overconfidence(probs, labels)) == pytest.approx(0.0, abs=1e-7)
    bins = reliability_bins(probs, labels, 5)
    assert bins["count"].tolist() == [0, 0, 1, 1, 2]
    assert np.isnan(bins["accuracy"][:2]).all() and np.isnan(bins["confidence"][:2]).all()
    np.testing.assert_allclose(bins["accuracy"][2:], [1.0, 1.0, 0.5])
    np.testing.assert_allclose(bins["confidence"][2:], [0.55, 0.7, 0.875], atol=1e-6)
    np.testing.assert_allclose(bins["edges"], [0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert bins["ece"] == pytest.approx(0.375, abs=1e-6) and bins["mce"] == pytest.approx(0.45, abs=1e-6)
    assert bins["n"] == 4


def test_all_correct_and_all_wrong() -> None:
    # n_bins=4: conf .9 -> [.75, 1], conf .7 -> [.5, .75).
    probs = torch.tensor([[0.9, 0.1], [0.3, 0.7]])
    right, wrong = torch.tensor([0, 1]), torch.tensor([1, 0])
    # all correct: ECE = (|1 - .9| + |1 - .7|) / 2 = 0.2, MCE = .3, overconfidence = .8 - 1 = -.2
    assert f(ece(probs, right, 4)) == pytest.approx(0.2, abs=1e-6)
    assert f(mce(probs, right, 4)) == pytest.approx(0.3, abs=1e-6)
    assert f(accuracy(probs, right)) == 1.0
    assert f(overconfidence(probs, right)) == pytest.approx(-0.2, abs=1e-6)
    # all wrong: ECE = (.9 + .7) / 2 = 0.8, MCE = .9, overconfidence = .8 - 0 = .8
    assert f(ece(probs, wrong, 4)) == pytest.approx(0.8, abs=1e-6)
    assert f(mce(probs, wrong, 4)) == pytest.approx(0.9, abs=1e-6)
    assert f(accuracy(probs, wrong)) == 0.0
    assert f(overconfidence(probs, wrong)) == pytest.approx(0.8, abs=1e-6)


def test_ace_hand_case() -> None:
    # top confidences (input order): .8 correct, .55 correct, .95 correct, .6 wrong.
    # sorted: .55 (1), .6 (0), .8 (1), .95 (1); rank r -> bin floor(r * 2 / 4): ranks 0,1 -> bin 0, ranks 2,3 -> bin 1.
    # bin 0: |1 - 1.15| = .15; bin 1: |2 - 1.75| = .25; ACE = (.15 + .25) / 4 = 0.1.
    # (Equal-width ECE with 2 bins puts all four in [.5, 1]: |3 - 2.9| / 4 = 0.025.)
    probs = torch.tensor([[0.8, 0.2], [0.45, 0.55], [0.05, 0.95], [0.6, 0.4]])
    labels = torch.tensor([0, 1, 1, 1])
    assert f(ace(probs, labels, 2)) == pytest.approx(0.1, abs=1e-6)
    assert f(ece(probs, labels, 2)) == pytest.approx(0.025, abs=1e-6)
    # N=3 < n_bins=15: ranks 0, 1, 2 -> bins 0, 5, 10 (one sample each, the rest empty):
    # ACE = mean |correct - conf| = (|1 - .55| + |0 - .6| + |1 - .8|) / 3 = 1.25 / 3.
    assert f(ace(probs[[1, 3, 0]], labels[[1, 3, 0]], 15)) == pytest.approx(1.25 / 3, abs=1e-6)


def test_cw_ece_hand_case() -> None:
    # n_bins=2, edges 0, .5, 1 (0.5 goes to the right bin); N=3, K=3, labels [0, 2, 2].
    # class 0: p [.6, .2, .1], y==0 [1, 0, 0]: bin0 {.2, .1}: |0 - .3| = .3; bin1 {.6}: |1 - .6| = .4 -> .7 / 3
    # class 1: p [.3, .5, .1], y==1 [0, 0, 0]: bin0 {.3, .1}: .4;          bin1 {.5}: .5           -> .9 / 3
    # class 2: p [.1, .3, .8], y==2 [0, 1, 1]: bin0 {.1, .3}: |1 - .4| = .6; bin1 {.8}: |1 - .8| = .2 -> .8 / 3
    # cw_ece = (.7 + .9 + .8) / 9 = 2.4 / 9
    probs = torch.tensor([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8]])
    labels = torch.tensor([0, 2, 2])
    assert f(cw_ece(probs, labels, 2)) == pytest.approx(2.4 / 9, abs=1e-6)


def test_brier_nll_entropy_hand_and_numpy() -> None:
    # brier: [.9, .1] y=0 -> .01 + .01 = .02; [.6, .4] y=1 -> .36 + .36 = .72; mean .37
    # nll: -(log .9 + log .4) / 2;  entropy: -(.9 log .9 + .1 log .1 + .6 log .6 + .4 log .4) / 2
    probs = torch.tensor([[0.9, 0.1], [0.6, 0.4]])
    labels = torch.tensor([0, 1])
    assert f(brier(probs, labels)) == pytest.approx(0.37, abs=1e-6)
    assert f(nll(probs, labels)) == pytest.approx(-(math.log(0.9) + math.log(0.4)) / 2, abs=1e-6)
    h = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1) + 0.6 * math.log(0.6) + 0.4 * math.log(0.4)) / 2
    assert f(entropy(probs)) == pytest.approx(h, abs=1e-6)

    probs, labels = random_probs(200, 7, seed=5)
    p, y = probs.double().numpy(), labels.numpy()
    onehot = np.eye(7)[y]
    assert f(brier(probs, labels)) == pytest.approx(np.mean(np.sum((p - onehot) ** 2, axis=1)), abs=1e-6)
    assert f(nll(probs, labels)) == pytest.approx(np.mean(-np.log(p[np.arange(200), y])), abs=1e-6)
    assert f(entropy(probs)) == pytest.approx(np.mean(-np.sum(p * np.log(p), axis=1)), abs=1e-6)
    assert f(accuracy(probs, labels)) == pytest.approx(np.mean(p.argmax(1) == y))
    assert f(confidence(probs)) == pytest.approx(np.mean(p.max(1)), abs=1e-6)


def test_nll_clamp_and_entropy_zero_prob() -> None:
    # p_y = 0 is clamped to eps: -log(1e-12) = 27.631...; 0 log 0 = 0 so entropy of a one-hot row is 0.
    probs = torch.tensor([[1.0, 0.0]])
    labels = torch.tensor([1])
    assert f(nll(probs, labels)) == pytest.approx(-math.log(1e-12), rel=1e-6)
    assert f(nll(probs, labels, eps=1e-3)) == pytest.approx(-math.log(1e-3), rel=1e-6)
    assert f(entropy(probs)) == 0.0
    assert f(brier(probs, labels)) == pytest.approx(2.0)


def test_empty_inputs_are_nan_never_zero() -> None:
    # No samples: nothing was measured, so every metric is NaN (a 0 would claim perfect calibration), and the bins
    # show count 0. Detection with nothing at or above calib_conf is the same: NaN metrics, d_count 0.
    probs, labels = torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)
    assert all(math.isnan(v) for v in one_shot(probs, labels).values())
    conf, correct = torch.zeros(0), torch.zeros(0, dtype=torch.bool)
    assert math.isnan(f(binary_ece(conf, correct))) and math.isnan(f(binary_mce(conf, correct)))
    bins = reliability_bins(conf, correct)
    assert bins["count"].tolist() == [0] * 15 and bins["n"] == 0
    assert np.isnan(bins["accuracy"]).all() and math.isnan(bins["ece"]) and math.isnan(bins["mce"])
    cal = ClassificationCalibration(3)
    assert tuple(cal.compute()) == KEYS and all(math.isnan(v) for v in cal.compute().values())
    cal.update(probs, labels)  # an empty batch changes nothing
    assert all(math.isnan(v) for v in cal.compute().values())
    assert cal.bins()["count"].sum() == 0 and math.isnan(cal.bins()["ece"])
    det = DetectionCalibration(2, conf_thres=0.5)
    det.update(torch.tensor([0.1, 0.49]), torch.tensor([True, False]), torch.tensor([0, 1]))  # all below calib_conf
    got = det.compute()
    assert got["d_count"] == 0 and isinstance(got["d_count"], int)
    assert all(math.isnan(got[k]) for k in ("d_ece", "d_mce", "d_accuracy", "d_confidence"))
    assert det.bins()["count"].tolist() == [0] * 15 and math.isnan(det.bins()["ece"])
    assert all(math.isnan(v) for v in det.per_class_d_ece().values())
    assert fit_temperature(torch.zeros(0, 3), labels) == 1.0  # the identity: no data, no rescaling
    # one sample makes them finite again
    cal.update(torch.tensor([[0.7, 0.2, 0.1]]), torch.tensor([0]))
    assert cal.compute()["ece"] == pytest.approx(0.3)


def test_shape_validation() -> None:
    with pytest.raises(ValueError):
        ece(torch.rand(4), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError):
        ece(torch.rand(4, 2), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError):
        ece(torch.rand(4, 2), torch.zeros(4, dtype=torch.long), n_bins=0)
    with pytest.raises(ValueError):
        binary_ece(torch.rand(4), torch.zeros(3, dtype=torch.bool))
    with pytest.raises(ValueError):
        ClassificationCalibration(3).update(torch.rand(4, 2), torch.zeros(4, dtype=torch.long))


@pytest.mark.parametrize("device", DEVICES)
def test_half_precision_and_float64_inputs(device: str) -> None:
    probs, labels = random_probs(300, 4, seed=9)
    ref = one_shot(probs, labels)
    got64 = one_shot(probs.double().to(device), labels.to(device))
    assert got64 == pytest.approx(ref, abs=1e-6)
    got16 = one_shot(probs.half().to(device), labels.to(device))  # runs; values close (half moves a few samples)
    assert got16["ece"] == pytest.approx(ref["ece"], abs=2e-2)


# ----------------------------------------------------------------------------------------------------------------------
# Accumulators
# ----------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [2, 10])
@pytest.mark.parametrize("device", DEVICES)
def test_classification_accumulator_equals_one_shot(k: int, device: str) -> None:
    probs, labels = random_probs(1000, k, seed=k)
    cal = ClassificationCalibration(num_classes=k)
    start = 0
    for size in (0, 1, 99, 400, 500):  # includes an empty batch
        cal.update(probs[start : start + size].to(device), labels[start : start + size].to(device))
        start += size
    assert cal.device.type == torch.device(device).type
    got = cal.compute()
    assert tuple(got) == KEYS and all(isinstance(v, float) for v in got.values())
    assert got == pytest.approx(one_shot(probs, labels), abs=1e-6)

    bins, ref_bins = cal.bins(), reliability_bins(probs, labels)
    assert bins.keys() == ref_bins.keys()
    for key in ("edges", "count", "confidence", "accuracy"):
        np.testing.assert_allclose(bins[key], ref_bins[key], atol=1e-9)
    assert bins["ece"] == pytest.approx(got["ece"], abs=1e-12)

    cal.reset()
    assert all(math.isnan(v) for v in cal.compute().values())


def test_classification_accumulator_never_stores_n_by_k() -> None:
    k = 50
    probs, labels = random_probs(2000, k, seed=0)
    cal = ClassificationCalibration(num_classes=k)
    for chunk in range(0, 2000, 500):
        cal.update(probs[chunk : chunk + 500], labels[chunk : chunk + 500])
    state = cal.state_dict()
    assert all(v.numel() <= max(k * cal.n_bins, 2000) for v in state.values())
    assert state["top_conf"].shape == (2000,) and state["top_correct"].shape == (2000,)


def test_classification_accumulator_merge_and_state_dict() -> None:
    probs, labels = random_probs(600, 5, seed=3)
    a, b, c = ClassificationCalibration(5), ClassificationCalibration(5), ClassificationCalibration(5)
    a.update(probs[:250], labels[:250])
    b.update(probs[250:], labels[250:])
    c.merge(a).merge(b.state_dict())  # merge accepts an accumulator or a state dict
    assert c.compute() == pytest.approx(one_shot(probs, labels), abs=1e-6)
    with pytest.raises(ValueError):
        c.merge(ClassificationCalibration(4))


def test_accumulator_device_and_dtype() -> None:
    cal = ClassificationCalibration(3)  # adopts the first input's device (CPU here)
    probs, labels = random_probs(50, 3, seed=1)
    cal.update(probs.half(), labels.int())
    assert cal.device == torch.device("cpu")
    assert cal.compute()["accuracy"] == pytest.approx(f(accuracy(probs, labels)), abs=1e-6)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    probs, labels = random_probs(1000, 10, seed=0)
    ref = one_shot(probs, labels)
    assert one_shot(probs.cuda(), labels.cuda()) == pytest.approx(ref, abs=1e-6)
    cal = ClassificationCalibration(10)
    for i in range(0, 1000, 300):
        cal.update(probs[i : i + 300].cuda(), labels[i : i + 300].cuda())
    assert cal.device.type == "cuda"
    assert cal.compute() == pytest.approx(ref, abs=1e-6)
    for t in (ece(probs.cuda(), labels.cuda()), ace(probs.cuda(), labels.cuda()), brier(probs.cuda(), labels.cuda())):
        assert t.device.type == "cuda"


def test_detection_threshold_and_per_class() -> None:
    # conf_thres=.25, n_bins=4 (edges .25 apart). The .1 prediction is dropped; .25 is kept (>=).
    # kept: .3 F (cls 1), .9 T (cls 1), .6 T (cls 2), .25 F (cls 0)
    # bins: [.25,.5): {.25 F, .3 F} |0 - .55| = .55; [.5,.75): {.6 T} .4; [.75,1]: {.9 T} .1
    # d_ece = (.55 + .4 + .1) / 4 = .2625; d_mce = max(.275, .4, .1) = .4
    # d_accuracy = 2/4, d_confidence = (.3 + .9 + .6 + .25) / 4 = .5125, d_count = 4
    # per class: 0: {.25 F} -> .25; 1: {.3 F} and {.9 T} in different bins -> (.3 + .1) / 2 = .2; 2: .4; 3: NaN
    conf = torch.tensor([0.1, 0.3, 0.9, 0.6, 0.25])
    correct = torch.tensor([True, False, True, True, False])
    cls = torch.tensor([0, 1, 1, 2, 0])
    det = DetectionCalibration(num_classes=4, n_bins=4, conf_thres=0.25)
    det.update(conf, correct, cls)
    got = det.compute()
    assert got == pytest.approx(
        {"d_ece": 0.2625, "d_mce": 0.4, "d_accuracy": 0.5, "d_confidence": 0.5125, "d_count": 4}, abs=1e-6
    )
    assert isinstance(got["d_count"], int)
    per = det.per_class_d_ece()
    assert set(per) == {0, 1, 2, 3}
    assert [per[0], per[1], per[2]] == pytest.approx([0.25, 0.2, 0.4], abs=1e-6)
    assert math.isnan(per[3])
    keep = conf >= 0.25
    assert got["d_ece"] == pytest.approx(f(binary_ece(conf[keep], correct[keep], 4)), abs=1e-7)
    assert det.bins()["count"].tolist() == [0, 2, 1, 1]


@pytest.mark.parametrize("device", DEVICES)
def test_detection_accumulator_batches_and_iou_matrix(device: str) -> None:
    g = torch.Generator().manual_seed(0)
    conf = torch.rand(900, generator=g)
    tp = torch.rand(900, 10, generator=g) < conf[:, None]  # Ultralytics-style (M, 10) IoU-threshold matrix
    cls = torch.randint(0, 3, (900,), generator=g)
    det = DetectionCalibration(num_classes=3, conf_thres=0.2)
    for i in range(0, 900, 200):
        det.update(conf[i : i + 200].to(device), tp[i : i + 200].to(device), cls[i : i + 200].to(device))
    assert det.device.type == torch.device(device).type
    keep = conf >= 0.2
    got = det.compute()
    assert got["d_ece"] == pytest.approx(f(binary_ece(conf[keep], tp[keep, 0])), abs=1e-6)
    assert got["d_mce"] == pytest.approx(f(binary_mce(conf[keep], tp[keep, 0])), abs=1e-6)
    assert got["d_count"] == int(keep.sum())
    assert got["d_accuracy"] == pytest.approx(float(tp[keep, 0].float().mean()), abs=1e-6)
    for c, v in det.per_class_d_ece().items():
        m = keep & (cls == c)
        assert v == pytest.approx(f(binary_ece(conf[m], tp[m, 0])), abs=1e-6)
    other = DetectionCalibration(num_classes=3, conf_thres=0.2).merge(det)
    assert other.compute() == pytest.approx(got)


# ----------------------------------------------------------------------------------------------------------------------
# Temperature scaling
# ----------------------------------------------------------------------------------------------------------------------
def _synthetic(n: int = 4000, k: int = 10, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """True logits z and labels sampled from softmax(z) (so z is calibrated by construction)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, k, generator=g) * 2
    labels = torch.multinomial(z.softmax(1), 1, generator=g).squeeze(1)
    return z, labels


def test_temperature_recovers_overconfidence() -> None:
    z, labels = _synthetic()
    logits = 3 * z  # overconfident model
    t = fit_temperature(logits, labels)
    assert t == pytest.approx(3.0, rel=0.1)
    before = f(ece(logits.softmax(1), labels))
    after = f(ece(apply_temperature(logits, t), labels))
    assert after < before
    # probabilities in, same answer (log p = logits - logsumexp, softmax is shift invariant)
    assert fit_temperature(logits.softmax(1), labels) == pytest.approx(t, rel=1e-3)
    assert fit_temperature(logits.softmax(1), labels, is_probs=True) == pytest.approx(t, rel=1e-3)
    d = z.double()  # float64, moderate logits: no probability underflows to the 1e-12 clamp
    torch.testing.assert_close(apply_temperature(d.softmax(1), t), apply_temperature(d, t))


def test_temperature_calibrated_is_one() -> None:
    z, labels = _synthetic(seed=1)
    assert fit_temperature(z, labels) == pytest.approx(1.0, rel=0.1)
    torch.testing.assert_close(apply_temperature(z, 1.0), z.softmax(1))


def test_temperature_under_inference_mode() -> None:
    z, labels = _synthetic(n=500, seed=2)
    with torch.inference_mode():
        logits = 2 * z  # inference tensor
        t = fit_temperature(logits, labels)
    assert t == pytest.approx(2.0, rel=0.2)


# ----------------------------------------------------------------------------------------------------------------------
# Properties and purity
# ----------------------------------------------------------------------------------------------------------------------
@st.composite
def prob_matrices(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor, int]:
    n = draw(st.integers(0, 40))
    k = draw(st.integers(2, 6))
    raw = draw(hnp.arrays(np.float64, (n, k), elements=st.floats(0.0, 1.0, allow_nan=False)))
    raw = raw + 1e-3
    labels = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, k - 1)))
    n_bins = draw(st.integers(1, 20))
    return torch.from_numpy(raw / raw.sum(1, keepdims=True)), torch.from_numpy(labels), n_bins


@settings(max_examples=60, deadline=None)
@given(prob_matrices(), st.integers(0, 40))
def test_properties(data: tuple[torch.Tensor, torch.Tensor, int], split: int) -> None:
    probs, labels, n_bins = data
    k = probs.shape[1]
    m = one_shot(probs, labels, n_bins)
    if probs.shape[0] == 0:
        assert all(math.isnan(v) for v in m.values())
        return
    assert 0.0 <= m["ece"] <= 1.0 + 1e-12
    assert m["ece"] - 1e-12 <= m["mce"] <= 1.0 + 1e-12
    assert 0.0 <= m["ace"] <= 1.0 + 1e-12 and 0.0 <= m["cw_ece"] <= 1.0 + 1e-12
    assert 0.0 <= m["brier"] <= 2.0 + 1e-12
    assert -1e-12 <= m["entropy"] <= math.log(k) + 1e-9
    assert m["overconfidence"] == pytest.approx(m["confidence"] - m["accuracy"], abs=1e-12)
    cal = ClassificationCalibration(k, n_bins)
    cal.update(probs[:split], labels[:split])
    cal.update(probs[split:], labels[split:])
    assert cal.compute() == pytest.approx(m, abs=1e-9)


def test_no_ultralytics_imports_in_calibration() -> None:
    for path in CAL_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.split(".")[0] == "ultralytics" for n in names), f"{path.name} imports ultralytics"


@pytest.mark.slow
def test_import_does_not_load_matplotlib() -> None:
    with pytest.raises(AttributeError, match="from yolo_ls.plots import plot_reliability_diagram"):
        import yolo_ls.calibration as cal

        cal.plot_reliability_diagram  # noqa: B018 - plotting is not re-exported by the metrics package
    code = (
        "import sys, yolo_ls.calibration as c; "
        "assert 'matplotlib' not in sys.modules, 'matplotlib loaded'; "
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=CAL_DIR.parents[1])


def test_calibration_errors_one_pass_equals_separate_calls():
    from yolo_ls.calibration import calibration_errors, ece, mce

    g = torch.Generator().manual_seed(7)
    probs = torch.softmax(3 * torch.randn(500, 6, generator=g), 1)
    labels = torch.randint(0, 6, (500,), generator=g)
    both = calibration_errors(probs, labels, 12)
    assert float(both["ece"]) == float(ece(probs, labels, 12))
    assert float(both["mce"]) == float(mce(probs, labels, 12))


# ----------------------------------------------------------------------------------------------------------------------
# Exact binning: one rule for every dtype
# ----------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
def test_bin_edges_are_correctly_rounded_and_each_edge_opens_its_bin(dtype: torch.dtype) -> None:
    for n_bins in [*range(1, 101), 255, 1000]:
        edges = _bin_edges(n_bins, dtype)
        up = torch.nextafter(edges, torch.tensor(2.0, dtype=dtype))
        down = torch.nextafter(edges, torch.tensor(-1.0, dtype=dtype))
        for k in range(n_bins + 1):
            exact = Fraction(k, n_bins)
            e, hi, lo = Fraction(float(edges[k])), Fraction(float(up[k])), Fraction(float(down[k]))
            assert abs(e - exact) <= min(abs(hi - exact), abs(lo - exact)), (n_bins, k)  # the nearest value
        idx = _bin_index(edges, n_bins).tolist()
        assert idx == [*range(n_bins), n_bins - 1]  # e_k opens bin k; 1.0 is in the last bin
        below = _bin_index(down[1:], n_bins).tolist()  # the value just below e_k is in bin k - 1
        assert below == list(range(n_bins))
        assert _bin_index(up[:-1], n_bins).tolist() == list(range(n_bins))


def test_same_value_same_bin_in_every_dtype() -> None:
    # i / 100 against edges k / n_bins: either equal (then the edge's bin) or at least 1 / (100 n_bins) apart, far more
    # than half an ulp of float16, so every dtype must agree with the exact rational bin floor(i * n_bins / 100).
    values = [i / 100 for i in range(101)]
    for n_bins in (4, 5, 10, 15, 20):
        exact = [min(i * n_bins // 100, n_bins - 1) for i in range(101)]
        for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
            if dtype == torch.bfloat16 and n_bins > 4:
                continue  # bfloat16's 8 bits cannot hold i / 100 within 1 / (100 n_bins)
            got = _bin_index(torch.tensor(values, dtype=dtype), n_bins).tolist()
            assert got == exact, (n_bins, dtype)


def test_edge_confidences_give_the_same_ece_in_float32_and_float64() -> None:
    # The case: confidences exactly 0.2, 0.4, 0.6, 0.8 with 15 bins (0.2 = 3/15, 0.4 = 6/15, ...). float32
    # linspace edges put them one bin low; here each opens its bin in both dtypes.
    # rows: conf .2 (right), .4 (wrong), .6 (right), .8 (right); one sample per bin, so
    # ECE = (|1 - .2| + |0 - .4| + |1 - .6| + |1 - .8|) / 4 = 1.8 / 4 = 0.45 whatever the dtype.
    conf = [0.2, 0.4, 0.6, 0.8]
    probs64 = torch.tensor([[c, (1 - c) / 4, (1 - c) / 4, (1 - c) / 4, (1 - c) / 4] for c in conf], dtype=torch.float64)
    labels = torch.tensor([0, 1, 0, 0])
    for probs in (probs64, probs64.float()):
        assert f(ece(probs, labels, 15)) == pytest.approx(0.45, abs=1e-6)
        assert reliability_bins(probs, labels, 15)["count"].tolist() == [0, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0]
    half = probs64.half()  # float16 0.2 is 0.19995..., which is e_3 rounded to float16: still bin 3
    assert reliability_bins(half, labels, 15)["count"].tolist() == [0, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0]
    assert f(ece(half, labels, 15)) == pytest.approx(0.45, abs=1e-3)  # the sums see float16-rounded values
    for probs in (probs64.float(), half):
        cal = ClassificationCalibration(5)
        cal.update(probs, labels)
        assert cal.bins()["count"].tolist() == [0, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0]
        assert cal.compute()["ece"] == pytest.approx(0.45, abs=1e-3 if probs.dtype == torch.float16 else 1e-6)
    for dtype in (torch.float16, torch.float32, torch.float64):
        det = DetectionCalibration(1, conf_thres=0.0)
        det.update(torch.tensor(conf, dtype=dtype), torch.tensor([True, False, True, True]), torch.zeros(4).long())
        assert det.bins()["count"].tolist() == [0, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0]
        assert det.compute()["d_ece"] == pytest.approx(0.45, abs=1e-3)


def test_classwise_sparse_path_equals_dense_reference() -> None:
    # K >= 4 * n_bins takes the CPU path that bins only the entries >= the first edge; it must equal the per-class
    # binary ECE of torchmetrics (whose float32 edges agree with ours away from the edges; random data is never on one).
    probs, labels = random_probs(400, 64, seed=4, scale=4.0)
    ref = np.mean([float(binary_calibration_error(probs[:, c].contiguous(), (labels == c).long())) for c in range(64)])
    assert f(cw_ece(probs, labels)) == pytest.approx(ref, abs=1e-6)
    assert f(cw_ece(probs.double(), labels)) == pytest.approx(ref, abs=1e-6)
    cal = ClassificationCalibration(64)
    for i in range(0, 400, 150):
        cal.update(probs[i : i + 150], labels[i : i + 150])
    assert cal.compute()["cw_ece"] == pytest.approx(ref, abs=1e-6)


# ----------------------------------------------------------------------------------------------------------------------
# ACE: tied confidences stay together
# ----------------------------------------------------------------------------------------------------------------------
def test_ace_keeps_ties_together_hand_case() -> None:
    # conf .6 (right), .7 (wrong), .7 (right), .8 (right), 2 bins. Ranks would split the two .7s (and give .2 or .3
    # depending on which comes first); the tie rule puts both in bin 0: L = #smaller = 1 for both -> floor(1*2/4) = 0.
    # bin 0 {.6, .7, .7}: |2 - 2.0| = 0; bin 1 {.8}: |1 - .8| = .2; ACE = .2 / 4 = 0.05 in either order.
    probs = torch.tensor([[0.6, 0.4], [0.3, 0.7], [0.7, 0.3], [0.2, 0.8]])
    labels = torch.tensor([0, 0, 0, 1])
    assert f(ace(probs, labels, 2)) == pytest.approx(0.05, abs=1e-6)
    swap = torch.tensor([0, 2, 1, 3])
    assert f(ace(probs[swap], labels[swap], 2)) == pytest.approx(0.05, abs=1e-6)


@settings(max_examples=80, deadline=None)
@given(
    tops=st.lists(st.sampled_from([0.5, 0.625, 0.75, 0.875, 1.0]), min_size=1, max_size=60),
    data=st.data(),
    n_bins=st.integers(1, 12),
)
def test_property_ace_does_not_depend_on_order(tops: list[float], data: st.DataObject, n_bins: int) -> None:
    n = len(tops)
    labels = torch.tensor(data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    perm = torch.tensor(data.draw(st.permutations(list(range(n)))))
    conf = torch.tensor(tops, dtype=torch.float64)
    probs = torch.stack([conf, 1 - conf], 1)  # exact in binary: heavy ties, also at bin boundaries
    value = f(ace(probs, labels, n_bins))
    assert f(ace(probs[perm], labels[perm], n_bins)) == pytest.approx(value, abs=1e-12)
    cal = ClassificationCalibration(2, n_bins)  # the accumulator, fed in a different order and split
    cal.update(probs[perm][: n // 2], labels[perm][: n // 2])
    cal.update(probs[perm][n // 2 :], labels[perm][n // 2 :])
    assert cal.compute()["ace"] == pytest.approx(value, abs=1e-12)
    # reference: group by value; a group with L smaller samples goes to bin floor(L * n_bins / n)
    sums: dict[int, list[float]] = {}
    correct = (torch.where(conf == 0.5, 0, probs.argmax(1)) == labels).double()
    for c in sorted(set(tops)):
        members = conf == c
        b = int((conf < c).sum()) * n_bins // n
        acc_conf = sums.setdefault(b, [0.0, 0.0])
        acc_conf[0] += float(correct[members].sum())
        acc_conf[1] += float(conf[members].sum())
    assert value == pytest.approx(sum(abs(a - c) for a, c in sums.values()) / n, abs=1e-12)


# ----------------------------------------------------------------------------------------------------------------------
# Multi-process sync (torch.distributed, gloo on the CPU)
# ----------------------------------------------------------------------------------------------------------------------
# The data and batches of the two ranks, shared by the workers and the reference. Float32 inputs are summed per batch in
# float32, so the one-process reference is fed the same batches.
SYNC_DATA = """
import torch
g = torch.Generator().manual_seed(11)
probs = (3 * torch.randn(701, 6, generator=g)).softmax(1)
probs[::7, 0] = 0.75  # some exact ties for ACE
probs = probs / probs.sum(1, keepdim=True)
labels = torch.randint(0, 6, (701,), generator=g)
conf = torch.rand(503, generator=g)
tp = torch.rand(503, generator=g) < conf
cls = torch.randint(0, 3, (503,), generator=g)
BATCHES = (((0, 120), (120, 240), (240, 300)), ((300, 420), (420, 540), (540, 660), (660, 701)))
DET = (slice(0, 100), slice(100, None))
"""

SYNC_WORKER = """
import sys
import torch
import torch.distributed as dist
from yolo_ls.calibration import ClassificationCalibration, DetectionCalibration

rank, init, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
dist.init_process_group("gloo", init_method="file://" + init, rank=rank, world_size=2)
cal = ClassificationCalibration(6)
for lo, hi in BATCHES[rank]:  # uneven shards
    cal.update(probs[lo:hi], labels[lo:hi])
det = DetectionCalibration(3, conf_thres=0.2)
det.update(conf[DET[rank]], tp[DET[rank]], cls[DET[rank]])
assert cal.sync() is cal and det.sync() is det
try:
    cal.sync()
    raise AssertionError("a second sync must raise")
except RuntimeError:
    pass
result = {"cls": cal.compute(), "bins": cal.bins()["count"], "det": det.compute(), "per": det.per_class_d_ece()}
torch.save(result, out + f"/rank{rank}.pt")
dist.destroy_process_group()
"""


@pytest.mark.slow
def test_sync_across_two_processes_equals_one_accumulator(tmp_path: Path) -> None:
    # Two real processes in a gloo group (plain interpreters that import only torch and yolo_ls.calibration).
    code = SYNC_DATA + SYNC_WORKER
    args = [str(tmp_path / "init"), str(tmp_path)]
    procs = [subprocess.Popen([sys.executable, "-c", code, str(r), *args], cwd=CAL_DIR.parents[1]) for r in (0, 1)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    ns: dict = {}
    exec(SYNC_DATA, ns)
    cal = ClassificationCalibration(6)  # one accumulator over the union, the same batches, one process
    for lo, hi in (*ns["BATCHES"][1], *ns["BATCHES"][0]):
        cal.update(ns["probs"][lo:hi], ns["labels"][lo:hi])
    det = DetectionCalibration(3, conf_thres=0.2)
    det.update(ns["conf"], ns["tp"], ns["cls"])
    for rank in (0, 1):
        got = torch.load(tmp_path / f"rank{rank}.pt", weights_only=False)
        want = cal.compute()
        # each process stages its small batches into other chunks than the single accumulator does; every sum is
        # taken in float64, so every metric (brier, entropy and cw_ece included) agrees to 1e-12
        assert got["cls"] == pytest.approx(want, abs=1e-15, rel=1e-12)
        assert got["bins"].tolist() == cal.bins()["count"].tolist()
        assert got["det"] == pytest.approx(det.compute(), abs=1e-12, rel=0)
        assert got["per"] == pytest.approx(det.per_class_d_ece(), abs=1e-12, rel=0)


def test_sync_is_a_no_op_without_a_process_group() -> None:
    probs, labels = random_probs(50, 3, seed=2)
    cal = ClassificationCalibration(3)
    cal.update(probs, labels)
    before = cal.compute()
    assert cal.sync() is cal and cal.sync() is cal  # nothing to combine, nothing refused
    assert cal.compute() == before
    det = DetectionCalibration(2)
    assert det.sync() is det


def test_metric_names_are_defined_once() -> None:
    from yolo_ls.calibration import CLASSIFICATION_METRICS, DETECTION_METRICS
    from yolo_ls.engine.callbacks.measurement import metric_keys

    CLS_KEYS, DET_KEYS = metric_keys("classify"), metric_keys("detect")

    assert CLS_KEYS is CLASSIFICATION_METRICS is ClassificationCalibration.KEYS and CLS_KEYS == KEYS
    assert DET_KEYS is DETECTION_METRICS and DetectionCalibration.KEYS == (*DETECTION_METRICS, "d_count")


def test_registry_agrees_with_the_accumulators() -> None:
    import subprocess as sp

    from yolo_ls.calibration import CLASSIFICATION_METRICS, DETECTION_METRICS, registry
    from yolo_ls.compare.report import LOWER_IS_BETTER, headline
    from yolo_ls.core.objective import CLASSIFY_OBJECTIVES, DETECT_OBJECTIVES, metric_key
    from yolo_ls.plots.run_folder import CURVE_METRICS

    probs = torch.softmax(torch.randn(20, 3, generator=torch.Generator().manual_seed(0)), 1)
    cal = ClassificationCalibration(3)
    cal.update(probs, torch.arange(20) % 3)
    assert tuple(cal.compute()) == registry.names("classify") == CLASSIFICATION_METRICS
    det = DetectionCalibration(2)
    det.update(torch.rand(6), torch.rand(6) > 0.5, torch.arange(6) % 2)
    assert tuple(det.compute()) == (*registry.names("detect"), "d_count")
    assert registry.names("pose") == registry.names("detect") == DETECTION_METRICS
    for m in registry.METRICS:
        assert m.key == metric_key(m.name) == f"calib/{m.name}"
        assert m.objective is None or m.lower_is_better  # an objective is minimised
    assert CLASSIFY_OBJECTIVES == ("fitness", "nll", "ece", "brier", "ace", "cw_ece", "mce")
    assert DETECT_OBJECTIVES == ("fitness", "d_ece", "d_mce")
    # MCE (one bin's gap) on its own scale, accuracy beside confidence
    assert CURVE_METRICS == (("ece", "ace", "cw_ece"), "mce", "brier", "nll", ("accuracy", "confidence"), "d_ece",
                             "d_mce", ("d_accuracy", "d_confidence"))
    assert LOWER_IS_BETTER == {"ece", "mce", "brier", "nll", "ece_ts", "nll_ts", "ece_last", "d_ece", "d_mce",
                               "d_ece_ts", "d_ece_last"}
    assert [headline(t)[0] for t in ("classify", "detect")] == list(registry.headline_keys()) == ["ece", "d_ece"]
    assert [registry.ts_key(t) for t in ("classify", "detect", "pose")] == ["ece_ts", "d_ece_ts", "d_ece_ts"]
    # pure data: the registry (and the argument table that reads it) load without torch
    code = "import sys; import yolo_ls.core.args, yolo_ls.calibration.registry; assert 'torch' not in sys.modules"
    sp.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
