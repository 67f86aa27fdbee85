"""Post-hoc calibration maps: affine maps of class logits fitted on held-out data, ``z -> z @ A.T + b``.

Classification (softmax): ``temperature`` (Guo et al. 2017, ``A = I/T``), ``vector`` (per-class scale and bias,
``A = diag(s)``) and ``matrix`` (full ``A``, ``b`` with ODIR regularisation, Kull et al. 2019). Detection (each box's
sigmoid score): ``temperature`` (one scale for every class, no bias, so the order of the scores is kept) and ``platt``
(per-class scale and bias, pulled toward identity). Fits minimise the mean NLL in float64 on the CPU and are
deterministic. :func:`check_fit_size` refuses fits on too little data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from yolo_ls.calibration.methods import SIGMOID_METHODS, SOFTMAX_METHODS  # the names live without torch
from yolo_ls.calibration.temperature import fit_temperature

__all__ = (
    "DEFAULT_L2",
    "DETECTION_TASKS",
    "MATRIX_MAX_CLASSES",
    "MIN_CORRECT",
    "MIN_PER_CLASS",
    "MIN_SAMPLES",
    "MIN_WRONG",
    "SIGMOID_METHODS",
    "SOFTMAX_METHODS",
    "LogitMap",
    "check_fit_size",
    "fit_sigmoid_map",
    "fit_softmax_map",
)

DETECTION_TASKS = ("detect", "segment", "pose", "obb")
_METHODS = ("temperature", "vector", "platt", "matrix", "composed")

# Minimum fit sizes (check_fit_size). Every method needs MIN_SAMPLES images (classification) or boxes (detection),
# at least MIN_CORRECT right and MIN_WRONG wrong ones (else the NLL has no finite optimum: it only sharpens), and
# MIN_PER_CLASS of every class; matrix needs max(MIN_PER_CLASS["matrix"], K // 2) of every class (at least half as
# many images as parameters, ODIR carries the rest) and at most MATRIX_MAX_CLASSES classes.
MIN_SAMPLES = 20
MIN_CORRECT = 1
MIN_WRONG = 1
MIN_PER_CLASS = {"temperature": 0, "vector": 10, "matrix": 20, "platt": 0}
MATRIX_MAX_CLASSES = 100

# Default L2 weights: ODIR for matrix (Kull et al.'s normalisation, see fit_softmax_map; 10 gave the best or nearly
# the best held-out NLL of 0.01..100 on synthetic data, K = 10 and 50 at 20..100 images per class), none for vector,
# and for platt a pull toward identity worth about one box per class (see fit_sigmoid_map).
DEFAULT_L2 = {"vector": 0.0, "matrix": 10.0, "platt": 1.0}

_SCALE_MIN, _SCALE_MAX = 0.01, 100.0  # sigmoid scales (1/T), as fit_temperature's T
_CHUNK_ENTRIES = 1 << 17  # (N, K) passes run over row chunks of about this many entries
_F64 = torch.float64


def _cpu64(x: Any) -> Tensor:
    return torch.as_tensor(x).detach().to(device="cpu", dtype=_F64)


# ---------------------------------------------------------------------------------------------------------- the map
@dataclass(frozen=True, eq=False)
class LogitMap:
    """An affine map of class logits, z -> z @ weight.T + bias (weight () scalar, (K,) per class, or (K, K)).

    ``method`` is ``temperature`` (weight ``1/T``, bias zero), ``vector`` or ``platt`` (weight ``(K,)`` scales),
    ``matrix`` (weight ``(K, K)``) or ``composed`` (made by :meth:`then`; weight ``(K,)`` or ``(K, K)``). The tensors
    are stored as float64 on the CPU.
    """

    method: str
    weight: Tensor
    bias: Tensor

    def __post_init__(self) -> None:
        if self.method not in _METHODS:
            raise ValueError(f"unknown LogitMap method {self.method!r}; expected one of {_METHODS}")
        w, b = _cpu64(self.weight), _cpu64(self.bias)
        object.__setattr__(self, "weight", w)
        object.__setattr__(self, "bias", b)
        if b.ndim != 1 or b.shape[0] < 1:
            raise ValueError(f"bias must be (K,) with K >= 1, got shape {tuple(b.shape)}")
        k = b.shape[0]
        shapes = {"temperature": [()], "vector": [(k,)], "platt": [(k,)], "matrix": [(k, k)],
                  "composed": [(k,), (k, k)]}[self.method]
        if tuple(w.shape) not in shapes:
            raise ValueError(f"{self.method} weight must have shape {' or '.join(map(str, shapes))} for K={k}, "
                             f"got {tuple(w.shape)}")
        if not (bool(torch.isfinite(w).all()) and bool(torch.isfinite(b).all())):
            raise ValueError(f"{self.method} map has non-finite parameters")
        if self.method == "temperature" and (not float(w) > 0 or bool(b.any())):
            raise ValueError(f"temperature map needs weight 1/T > 0 and a zero bias, got weight {float(w)}")

    @property
    def num_classes(self) -> int:
        return int(self.bias.shape[0])

    def __call__(self, logits: Tensor) -> Tensor:
        """Map ``(N, K)`` logits; float64 (float32 on MPS) on the input's device."""
        if logits.ndim != 2 or logits.shape[1] != self.num_classes:
            raise ValueError(f"expected (N, {self.num_classes}) logits, got shape {tuple(logits.shape)}")
        dtype = torch.float32 if logits.device.type == "mps" else _F64
        z = logits.to(dtype)
        w, b = self.weight.to(z.device, dtype), self.bias.to(z.device, dtype)
        return torch.addmm(b, z, w.T) if w.ndim == 2 else z * w + b

    def per_box(self, logits: Tensor, cls: Tensor) -> Tensor:
        """Map ``(N,)`` logits of each box's own class ``cls`` ``(N,)``; not defined for a full matrix."""
        if logits.ndim != 1 or cls.shape != logits.shape:
            raise ValueError(f"logits and cls must both be (N,), got {tuple(logits.shape)} and {tuple(cls.shape)}")
        if self.weight.ndim == 2:
            raise ValueError(f"a {self.method} map with a (K, K) matrix needs all K logits of a box: call the map "
                             "on (N, K) logits instead of per_box")
        dtype = torch.float32 if logits.device.type == "mps" else _F64
        z, c = logits.to(dtype), cls.to(device=logits.device, dtype=torch.long)
        if c.numel() and (int(c.min()) < 0 or int(c.max()) >= self.num_classes):
            raise ValueError(f"cls must lie in [0, {self.num_classes}), got [{int(c.min())}, {int(c.max())}]")
        w, b = self.weight.to(z.device, dtype), self.bias.to(z.device, dtype)
        return z * (w if w.ndim == 0 else w[c]) + b[c]

    def matrix(self) -> tuple[Tensor, Tensor]:
        """The full ``(K, K)`` ``A`` and ``(K,)`` ``b`` of ``z -> z @ A.T + b``."""
        w = self.weight
        a = w.clone() if w.ndim == 2 else torch.diag(w.expand(self.num_classes).clone())
        return a, self.bias.clone()

    def then(self, other: LogitMap) -> LogitMap:
        """``other`` applied after ``self``; ``temperature`` when both are, else ``composed``."""
        if other.num_classes != self.num_classes:
            raise ValueError(f"cannot compose maps of {self.num_classes} and {other.num_classes} classes")
        if self.method == other.method == "temperature":
            return LogitMap("temperature", self.weight * other.weight, self.bias.clone())
        if self.weight.ndim < 2 and other.weight.ndim < 2:  # both diagonal: stays per class
            w = (self.weight * other.weight).expand(self.num_classes).clone()
            return LogitMap("composed", w, other.weight * self.bias + other.bias)
        (a1, b1), (a2, b2) = self.matrix(), other.matrix()
        return LogitMap("composed", a2 @ a1, a2 @ b1 + b2)

    def params(self) -> dict:
        """JSON-ready parameters: ``{"temperature": T}``, ``{"scale", "bias"}`` or ``{"matrix", "bias"}``."""
        if self.method == "temperature":
            return {"temperature": 1.0 / float(self.weight)}
        key = "matrix" if self.weight.ndim == 2 else "scale"
        return {key: self.weight.tolist(), "bias": self.bias.tolist()}

    @classmethod
    def identity(cls, num_classes: int) -> LogitMap:
        """The identity map (a temperature map with ``T = 1``)."""
        return cls("temperature", torch.ones((), dtype=_F64), torch.zeros(num_classes, dtype=_F64))

    @classmethod
    def from_params(cls, method: str, params: dict, num_classes: int) -> LogitMap:
        """The inverse of :meth:`params`."""
        zeros = torch.zeros(num_classes, dtype=_F64)
        try:
            m = cls._from_params(method, params, zeros)
        except KeyError as e:
            raise ValueError(f"{method} parameters lack {e.args[0]!r}: got keys {sorted(params)}") from None
        if m.num_classes != num_classes:
            raise ValueError(f"{method} parameters are for {m.num_classes} classes, expected {num_classes}")
        return m

    @classmethod
    def _from_params(cls, method: str, params: dict, zeros: Tensor) -> LogitMap:
        if method == "temperature":
            t = float(params["temperature"])
            if not (math.isfinite(t) and t > 0):
                raise ValueError(f"temperature must be a finite number > 0, got {t}")
            return cls("temperature", torch.tensor(1.0 / t, dtype=_F64), zeros)
        if method in ("vector", "platt") or (method == "composed" and "scale" in params):
            return cls(method, torch.tensor(params["scale"], dtype=_F64), torch.tensor(params["bias"], dtype=_F64))
        if method in ("matrix", "composed"):
            return cls(method, torch.tensor(params["matrix"], dtype=_F64), torch.tensor(params["bias"], dtype=_F64))
        raise ValueError(f"unknown LogitMap method {method!r}; expected one of {_METHODS}")


# --------------------------------------------------------------------------------------------------- input checks
def _check_finite(z: Tensor, what: str) -> None:
    bad = int((~torch.isfinite(z)).sum())
    if bad:
        raise ValueError(f"{what} must be finite: {bad} of {z.numel()} values are nan or inf (for logits of "
                         "probabilities use torch.logit(p, eps=1e-7))")


def _resolve_l2(method: str, l2: float | None) -> float:
    if method == "temperature":
        if l2 is not None:
            raise ValueError("temperature scaling has no regularisation: leave l2=None")
        return 0.0
    value = DEFAULT_L2[method] if l2 is None else float(l2)
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"l2 must be a finite number >= 0, got {l2}")
    return value


# ---------------------------------------------------------------------------------------------- softmax: vector/matrix
def _transposed_chunks(z: Tensor, y: Tensor) -> list[tuple[Tensor, Tensor]]:
    """``(K, n)`` contiguous column blocks of ``z.T`` with their labels: the per-sample reductions over the K classes
    then run across rows, which is fast even for small K (a reduction over a short row is slow)."""
    rows = max(1, _CHUNK_ENTRIES // z.shape[1])
    return [(zc.T.contiguous(), yc) for zc, yc in zip(z.split(rows), y.split(rows))]


def _softmax_objective(chunks: list[tuple[Tensor, Tensor]], x: Tensor, method: str, l2: float
                       ) -> tuple[float, Tensor]:
    """Mean NLL of ``softmax(map(z))`` (+ the ODIR penalty) and its gradient in the flat parameters ``x``."""
    k, n = chunks[0][0].shape[0], sum(len(yc) for _, yc in chunks)
    w, b = (x[:k], x[k:]) if method == "vector" else (x[: k * k].view(k, k), x[k * k:])
    gw, gb = torch.zeros_like(w), torch.zeros_like(b)
    loss = 0.0
    for zt, yc in chunks:
        u = torch.addmm(b[:, None], w, zt) if method == "matrix" else zt * w[:, None] + b[:, None]  # (K, n)
        top = u.amax(0, keepdim=True)
        g = torch.sub(u, top).exp_()
        s = g.sum(0, keepdim=True)
        loss += float((top + s.log() - u.gather(0, yc[None])).sum())  # logsumexp(u) - u_y
        g.div_(s)[yc, torch.arange(len(yc))] -= 1.0  # softmax minus the one-hot label
        gb += g.sum(1)
        if method == "matrix":
            gw.addmm_(g, zt.T)
        else:
            gw += (g * zt).sum(1)
    loss, gw, gb = loss / n, gw / n, gb / n
    if l2 > 0:
        if method == "matrix":
            off = w - torch.diag(torch.diag(w))
            loss += l2 * float((off * off).sum()) / (k * (k - 1))
            gw += 2 * l2 * off / (k * (k - 1))
        loss += l2 * float((b * b).sum()) / k
        gb += 2 * l2 * b / k
    return loss, torch.cat([gw.reshape(-1), gb])


def _lbfgs(f, x0: Tensor, max_iter: int) -> Tensor:
    """Minimise ``f(x) -> (loss, grad)`` from ``x0`` with full-batch L-BFGS (strong Wolfe); never worse than ``x0``."""
    with torch.inference_mode(False), torch.no_grad():
        x = x0.clone()
        f0 = f(x)[0]
        opt = torch.optim.LBFGS([x], lr=1, max_iter=max_iter, max_eval=2 * max_iter, tolerance_grad=1e-10,
                                tolerance_change=1e-13, history_size=20, line_search_fn="strong_wolfe")

        def closure() -> float:
            loss, grad = f(x)
            x.grad = grad
            return loss

        opt.step(closure)
        return x.detach().clone() if f(x)[0] <= f0 else x0


def fit_softmax_map(logits: Tensor, labels: Tensor, method: str = "temperature", *, l2: float | None = None,
                    max_iter: int = 500) -> LogitMap:
    """Fit a classification map minimising the mean NLL of ``softmax(map(logits))``.

    ``temperature`` is :func:`fit_temperature` (same ``T``, in ``[0.01, 100]``). ``vector`` (Guo et al. 2017) fits
    ``z * s + b``; ``matrix`` fits ``z @ A.T + b`` with ODIR (Kull et al. 2019): the penalty
    ``l2 * (sum_{i != j} A_ij^2 / (K (K - 1)) + sum_j b_j^2 / K)`` (default ``l2=10``; for vector only the bias term,
    default ``0``). Both start from the temperature fit and never end with a higher objective (so, unpenalised, the
    NLL is at most temperature's), by full-batch L-BFGS on the CPU in float64.

    Args:
        logits: ``(N, K)`` finite logits (not probabilities), any device.
        labels: ``(N,)`` integer labels in ``[0, K)``.
        method: One of :data:`SOFTMAX_METHODS`.
        l2: Regularisation weight (vector, matrix); ``None`` is the default above.
        max_iter: Iterations of Newton (temperature) or L-BFGS.
    """
    if method not in SOFTMAX_METHODS:
        raise ValueError(f"unknown softmax calibration method {method!r}; expected one of {SOFTMAX_METHODS}")
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise ValueError(f"logits must be (N, K) with K >= 2, got shape {tuple(logits.shape)}")
    n, k = logits.shape
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(f"labels must be (N,) with N={n}, got shape {tuple(labels.shape)}")
    if n == 0:
        raise ValueError("no samples to fit a calibration map on")
    if method == "matrix" and k > MATRIX_MAX_CLASSES:
        raise ValueError(f"matrix scaling is limited to {MATRIX_MAX_CLASSES} classes (K*(K+1) parameters), got "
                         f"K={k}: use vector or temperature")
    l2 = _resolve_l2(method, l2)
    z = _cpu64(logits)
    _check_finite(z, "logits")
    y = labels.detach().to(device="cpu", dtype=torch.long)
    if int(y.min()) < 0 or int(y.max()) >= k:
        raise ValueError(f"labels must lie in [0, {k}), got [{int(y.min())}, {int(y.max())}]")
    t = fit_temperature(z, y, is_probs=False, max_iter=max_iter)
    temperature = LogitMap("temperature", torch.tensor(1.0 / t, dtype=_F64), torch.zeros(k, dtype=_F64))
    if method == "temperature":
        return temperature
    w0 = torch.full((k,), 1.0 / t, dtype=_F64) if method == "vector" else torch.eye(k, dtype=_F64).div_(t)
    x0 = torch.cat([w0.reshape(-1), torch.zeros(k, dtype=_F64)])
    chunks = _transposed_chunks(z, y)
    x = _lbfgs(lambda p: _softmax_objective(chunks, p, method, l2), x0, max_iter)
    w = x[:k] if method == "vector" else x[: k * k].view(k, k)
    return LogitMap(method, w.clone(), x[-k:].clone())


# ---------------------------------------------------------------------------------------------- sigmoid: detection
def _bce(x: Tensor, y: Tensor) -> Tensor:
    """Elementwise binary NLL of ``sigmoid(x)`` for targets ``y`` (stable: softplus(x) - y x)."""
    return torch.nn.functional.softplus(x) - y * x


def _fit_sigmoid_scale(z: Tensor, y: Tensor, max_iter: int = 200) -> float:
    """One scale ``a`` in ``[0.01, 100]`` minimising ``mean BCE(sigmoid(a z), y)``: safeguarded Newton on f'."""

    def grad_hess(a: float) -> tuple[float, float]:
        p = torch.sigmoid(a * z)
        return float(((p - y) * z).sum()), float((p * (1 - p) * z * z).sum())

    lo, hi = _SCALE_MIN, _SCALE_MAX
    if grad_hess(lo)[0] >= 0:
        return lo
    if grad_hess(hi)[0] <= 0:
        return hi
    a = 1.0
    for _ in range(max_iter):
        g, h = grad_hess(a)
        if g < 0:
            lo = a
        else:
            hi = a
        new = a - g / h if h > 0 else math.nan
        if not lo < new < hi:  # Newton left the bracket: bisect in log space
            new = math.sqrt(lo * hi)
        done = abs(new - a) <= 1e-13 * a
        a = new
        if done or hi - lo <= 1e-14 * a:
            break
    return a


def _fit_platt(z: Tensor, y: Tensor, c: Tensor, k: int, l2: float, max_iter: int = 50) -> tuple[Tensor, Tensor]:
    """Per-class ``a_c, b_c`` minimising ``sum_i BCE + l2 * sum_c ((a_c - 1)^2 + b_c^2)``, ``a_c`` in [0.01, 100].

    Every class is its own 2-parameter convex problem: damped Newton for all classes at once; a class whose ``a``
    leaves the bounds is refitted with ``a`` on the bound (the optimum of a convex problem over a half-line).
    """
    a, b = torch.ones(k, dtype=_F64), torch.zeros(k, dtype=_F64)

    def per_class(v: Tensor) -> Tensor:
        return torch.zeros(k, dtype=_F64).index_add_(0, c, v)

    def objective(a: Tensor, b: Tensor) -> Tensor:
        return per_class(_bce(a[c] * z + b[c], y)) + l2 * ((a - 1) ** 2 + b * b)

    def newton(a: Tensor, b: Tensor, free: Tensor) -> tuple[Tensor, Tensor]:
        f = objective(a, b)
        for _ in range(max_iter):
            p = torch.sigmoid(a[c] * z + b[c])
            r, w = p - y, p * (1 - p)
            ga, gb = per_class(r * z) + 2 * l2 * (a - 1), per_class(r) + 2 * l2 * b
            haa, hab, hbb = per_class(w * z * z) + 2 * l2, per_class(w * z), per_class(w) + 2 * l2
            haa, hbb = haa + 1e-12, hbb + 1e-12  # keeps a class with no boxes (and l2 = 0) solvable
            det = haa * hbb - hab * hab
            da = torch.where(free, (hbb * ga - hab * gb) / det, torch.zeros_like(a))
            db = torch.where(free, (haa * gb - hab * ga) / det, gb / hbb)
            slope = ga * da + gb * db  # >= 0: the decrease along -(da, db) per unit step
            active = (slope > 0) & (da.abs() + db.abs() > 1e-11)
            if not bool(active.any()):
                break
            step, todo = torch.ones(k, dtype=_F64), active
            for _ in range(40):  # per-class backtracking (Armijo; the slack absorbs the rounding of a large sum)
                f_new = objective(a - step * da, b - step * db)
                todo = todo & (f_new > f - 1e-4 * step * slope + 1e-12 * (1 + f.abs()))
                if not bool(todo.any()):
                    break
                step = torch.where(todo, step / 2, step)
            take = active & ~todo
            step = torch.where(take, step, torch.zeros_like(step))
            a, b, f = a - step * da, b - step * db, torch.where(take, f_new, f)
        return a, b

    a, b = newton(a, b, torch.ones(k, dtype=torch.bool))
    out = (a < _SCALE_MIN) | (a > _SCALE_MAX)
    if bool(out.any()):
        a = a.clamp(_SCALE_MIN, _SCALE_MAX)
        a, b = newton(a, b, ~out)
    return a, b


def fit_sigmoid_map(logits: Tensor, correct: Tensor, cls: Tensor, num_classes: int, method: str = "temperature", *,
                    l2: float | None = None) -> LogitMap:
    """Fit a detection map minimising the mean binary NLL of ``sigmoid(map(logit))`` over the kept boxes.

    ``temperature``: one scale ``a = 1/T`` in ``[0.01, 100]`` for every class, bias zero, so the order of the scores is
    kept. ``platt``: per class ``a_c`` (kept in ``[0.01, 100]``, so the order within a class is kept) and ``b_c``;
    the penalty ``l2 * ((a_c - 1)^2 + b_c^2)`` is added to each class's summed NLL (default ``l2=1``: worth about one
    box), so a class with few boxes stays near identity and a class with none is exactly identity.

    Args:
        logits: ``(N,)`` finite logit of each box's own class (the score before the sigmoid).
        correct: ``(N,)`` bool, whether the box matched a ground truth of its class (IoU >= 0.5).
        cls: ``(N,)`` class index of each box, in ``[0, num_classes)``.
        num_classes: ``K``.
        method: One of :data:`SIGMOID_METHODS`.
        l2: Pull toward identity (platt); ``None`` is the default above.
    """
    if method not in SIGMOID_METHODS:
        raise ValueError(f"unknown sigmoid calibration method {method!r}; expected one of {SIGMOID_METHODS}")
    if logits.ndim != 1 or correct.shape != logits.shape or cls.shape != logits.shape:
        raise ValueError(f"logits, correct and cls must all be (N,), got {tuple(logits.shape)}, "
                         f"{tuple(correct.shape)} and {tuple(cls.shape)}")
    if int(num_classes) < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    k = int(num_classes)
    if logits.shape[0] == 0:
        raise ValueError("no boxes to fit a calibration map on")
    l2 = _resolve_l2(method, l2)
    z = _cpu64(logits)
    _check_finite(z, "logits")
    y = correct.detach().to(device="cpu").to(_F64)
    c = cls.detach().to(device="cpu", dtype=torch.long)
    if int(c.min()) < 0 or int(c.max()) >= k:
        raise ValueError(f"cls must lie in [0, {k}), got [{int(c.min())}, {int(c.max())}]")
    if method == "temperature":
        a = _fit_sigmoid_scale(z, y)
        return LogitMap("temperature", torch.tensor(a, dtype=_F64), torch.zeros(k, dtype=_F64))
    a, b = _fit_platt(z, y, c, k, l2)
    return LogitMap("platt", a, b)


# ---------------------------------------------------------------------------------------------------- fit sizes
def check_fit_size(method: str, n_per_class: Tensor | Sequence[int], task: str, *,
                   n_correct: Tensor | Sequence[int] | int | None = None) -> None:
    """Raise ``ValueError`` naming the count needed and the count found when a fit would rest on too little data.

    Needs, for any method, :data:`MIN_SAMPLES` (20) images (``task="classify"``) or boxes (a detection task) in all;
    with ``n_correct`` (right top-1 images / matched boxes, per class or in all) at least :data:`MIN_CORRECT` right and
    :data:`MIN_WRONG` wrong; :data:`MIN_PER_CLASS` of every class (vector 10; platt none, its pull toward identity
    covers rare classes); matrix ``max(20, K // 2)`` of every class and ``K <=`` :data:`MATRIX_MAX_CLASSES` (100).

    Args:
        method: A method of :data:`SOFTMAX_METHODS` (classify) or :data:`SIGMOID_METHODS` (detection tasks).
        n_per_class: ``(K,)`` images per true class (classify) or kept boxes per predicted class (detection).
        task: ``classify`` or one of :data:`DETECTION_TASKS`.
        n_correct: Optional count of right samples (per class or a total).
    """
    if task == "classify":
        methods, unit = SOFTMAX_METHODS, "images"
    elif task in DETECTION_TASKS:
        methods, unit = SIGMOID_METHODS, "boxes"
    else:
        raise ValueError(f"unknown task {task!r}; expected 'classify' or one of {DETECTION_TASKS}")
    if method not in methods:
        raise ValueError(f"{method!r} calibration is not available for {task}; expected one of {methods}")
    counts = [int(v) for v in torch.as_tensor(n_per_class).reshape(-1).tolist()]
    k, total = len(counts), sum(counts)
    if total < MIN_SAMPLES:
        raise ValueError(f"{method} calibration needs at least {MIN_SAMPLES} {unit}, found {total}")
    if n_correct is not None:
        right = int(torch.as_tensor(n_correct).sum())
        if right < MIN_CORRECT or total - right < MIN_WRONG:
            raise ValueError(f"{method} calibration needs at least {MIN_CORRECT} correct and {MIN_WRONG} wrong "
                             f"{unit}, found {right} correct and {total - right} wrong of {total}")
    if method == "matrix" and k > MATRIX_MAX_CLASSES:
        raise ValueError(f"matrix calibration is limited to {MATRIX_MAX_CLASSES} classes, found {k}: "
                         "use vector or temperature")
    need = max(MIN_PER_CLASS[method], k // 2) if method == "matrix" else MIN_PER_CLASS[method]
    short = [(n, i) for i, n in enumerate(counts) if n < need]
    if short:
        n, i = min(short)
        raise ValueError(f"{method} calibration needs at least {need} {unit} of every class (K={k}), found {n} of "
                         f"class {i}; {len(short)} of {k} classes have fewer than {need}")
