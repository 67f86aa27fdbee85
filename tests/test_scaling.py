"""Tests for yolo_ls.calibration.scaling: the fits against independent oracles (netcal, scipy, sklearn), nesting,
recovery of known maps, the LogitMap algebra and check_fit_size."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from yolo_ls.calibration import fit_temperature
from yolo_ls.calibration.scaling import (
    MATRIX_MAX_CLASSES,
    MIN_PER_CLASS,
    MIN_SAMPLES,
    LogitMap,
    check_fit_size,
    fit_sigmoid_map,
    fit_softmax_map,
)

F64 = torch.float64


def _classification(n: int = 2000, k: int = 10, scale: float = 1.0, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits with the true class raised by 2, times ``scale`` (> 1: overconfident, < 1: underconfident)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, k, (n,), generator=g)
    z = torch.randn(n, k, generator=g, dtype=F64)
    z[torch.arange(n), y] += 2.0
    return z * scale, y


def _sample_softmax(z: torch.Tensor, a: torch.Tensor, b: torch.Tensor, seed: int) -> torch.Tensor:
    """Labels drawn from softmax(z @ a.T + b)."""
    g = torch.Generator().manual_seed(seed)
    return torch.multinomial(torch.softmax(z @ a.T + b, 1), 1, generator=g).squeeze(1)


def _boxes(n: int, k: int, a: list[float], b: list[float], seed: int = 0):
    """Detection boxes: class, logit, and correct ~ Bernoulli(sigmoid(a_c z + b_c))."""
    g = torch.Generator().manual_seed(seed)
    c = torch.randint(0, k, (n,), generator=g)
    z = torch.randn(n, generator=g, dtype=F64) * 2 + 1
    p = torch.sigmoid(torch.tensor(a, dtype=F64)[c] * z + torch.tensor(b, dtype=F64)[c])
    return z, torch.bernoulli(p, generator=g).bool(), c


def _nll(m: LogitMap, z: torch.Tensor, y: torch.Tensor) -> float:
    return float(F.cross_entropy(m(z), y))


# ------------------------------------------------------------------------------------------ temperature vs oracles
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pyro, imported by netcal
@pytest.mark.parametrize("scale", [3.0, 0.4], ids=["overconfident", "underconfident"])
def test_softmax_temperature_matches_netcal_and_scipy(scale):
    """T agrees with netcal's TemperatureScaling (scipy L-BFGS-B, numerical gradient) to 1e-3 and with a bounded
    scalar minimisation of the NLL written here in numpy to 1e-6; it is fit_temperature's T exactly."""
    netcal_scaling = pytest.importorskip("netcal.scaling")
    from scipy.optimize import minimize_scalar
    from scipy.special import logsumexp

    z, y = _classification(scale=scale)
    m = fit_softmax_map(z, y, "temperature")
    t = m.params()["temperature"]
    assert m.method == "temperature" and t == pytest.approx(fit_temperature(z, y), rel=1e-15)
    assert (t > 1) == (scale > 1)  # overconfident logits are softened, underconfident ones sharpened

    ts = netcal_scaling.TemperatureScaling()
    ts.fit(torch.softmax(z, 1).numpy(), y.numpy())
    t_netcal = 1.0 / float(np.asarray(ts.weights).ravel()[0])  # netcal's weight multiplies the logits: 1/T
    assert t == pytest.approx(t_netcal, rel=1e-3)

    zn, yn = z.numpy(), y.numpy()

    def nll(log_t: float) -> float:
        u = zn / math.exp(log_t)
        return float(np.mean(logsumexp(u, 1) - u[np.arange(len(yn)), yn]))

    ref = minimize_scalar(nll, bounds=(-3, 3), method="bounded", options={"xatol": 1e-10})
    assert t == pytest.approx(math.exp(ref.x), rel=1e-6)


def test_sigmoid_temperature_matches_scipy():
    """One scale for every class; it is the minimiser of the mean binary NLL (scipy, written here in numpy)."""
    from scipy.optimize import minimize_scalar

    z, y, c = _boxes(5000, 4, a=[0.5, 0.6, 0.4, 0.7], b=[0.0] * 4)
    m = fit_sigmoid_map(z, y, c, 4, "temperature")
    assert m.method == "temperature" and m.weight.ndim == 0 and not m.bias.any()
    zn, yn = z.numpy(), y.numpy().astype(float)
    ref = minimize_scalar(lambda a: float(np.mean(np.logaddexp(0, a * zn) - yn * a * zn)), bounds=(0.01, 100),
                          method="bounded", options={"xatol": 1e-12})
    assert float(m.weight) == pytest.approx(ref.x, rel=1e-6)
    assert m.params()["temperature"] == pytest.approx(1 / ref.x, rel=1e-6) and m.params()["temperature"] > 1
    # order of the scores is kept, across classes too
    mapped = m.per_box(z, c)
    assert torch.equal(mapped.argsort(stable=True), z.argsort(stable=True))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pyro, imported by netcal
def test_sigmoid_temperature_matches_netcal():
    """netcal's detection TemperatureScaling (sigmoid of logit(conf) / T) gives the same scale to 1e-3."""
    netcal_scaling = pytest.importorskip("netcal.scaling")
    z, y, c = _boxes(5000, 4, a=[0.5, 0.6, 0.4, 0.7], b=[0.0] * 4)
    ts = netcal_scaling.TemperatureScaling(detection=True)
    ts.fit(torch.sigmoid(z).numpy(), y.numpy())
    a = float(fit_sigmoid_map(z, y, c, 4, "temperature").weight)
    assert a == pytest.approx(float(np.asarray(ts.weights).ravel()[0]), rel=1e-3)


def test_sigmoid_temperature_is_bounded():
    z = torch.linspace(-3, 3, 40, dtype=F64)
    separable = fit_sigmoid_map(z, z > 0, torch.zeros(40, dtype=torch.long), 1, "temperature")
    assert float(separable.weight) == 100.0  # T = 0.01, as fit_temperature's bound
    anti = fit_sigmoid_map(z, z < 0, torch.zeros(40, dtype=torch.long), 1, "temperature")
    assert float(anti.weight) == 0.01


def test_platt_unregularised_matches_sklearn():
    """l2=0: per class exactly the logistic regression of `correct` on the logit (sklearn, no penalty)."""
    from sklearn.linear_model import LogisticRegression

    k = 4
    z, y, c = _boxes(8000, k, a=[0.5, 0.8, 1.5, 0.3], b=[-0.5, 0.2, 1.0, -1.0])
    m = fit_sigmoid_map(z, y, c, k, "platt", l2=0.0)
    assert m.method == "platt" and m.weight.shape == (k,) and m.bias.shape == (k,)
    for j in range(k):
        sel = (c == j).numpy()
        lr = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(z.numpy()[sel, None], y.numpy()[sel])
        assert float(m.weight[j]) == pytest.approx(lr.coef_[0, 0], abs=1e-6)
        assert float(m.bias[j]) == pytest.approx(lr.intercept_[0], abs=1e-6)


def test_platt_regularised_matches_scipy_and_pulls_rare_classes_to_identity():
    """Default l2: per class the minimiser of sum BCE + l2 ((a-1)^2 + b^2) (scipy L-BFGS-B on a numpy objective);
    a class with 3 boxes stays near identity, a class with none is exactly identity."""
    from scipy.optimize import minimize

    z, y, c = _boxes(3000, 2, a=[0.5, 2.0], b=[-1.0, 0.5])
    z = torch.cat([z, torch.tensor([1.0, 2.0, 3.0], dtype=F64)])  # class 2: 3 separable boxes
    y = torch.cat([y, torch.tensor([False, False, True])])
    c = torch.cat([c, torch.tensor([2, 2, 2])])
    m = fit_sigmoid_map(z, y, c, 4, "platt")
    l2 = 1.0  # the documented default
    for j in range(3):
        zj, yj = z[c == j].numpy(), y[c == j].numpy().astype(float)

        def f(p, zj=zj, yj=yj):
            x = p[0] * zj + p[1]
            r = 1 / (1 + np.exp(-x)) - yj
            loss = np.sum(np.logaddexp(0, x) - yj * x) + l2 * ((p[0] - 1) ** 2 + p[1] ** 2)
            return loss, np.array([np.sum(r * zj) + 2 * l2 * (p[0] - 1), np.sum(r) + 2 * l2 * p[1]])

        ref = minimize(f, [1.0, 0.0], jac=True, method="L-BFGS-B", options={"ftol": 1e-15, "gtol": 1e-12})
        assert float(m.weight[j]) == pytest.approx(ref.x[0], abs=1e-6)
        assert float(m.bias[j]) == pytest.approx(ref.x[1], abs=1e-6)
    unreg = fit_sigmoid_map(z, y, c, 4, "platt", l2=0.0)
    assert abs(float(m.weight[2]) - 1) + abs(float(m.bias[2])) < 1  # unregularised, the separable boxes run off:
    assert abs(float(unreg.weight[2]) - 1) + abs(float(unreg.bias[2])) > 10
    assert float(m.weight[3]) == 1.0 and float(m.bias[3]) == 0.0
    assert float(unreg.weight[3]) == 1.0 and float(unreg.bias[3]) == 0.0


def test_platt_keeps_the_order_within_a_class():
    """An anti-informative class gets the smallest scale (0.01), not a negative one, and its best bias for it."""
    from scipy.optimize import minimize_scalar

    z = torch.linspace(-2, 2, 200, dtype=F64)
    y = torch.bernoulli(torch.sigmoid(-z), generator=torch.Generator().manual_seed(0)).bool()
    m = fit_sigmoid_map(z, y, torch.zeros(200, dtype=torch.long), 1, "platt")
    assert float(m.weight[0]) == 0.01
    zn, yn = z.numpy(), y.numpy().astype(float)
    ref = minimize_scalar(lambda b: float(np.sum(np.logaddexp(0, 0.01 * zn + b) - yn * (0.01 * zn + b)) + b * b
                                          + (0.01 - 1) ** 2), bounds=(-5, 5), method="bounded",
                          options={"xatol": 1e-12})
    assert float(m.bias[0]) == pytest.approx(ref.x, abs=1e-6)


# ---------------------------------------------------------------------------------------------- nesting, recovery
@pytest.mark.parametrize("l2", [None, 0.0], ids=["default-l2", "l2=0"])
def test_richer_maps_fit_at_least_as_well(l2):
    """NLL on the fit data: vector, matrix <= temperature <= identity (the maps are nested and start from T)."""
    z, y = _classification(n=600, k=5, scale=4.0, seed=1)
    identity = _nll(LogitMap.identity(5), z, y)
    temperature = _nll(fit_softmax_map(z, y), z, y)
    vector = _nll(fit_softmax_map(z, y, "vector", l2=l2), z, y)
    matrix = _nll(fit_softmax_map(z, y, "matrix", l2=l2), z, y)
    assert vector <= temperature + 1e-12 and matrix <= temperature + 1e-12 and temperature <= identity
    assert temperature < identity - 0.01 and min(vector, matrix) < temperature  # each step really helps here
    if l2 == 0.0:
        assert matrix <= vector + 1e-9


def _standard_errors(nll, theta: torch.Tensor, n: int) -> torch.Tensor:
    """Asymptotic standard errors of a maximum-likelihood estimate: sqrt(diag(H^-1) / n), H the mean-NLL Hessian."""
    h = torch.autograd.functional.hessian(nll, theta)
    return (torch.linalg.inv(h).diagonal() / n).sqrt()


def test_vector_scaling_recovers_a_known_map():
    """Labels drawn from softmax(z * s + b): the fit (l2=0) lands within 5 standard errors of s and of the
    differences b_k - b_K (softmax only sees differences; the fit keeps sum(b) = 0), the errors taken from the
    inverse Hessian of the mean NLL at the fit (the asymptotic covariance of the MLE)."""
    k, n = 5, 20_000
    s_true = torch.tensor([0.5, 0.8, 1.0, 1.3, 0.7], dtype=F64)
    b_true = torch.tensor([0.3, -0.2, 0.0, 0.5, -0.4], dtype=F64)
    z = torch.randn(n, k, generator=torch.Generator().manual_seed(2), dtype=F64) * 2
    y = _sample_softmax(z, torch.diag(s_true), b_true, seed=3)
    m = fit_softmax_map(z, y, "vector", l2=0.0)
    assert abs(float(m.bias.sum())) < 1e-9

    def nll(theta):  # s (K), b_k - b_K (K - 1)
        return F.cross_entropy(z * theta[:k] + torch.cat([theta[k:], theta.new_zeros(1)]), y)

    theta_hat = torch.cat([m.weight, m.bias[:-1] - m.bias[-1]])
    theta_true = torch.cat([s_true, b_true[:-1] - b_true[-1]])
    se = _standard_errors(nll, theta_hat, n)
    assert float(se.max()) < 0.05  # the test has power: N is large enough for a tight check
    assert bool(((theta_hat - theta_true).abs() < 5 * se).all()), ((theta_hat - theta_true) / se).tolist()


def test_matrix_scaling_recovers_a_known_map():
    """Labels drawn from softmax(z @ A.T + b): with l2=0 the fit is within 5 standard errors of the identifiable
    differences A_k - A_K, b_k - b_K (same justification as for vector scaling); ODIR (default l2) shrinks the
    off-diagonal entries toward 0."""
    k, n = 4, 20_000
    a_true = torch.tensor([[0.8, 0.2, 0.0, -0.1], [0.1, 0.6, 0.3, 0.0], [0.0, -0.2, 1.1, 0.2], [0.2, 0.0, 0.1, 0.5]],
                          dtype=F64)
    b_true = torch.tensor([0.2, -0.3, 0.1, 0.0], dtype=F64)
    z = torch.randn(n, k, generator=torch.Generator().manual_seed(4), dtype=F64) * 2
    y = _sample_softmax(z, a_true, b_true, seed=5)
    m = fit_softmax_map(z, y, "matrix", l2=0.0)
    a_hat, b_hat = m.matrix()

    def nll(theta):  # rows 0..K-2 of A - A_K, then b_k - b_K
        a = torch.cat([theta[: (k - 1) * k].view(k - 1, k), theta.new_zeros(1, k)])
        return F.cross_entropy(z @ a.T + torch.cat([theta[(k - 1) * k:], theta.new_zeros(1)]), y)

    def reduced(a, b):
        return torch.cat([(a[:-1] - a[-1]).reshape(-1), b[:-1] - b[-1]])

    theta_hat, theta_true = reduced(a_hat, b_hat), reduced(a_true, b_true)
    se = _standard_errors(nll, theta_hat, n)
    assert float(se.max()) < 0.05
    assert bool(((theta_hat - theta_true).abs() < 5 * se).all()), ((theta_hat - theta_true) / se).tolist()
    off = ~torch.eye(k, dtype=torch.bool)
    odir = fit_softmax_map(z[:400], y[:400], "matrix", l2=1e3)
    free = fit_softmax_map(z[:400], y[:400], "matrix", l2=0.0)
    assert float(odir.weight[off].abs().sum()) < 0.5 * float(free.weight[off].abs().sum())


def test_fits_are_deterministic_and_work_under_inference_mode():
    z, y = _classification(n=300, k=4, seed=6)
    first = fit_softmax_map(z, y, "vector")
    with torch.inference_mode():
        second = fit_softmax_map(z.clone(), y.clone(), "vector")
        zb, yb, cb = _boxes(300, 3, a=[0.5, 1, 2], b=[0, 0, 0])
        platt = fit_sigmoid_map(zb, yb, cb, 3, "platt")
    assert torch.equal(first.weight, second.weight) and torch.equal(first.bias, second.bias)
    assert torch.equal(platt.weight, fit_sigmoid_map(zb, yb, cb, 3, "platt").weight)
    assert first.weight.dtype == F64 and first.weight.device.type == "cpu" and not first.weight.is_inference()


def test_fit_input_errors():
    z, y = _classification(n=50, k=3)
    bad = z.clone()
    bad[3, 1] = math.inf
    with pytest.raises(ValueError, match=r"finite: 1 of 150"):
        fit_softmax_map(bad, y, "vector")
    with pytest.raises(ValueError, match=r"finite"):
        fit_sigmoid_map(torch.tensor([0.0, math.nan]), torch.tensor([True, False]), torch.tensor([0, 0]), 1)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        fit_softmax_map(z, y + 1, "vector")
    with pytest.raises(ValueError, match=r"cls must lie in \[0, 2\)"):
        fit_sigmoid_map(torch.zeros(2), torch.tensor([True, False]), torch.tensor([0, 2]), 2, "platt")
    with pytest.raises(ValueError, match="unknown softmax calibration method 'platt'"):
        fit_softmax_map(z, y, "platt")
    with pytest.raises(ValueError, match="unknown sigmoid calibration method 'vector'"):
        fit_sigmoid_map(torch.zeros(2), torch.tensor([True, False]), torch.tensor([0, 0]), 1, "vector")
    with pytest.raises(ValueError, match="leave l2=None"):
        fit_softmax_map(z, y, "temperature", l2=1.0)
    with pytest.raises(ValueError, match="l2 must be a finite number >= 0"):
        fit_softmax_map(z, y, "matrix", l2=-1.0)
    with pytest.raises(ValueError, match=f"limited to {MATRIX_MAX_CLASSES} classes"):
        fit_softmax_map(torch.zeros(2, MATRIX_MAX_CLASSES + 1), torch.tensor([0, 1]), "matrix")
    with pytest.raises(ValueError, match="no samples"):
        fit_softmax_map(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long), "vector")


# ---------------------------------------------------------------------------------------------------- the map
def _maps(k: int = 4) -> dict[str, LogitMap]:
    g = torch.Generator().manual_seed(7)
    return {
        "identity": LogitMap.identity(k),
        "temperature": LogitMap("temperature", torch.tensor(0.7, dtype=F64), torch.zeros(k, dtype=F64)),
        "vector": LogitMap("vector", torch.rand(k, generator=g, dtype=F64) + 0.5, torch.randn(k, generator=g)),
        "platt": LogitMap("platt", torch.rand(k, generator=g, dtype=F64) + 0.5, torch.randn(k, generator=g)),
        "matrix": LogitMap("matrix", torch.eye(k) + 0.1 * torch.randn(k, k, generator=g), torch.randn(k, generator=g)),
    }


@pytest.mark.parametrize("name", list(_maps()))
def test_logit_map_call_matrix_per_box_params(name):
    m = _maps()[name]
    z = torch.randn(50, 4, generator=torch.Generator().manual_seed(8))
    a, b = m.matrix()
    assert a.shape == (4, 4) and b.shape == (4,) and m.num_classes == 4
    out = m(z)
    assert out.dtype == F64 and torch.allclose(out, z.double() @ a.T + b, rtol=0, atol=1e-12)
    cls = torch.randint(0, 4, (50,), generator=torch.Generator().manual_seed(9))
    if m.weight.ndim < 2:
        own = z.gather(1, cls[:, None]).squeeze(1)
        assert torch.allclose(m.per_box(own, cls), out.gather(1, cls[:, None]).squeeze(1), rtol=0, atol=1e-12)
    else:
        with pytest.raises(ValueError, match="needs all K logits"):
            m.per_box(z[:, 0], cls)
    params = json.loads(json.dumps(m.params()))
    back = LogitMap.from_params(m.method, params, 4)
    assert back.method == m.method
    assert torch.allclose(back.weight, m.weight, rtol=1e-15, atol=0) and torch.equal(back.bias, m.bias)
    if m.method != "temperature":  # a temperature holds no K
        with pytest.raises(ValueError, match="are for 4 classes, expected 5"):
            LogitMap.from_params(m.method, params, 5)


def test_logit_map_params_shapes():
    maps = _maps()
    assert maps["identity"].params() == {"temperature": 1.0}
    assert maps["temperature"].params() == {"temperature": pytest.approx(1 / 0.7)}
    assert set(maps["vector"].params()) == {"scale", "bias"} and set(maps["platt"].params()) == {"scale", "bias"}
    assert set(maps["matrix"].params()) == {"matrix", "bias"}
    assert isinstance(maps["matrix"].params()["matrix"][0][0], float)


@pytest.mark.parametrize("first", list(_maps()))
@pytest.mark.parametrize("second", list(_maps()))
def test_logit_map_then_is_composition(first, second):
    m1, m2 = _maps()[first], _maps()[second]
    z = torch.randn(20, 4, generator=torch.Generator().manual_seed(10), dtype=F64)
    both = m1.then(m2)
    assert torch.allclose(both(z), m2(m1(z)), rtol=0, atol=1e-12)
    temperatures = {"identity", "temperature"}
    assert both.method == ("temperature" if {first, second} <= temperatures else "composed")
    if first in temperatures and second in temperatures:
        assert float(both.weight) == pytest.approx(float(m1.weight) * float(m2.weight))
    back = LogitMap.from_params(both.method, json.loads(json.dumps(both.params())), 4)
    assert torch.allclose(back(z), both(z), rtol=0, atol=1e-12)
    if both.weight.ndim < 2:
        cls = torch.arange(20) % 4
        own = z.gather(1, cls[:, None]).squeeze(1)
        assert torch.allclose(both.per_box(own, cls), m2.per_box(m1.per_box(own, cls), cls), rtol=0, atol=1e-12)


def test_identity_is_identity():
    z = torch.randn(10, 3, dtype=F64)
    ident = LogitMap.identity(3)
    assert torch.equal(ident(z), z) and torch.equal(ident.per_box(z[:, 1], torch.ones(10, dtype=torch.long)), z[:, 1])
    m = _maps(3)["vector"]
    assert torch.equal(ident.then(m)(z), m(z)) and torch.equal(m.then(ident)(z), m(z))


def test_logit_map_validation():
    with pytest.raises(ValueError, match="unknown LogitMap method"):
        LogitMap("dirichlet", torch.ones(2), torch.zeros(2))
    with pytest.raises(ValueError, match=r"vector weight must have shape \(3,\)"):
        LogitMap("vector", torch.ones(2), torch.zeros(3))
    with pytest.raises(ValueError, match="zero bias"):
        LogitMap("temperature", torch.tensor(1.0), torch.ones(3))
    with pytest.raises(ValueError, match="non-finite"):
        LogitMap("platt", torch.tensor([1.0, math.nan]), torch.zeros(2))
    with pytest.raises(ValueError, match="finite number > 0"):
        LogitMap.from_params("temperature", {"temperature": 0.0}, 3)
    with pytest.raises(ValueError, match="lack 'bias'"):
        LogitMap.from_params("vector", {"scale": [1.0, 1.0]}, 2)
    with pytest.raises(ValueError, match="cannot compose"):
        LogitMap.identity(2).then(LogitMap.identity(3))
    with pytest.raises(ValueError, match=r"expected \(N, 3\) logits"):
        LogitMap.identity(3)(torch.zeros(4, 2))


# --------------------------------------------------------------------------------------------------- fit sizes
@pytest.mark.parametrize(
    ("method", "counts", "task", "kwargs", "message"),
    [
        ("temperature", [5, 6, 4], "classify", {}, f"at least {MIN_SAMPLES} images, found 15"),
        ("temperature", [10, 10], "detect", {"n_correct": [10, 10]}, "1 correct and 1 wrong boxes, found 20 correct "
                                                                    "and 0 wrong of 20"),
        ("platt", [30, 0], "segment", {"n_correct": 0}, "found 0 correct and 30 wrong"),
        ("vector", [50, 9, 40], "classify", {}, f"at least {MIN_PER_CLASS['vector']} images of every class "
                                                r"\(K=3\), found 9 of class 1; 1 of 3 classes"),
        ("matrix", [25] * 4 + [19], "classify", {}, "at least 20 images of every class \\(K=5\\), found 19 of class 4"),
        ("matrix", [500] * (MATRIX_MAX_CLASSES + 1), "classify", {}, f"limited to {MATRIX_MAX_CLASSES} classes, "
                                                                     f"found {MATRIX_MAX_CLASSES + 1}"),
        ("platt", [30], "classify", {}, "'platt' calibration is not available for classify"),
        ("vector", [30], "detect", {}, "'vector' calibration is not available for detect"),
        ("temperature", [30], "track", {}, "unknown task 'track'"),
    ],
)
def test_check_fit_size_names_the_counts(method, counts, task, kwargs, message):
    with pytest.raises(ValueError, match=message):
        check_fit_size(method, counts, task, **kwargs)


def test_check_fit_size_accepts_enough():
    check_fit_size("temperature", [MIN_SAMPLES], "classify", n_correct=[MIN_SAMPLES - 1])
    check_fit_size("platt", [MIN_SAMPLES, 0, 0], "obb", n_correct=torch.tensor([3, 0, 0]))
    check_fit_size("vector", [10] * 3, "classify")
    check_fit_size("matrix", torch.tensor([40] * 80), "classify")  # max(20, 80 // 2)
    check_fit_size("matrix", [50] * MATRIX_MAX_CLASSES, "classify")
    with pytest.raises(ValueError, match=r"at least 50 images of every class \(K=100\), found 49 of class 0"):
        check_fit_size("matrix", [49] + [50] * (MATRIX_MAX_CLASSES - 1), "classify")
