"""Temperature scaling (Guo et al., 2017, "On Calibration of Modern Neural Networks").

A single scalar ``T > 0`` is fitted on held-out data by minimising the NLL of ``softmax(logits / T)``; ``T > 1``
means the model was overconfident. ``T`` is kept in ``[0.01, 100]``.
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

    Works under ``torch.no_grad()``/``torch.inference_mode()`` (no autograd is used).

    Args:
        logits_or_probs: ``(N, K)`` logits, or probabilities (then ``log(p.clamp_min(1e-12))`` is used as logits).
        labels: ``(N,)`` integer labels.
        is_probs: Whether the input holds probabilities; ``None`` auto-detects (non-negative rows summing to 1).
        max_iter: Maximum Newton steps.

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
    with torch.inference_mode(False), torch.no_grad():
        x = logits_or_probs.detach().to(device=device, dtype=torch.float64)
        z = _to_logits(x, is_probs)
        z = z - z.max(1, keepdim=True).values  # softmax is shift-invariant; keeps exp() in range
        zy = z.gather(1, labels.detach().to(device=device, dtype=torch.long)[:, None]).squeeze(1)
        # NLL(β) = mean(logsumexp(β·z) - β·z_y) with β = 1/T is convex in β: f' = mean(E_p[z] - z_y),
        # f'' = mean(Var_p[z]) >= 0. Damped Newton converges in a handful of steps, with no autograd.
        lo, hi = math.exp(-_MAX_LOG_T), math.exp(_MAX_LOG_T)
        rows = max(1, (1 << 15) // z.shape[1]) if device.type == "cpu" else z.shape[0]
        chunks = list(zip(z.split(rows), zy.split(rows)))
        beta = 1.0
        for _ in range(max_iter):
            grad_sum = hess_sum = 0.0
            for zc, zyc in chunks:
                t = torch.softmax(beta * zc, dim=1).mul_(zc)  # p·z
                ez = t.sum(1)  # E_p[z]
                ez2 = t.mul_(zc).sum(1)  # E_p[z^2]
                grad_sum += float((ez - zyc).sum())
                hess_sum += float((ez2 - ez * ez).sum())
            grad, hess = grad_sum / z.shape[0], hess_sum / z.shape[0]
            if hess <= 1e-15:
                break
            new = min(max(beta - grad / hess, beta / 4, lo), beta * 4, hi)
            done = abs(new - beta) <= 1e-10 * max(1.0, beta)
            beta = new
            if done:
                break
        return float(min(max(1.0 / beta, lo), hi))


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
