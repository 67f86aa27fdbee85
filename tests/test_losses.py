"""Classification smoothing: targets and losses against hand-computed values, PyTorch and stock Ultralytics."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from ultralytics.utils.loss import v8ClassificationLoss

from tests.helpers import device_params
from yolo_ls.core.losses import (
    LabelSmoothingState,
    SmoothedClassificationLoss,
    smooth_targets,
    smoothed_cross_entropy,
    smoothing_base,
)

DEVICES = device_params()  # "cpu", and "cuda" (marked cuda, skipped without a GPU)


def _reference_loss(logits, targets):
    """Cross-entropy against explicit target distributions, through autograd: the independent reference."""
    return -(targets * F.log_softmax(logits.double(), dim=1)).sum(1).mean()


def test_uniform_targets_hand_computed():
    # K=4, ε=0.2: true class 1 - 0.2 + 0.2/4 = 0.85, others 0.2/4 = 0.05
    t = smooth_targets(torch.tensor([2, 0]), 4, 0.2, "uniform")
    expected = torch.tensor([[0.05, 0.05, 0.85, 0.05], [0.85, 0.05, 0.05, 0.05]])
    torch.testing.assert_close(t, expected)


def test_exclusive_targets_hand_computed():
    # K=5, ε=0.2: true class exactly 0.8, each of the 4 others 0.2/4 = 0.05
    t = smooth_targets(torch.tensor([1]), 5, 0.2, "exclusive")
    torch.testing.assert_close(t, torch.tensor([[0.05, 0.8, 0.05, 0.05, 0.05]]))


def test_prior_targets_hand_computed():
    # K=3, ε=0.1, prior [2, 1, 1] -> q = [0.5, 0.25, 0.25]; label 2: [0.05, 0.025, 0.9 + 0.025]
    t = smooth_targets(torch.tensor([2]), 3, 0.1, "prior", prior=[2, 1, 1])
    torch.testing.assert_close(t, torch.tensor([[0.05, 0.025, 0.925]]))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("eps", [0.0, 0.05, 0.1, 0.3, 0.9])
def test_uniform_loss_and_grad_match_pytorch_builtin(eps, device):
    torch.manual_seed(0)
    logits = torch.randn(64, 10).to(device).requires_grad_(True)
    labels = torch.randint(0, 10, (64,)).to(device)
    ref = F.cross_entropy(logits, labels, label_smoothing=eps)
    (g_ref,) = torch.autograd.grad(ref, logits)
    ours = smoothed_cross_entropy(logits, labels, eps, "uniform")
    (g_ours,) = torch.autograd.grad(ours, logits)
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("mode,prior", [("exclusive", None), ("prior", [5.0, 1.0, 1.0, 2.0, 1.0]), ("uniform", None)])
@pytest.mark.parametrize("eps", [0.0, 0.1, 0.4])
@pytest.mark.parametrize("device", DEVICES)
def test_all_modes_match_explicit_target_reference(mode, prior, eps, device):
    torch.manual_seed(1)
    logits = (3 * torch.randn(32, 5)).to(device).requires_grad_(True)
    labels = torch.randint(0, 5, (32,)).to(device)
    targets = smooth_targets(labels, 5, eps, mode, prior)
    ref = _reference_loss(logits, targets.double())
    (g_ref,) = torch.autograd.grad(ref, logits)
    ours = smoothed_cross_entropy(logits, labels, eps, mode, prior)
    (g_ours,) = torch.autograd.grad(ours, logits)
    torch.testing.assert_close(ours.double(), ref, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(g_ours, g_ref.float(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("device", DEVICES)
def test_eps_zero_reproduces_stock_ultralytics_loss(device):
    torch.manual_seed(2)
    logits = torch.randn(16, 7).to(device).requires_grad_(True)
    batch = {"cls": torch.randint(0, 7, (16,)).to(device)}
    stock_loss, stock_items = v8ClassificationLoss()(logits, batch)
    from yolo_ls.engine.compat import classification_loss_items  # the item format install_smoothing gives it

    for mode, prior in (("uniform", None), ("exclusive", None), ("prior", [1, 2, 3, 4, 5, 6, 7])):
        loss = SmoothedClassificationLoss(LabelSmoothingState(0.0, device), 7, mode, prior, classification_loss_items())
        ours, items = loss(logits, batch)
        torch.testing.assert_close(ours, stock_loss, rtol=1e-6, atol=1e-7)
        expected = stock_items
        if isinstance(stock_items, dict):  # 8.4.106+: {"loss": ...}; earlier releases: the tensor itself
            assert set(items) == set(stock_items) == {"loss"}
            items, expected = items["loss"], stock_items["loss"]
        assert isinstance(items, torch.Tensor) and not items.requires_grad
        torch.testing.assert_close(items, expected, rtol=1e-6, atol=1e-7)
    # Ultralytics passes (inference, train) tuples in some paths: the first element is ignored as in stock
    ours_tuple, _ = SmoothedClassificationLoss(LabelSmoothingState(0.0, device), 7)((None, logits), batch)
    torch.testing.assert_close(ours_tuple, stock_loss, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("device", DEVICES)
def test_loss_reads_live_eps_and_state_is_shared_by_deepcopy(device):
    torch.manual_seed(3)
    logits = torch.randn(8, 4).to(device)
    batch = {"cls": torch.randint(0, 4, (8,)).to(device)}
    state = LabelSmoothingState(0.0, device)
    loss = SmoothedClassificationLoss(state, 4)
    ema_loss = copy.deepcopy(loss)  # what ModelEMA does to a model that holds a criterion
    assert ema_loss.state is state
    state.set_(0.3)
    expected = F.cross_entropy(logits, batch["cls"], label_smoothing=0.3)
    torch.testing.assert_close(loss(logits, batch)[0], expected)
    torch.testing.assert_close(ema_loss(logits, batch)[0], expected)


@pytest.mark.parametrize("device", DEVICES)
def test_terms_derived_from_eps_follow_set_and_refresh_even_when_first_used_under_inference_mode(device):
    """The loss reads -ε·b and -(1 - ε·Σb) kept by the state; the EMA copy is first called by the validator."""
    torch.manual_seed(4)
    logits, batch = torch.randn(8, 5).to(device), {"cls": torch.randint(0, 5, (8,)).to(device)}
    state = LabelSmoothingState(0.1, device)
    loss = SmoothedClassificationLoss(state, 5)
    with torch.inference_mode():
        torch.testing.assert_close(loss(logits, batch)[0], F.cross_entropy(logits, batch["cls"], label_smoothing=0.1))
    state.set_(0.2)
    torch.testing.assert_close(loss(logits, batch)[0], F.cross_entropy(logits, batch["cls"], label_smoothing=0.2))
    state.eps.fill_(0.4)  # a write by other means (the auto schedule's DDP broadcast), then refresh_
    state.refresh_()
    torch.testing.assert_close(loss(logits, batch)[0], F.cross_entropy(logits, batch["cls"], label_smoothing=0.4))


@pytest.mark.parametrize("device", DEVICES)
def test_half_precision_logits_give_float32_loss_and_matching_grad_dtype(device):
    logits = torch.randn(8, 6).to(device).half().requires_grad_(True)
    labels = torch.randint(0, 6, (8,)).to(device)
    loss = smoothed_cross_entropy(logits, labels, 0.1)
    assert loss.dtype == torch.float32
    loss.backward()
    assert logits.grad.dtype == torch.float16
    torch.testing.assert_close(loss, F.cross_entropy(logits.float(), labels, label_smoothing=0.1), rtol=1e-3, atol=1e-3)


def test_second_backward_through_the_same_graph_is_refused_not_computed_from_the_spent_buffer():
    """The backward turns the saved log-softmax into the gradient in place; the version check must catch reuse."""
    logits = torch.randn(6, 5, requires_grad=True)
    labels = torch.randint(0, 5, (6,))
    loss = smoothed_cross_entropy(logits, labels, 0.1)
    (first,) = torch.autograd.grad(loss, logits, retain_graph=True)
    (expected,) = torch.autograd.grad(F.cross_entropy(logits, labels, label_smoothing=0.1), logits)
    torch.testing.assert_close(first, expected)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        torch.autograd.grad(loss, logits)


def test_bad_bases_raise():
    with pytest.raises(ValueError, match="2 classes"):
        smoothing_base(1, "exclusive")
    with pytest.raises(ValueError, match="non-negative"):
        smoothing_base(3, "prior", [1, -1, 1])
    with pytest.raises(ValueError, match="3 non-negative"):
        smoothing_base(3, "prior", [1, 1])
    with pytest.raises(ValueError, match="unknown"):
        smoothing_base(3, "banana")


@settings(max_examples=60, deadline=None)
@given(
    k=st.integers(2, 50),
    eps=st.floats(0.0, 0.999, allow_nan=False),
    mode=st.sampled_from(["uniform", "exclusive", "prior"]),
    seed=st.integers(0, 10_000),
)
def test_property_smoothed_targets_are_distributions(k, eps, mode, seed):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, k, (9,), generator=g)
    prior = torch.rand(k, generator=g) + 1e-3 if mode == "prior" else None
    t = smooth_targets(labels, k, eps, mode, prior)
    assert (t >= -1e-7).all()
    torch.testing.assert_close(t.sum(1), torch.ones(9), rtol=0, atol=1e-5)
    # the true class keeps at least 1 - ε of the mass
    assert (t.gather(1, labels[:, None]) >= 1 - eps - 1e-6).all()


@settings(max_examples=30, deadline=None)
@given(k=st.integers(2, 30), seed=st.integers(0, 10_000), mode=st.sampled_from(["uniform", "exclusive"]))
def test_property_eps_zero_is_identity_and_loss_is_affine_in_eps(k, seed, mode):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, k, (12,), generator=g)
    logits = 2 * torch.randn(12, k, generator=g)
    torch.testing.assert_close(smooth_targets(labels, k, 0.0, mode), F.one_hot(labels, k).float())
    losses = torch.stack([smoothed_cross_entropy(logits, labels, e, mode) for e in (0.0, 0.25, 0.5, 0.75)]).double()
    steps = losses.diff()
    # L(ε) = (1-ε)·CE(y) + ε·CE(b): equal steps, so the loss is monotone in ε on a fixed batch
    torch.testing.assert_close(steps, steps[:1].expand(3), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode,prior", [("uniform", None), ("exclusive", None), ("prior", [3.0, 1, 2, 1, 1, 2])])
@pytest.mark.parametrize("eps", [0.0, 0.1, 0.5])
@pytest.mark.parametrize("device", DEVICES)
def test_gradient_equals_closed_form_softmax_minus_targets(mode, prior, eps, device):
    # Independent formula, in float64: d/dz [g * mean_i CE(t_i, z_i)] = g * (softmax(z) - t) / N, upstream g != 1.
    torch.manual_seed(5)
    logits = (2.5 * torch.randn(40, 6)).to(device).requires_grad_(True)
    labels = torch.randint(0, 6, (40,)).to(device)
    upstream = 3.7
    (grad,) = torch.autograd.grad(upstream * smoothed_cross_entropy(logits, labels, eps, mode, prior), logits)
    t = smooth_targets(labels, 6, eps, mode, prior).double()
    expected = upstream * (torch.softmax(logits.detach().double(), 1) - t) / 40
    torch.testing.assert_close(grad.double(), expected, rtol=1e-5, atol=1e-8)
    # and rows of the gradient sum to 0 (Σ softmax = Σ t = 1), as the public-op backward relies on
    torch.testing.assert_close(grad.double().sum(1), torch.zeros(40, dtype=torch.float64, device=device), rtol=0,
                               atol=1e-7)


@pytest.mark.parametrize("device", DEVICES)
def test_eps_zero_equals_stock_bit_for_bit_loss_and_within_an_ulp_gradient(device):
    # The loss reuses stock's log_softmax and nll_loss, so at ε=0 it is stock's value exactly. The gradient is
    # softmax·s - s·onehot from public ops, with p = softmax(z) (exp(z - max) / sum) where stock's fused log-softmax
    # backward evaluates exp(log_softmax(z)): entries may differ in the last few bits (5.4e-7 relative at most here,
    # about 4 ulp of float32), never more.
    torch.manual_seed(6)
    logits = (2 * torch.randn(256, 1000)).to(device).requires_grad_(True)
    batch = {"cls": torch.randint(0, 1000, (256,)).to(device)}
    stock, _ = v8ClassificationLoss()(logits, batch)
    ours, _ = SmoothedClassificationLoss(LabelSmoothingState(0.0, device), 1000)(logits, batch)
    assert torch.equal(ours, stock)
    (g_stock,) = torch.autograd.grad(stock, logits)
    (g_ours,) = torch.autograd.grad(ours, logits)
    torch.testing.assert_close(g_ours, g_stock, rtol=1e-6, atol=1e-12)


def test_no_private_torch_calls_in_the_package():
    # `torch._name` (a private API) anywhere in yolo_ls; dunders such as torch.__version__ are public.
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "yolo_ls"
    found = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                base = node.value
                while isinstance(base, ast.Attribute):
                    base = base.value
                if isinstance(base, ast.Name) and base.id in ("torch", "F", "nn"):
                    found.append(f"{path.relative_to(root)}:{node.lineno}: {ast.unparse(node)}")
    assert not found, found
