"""Temperature scaling (Guo et al., 2017, "On Calibration of Modern Neural Networks").

A single scalar ``T > 0`` is fitted on held-out data by minimising the NLL of ``softmax(logits / T)``; ``T > 1``
means the model was overconfident. The fit optimises ``log T`` (so ``T`` stays positive) with L-BFGS in float64.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ("apply_temperature", "fit_temperature")

_PROB_EPS = 1e-12
_MAX_LOG_T = math.log(100.0)  # T is kept in [0.01, 100]


def _is_probs(x: Tensor, atol: float = 1e-3) -> bool:
    """Heuristic: non-negative rows summing to 1 (within ``atol``) are probabilities."""
    if x.numel() == 0:
        return False
    return bool((x >= 0).all() and torch.allclose(x.sum(1), torch.ones((), dtype=x.dtype, device=x.device), atol=atol))


def _to_logits(x: Tensor, is_probs: bool | None) -> Tensor:
    """Return logits (``log(probs.clamp_min(1e-12))`` when ``x`` holds probabilities)."""
    if x.ndim != 2:
        raise ValueError(f"expected (N, K) logits or probabilities, got shape {tuple(x.shape)}")
    if is_probs is None:
        is_probs = _is_probs(x)
    return x.clamp_min(_PROB_EPS).log() if is_probs else x


def fit_temperature(
    logits_or_probs: Tensor, labels: Tensor, *, is_probs: bool | None = None, max_iter: int = 100
) -> float:
    """Fit the temperature ``T`` minimising the NLL of ``softmax(logits / T)`` (Guo et al. 2017).

    Works under ``torch.no_grad()``/``torch.inference_mode()`` (gradients are enabled locally on a copy).

    Args:
        logits_or_probs: ``(N, K)`` logits, or probabilities (then ``log(p.clamp_min(1e-12))`` is used as logits).
        labels: ``(N,)`` integer labels.
        is_probs: Whether the input holds probabilities; ``None`` auto-detects (non-negative rows summing to 1).
        max_iter: Maximum L-BFGS iterations.

    Returns:
        The fitted temperature, clamped to ``[0.01, 100]``; ``1.0`` for empty input.
    """
    if labels.ndim != 1 or labels.shape[0] != logits_or_probs.shape[0]:
        raise ValueError(f"labels must be (N,), got {tuple(labels.shape)} for input {tuple(logits_or_probs.shape)}")
    if logits_or_probs.shape[0] == 0:
        return 1.0
    device = logits_or_probs.device
    if device.type == "mps":  # no float64 on MPS
        device = torch.device("cpu")
    with torch.inference_mode(False), torch.enable_grad():
        x = logits_or_probs.detach().to(device=device, dtype=torch.float64).clone()
        logits = _to_logits(x, is_probs).clone()
        target = labels.detach().to(device=device, dtype=torch.long).clone()
        log_t = torch.zeros(1, dtype=torch.float64, device=device, requires_grad=True)
        opt = torch.optim.LBFGS(
            [log_t],
            lr=1.0,
            max_iter=max_iter,
            line_search_fn="strong_wolfe",
            tolerance_grad=1e-9,
            tolerance_change=1e-12,
        )

        def closure() -> Tensor:
            opt.zero_grad()
            t = log_t.clamp(-_MAX_LOG_T, _MAX_LOG_T).exp()
            loss = torch.nn.functional.cross_entropy(logits / t, target)
            loss.backward()
            return loss

        opt.step(closure)
        return float(log_t.detach().clamp(-_MAX_LOG_T, _MAX_LOG_T).exp())


def apply_temperature(logits_or_probs: Tensor, T: float, is_probs: bool | None = None) -> Tensor:
    """Return temperature-scaled probabilities ``softmax(logits / T)``.

    Args:
        logits_or_probs: ``(N, K)`` logits or probabilities (see :func:`fit_temperature`).
        T: Temperature, ``T > 0``.
        is_probs: Whether the input holds probabilities; ``None`` auto-detects.

    Returns:
        ``(N, K)`` probabilities in the input's floating dtype (at least float32), on its device.
    """
    if not T > 0:
        raise ValueError(f"temperature must be > 0, got {T}")
    x = logits_or_probs if logits_or_probs.dtype in (torch.float32, torch.float64) else logits_or_probs.float()
    return torch.softmax(_to_logits(x, is_probs) / T, dim=1)
