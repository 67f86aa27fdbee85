"""The NumPy CPU kernels (yolo_ls/calibration/_cpu.py) against the torch path they replace on the CPU.

Every metric is computed twice on the same data: once as shipped (float32/float64 CPU tensors take the NumPy kernels)
and once with the kernels switched off (``_cpu.usable`` patched to False: the torch implementation of the same rules,
which the GPU runs). They must agree, on ties, on values exactly at bin edges, at 0 and 1, for the sparse classwise
path (K >= 4 * n_bins) and for the adaptive ECE's bucket selection.
"""

from __future__ import annotations

from pathlib import Path

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from yolo_ls.calibration import ClassificationCalibration, _cpu
from yolo_ls.calibration import metrics as M

FUNCS = ("ece", "mce", "ace", "cw_ece", "brier", "nll", "entropy", "accuracy", "confidence", "overconfidence")


def _all(probs: torch.Tensor, labels: torch.Tensor, n_bins: int) -> dict[str, float]:
    out = {}
    for name in FUNCS:
        fn = getattr(M, name)
        args = (probs,) if name in ("entropy", "confidence") else (probs, labels)
        kw = {"n_bins": n_bins} if name in ("ece", "mce", "ace", "cw_ece") else {}
        out[name] = float(fn(*args, **kw))
    cal = ClassificationCalibration(probs.shape[1], n_bins=n_bins)
    cal.update(probs[: len(probs) // 2], labels[: len(probs) // 2])
    cal.update(probs[len(probs) // 2 :], labels[len(probs) // 2 :])
    out.update({f"acc_{k}": v for k, v in cal.compute().items()})
    out["bins"] = cal.bins()["count"].tolist()
    return out


def _both(probs: torch.Tensor, labels: torch.Tensor, n_bins: int, monkeypatch: pytest.MonkeyPatch):
    fast = _all(probs, labels, n_bins)
    with monkeypatch.context() as m:
        m.setattr(_cpu, "usable", lambda *t: False)
        ref = _all(probs, labels, n_bins)
    return fast, ref


REL = 1e-12  # every sum is taken in float64, whatever the input dtype, on both paths


def _assert_same(fast: dict, ref: dict, tol: float = REL) -> None:
    """Every metric equal to ``tol`` relative (NaN equal to NaN; a floor of 1e-15 for values at 0)."""
    if "bins" in ref:
        assert fast["bins"] == ref["bins"]
    for k in ref:
        if k == "bins":
            continue
        a, b = fast[k], ref[k]
        assert (np.isnan(a) and np.isnan(b)) or abs(a - b) <= tol * abs(b) + 1e-15, (k, a, b)


def _softmax(n: int, k: int, scale: float, seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(n, k, generator=g, dtype=torch.float64)).softmax(1).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("n", "k", "scale"), [(5000, 10, 2.0), (700, 100, 4.0), (300, 2, 1.0), (50, 1, 1.0)])
def test_random_data_same_as_torch_path(n, k, scale, dtype, monkeypatch) -> None:
    probs = _softmax(n, k, scale, seed=n + k, dtype=dtype)
    labels = torch.randint(0, k, (n,), generator=torch.Generator().manual_seed(1))
    assert _cpu.usable(probs, labels)
    _assert_same(*_both(probs, labels, 15, monkeypatch))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ties_and_edges_same_as_torch_path(dtype, monkeypatch) -> None:
    # rows with tied maxima (uniform rows, two equal top classes), values exactly on k/15 and on 0.2/0.4, 0 and 1
    k, n_bins = 5, 15
    rows = [[0.2] * 5, [0.4, 0.4, 0.2, 0.0, 0.0], [0.0, 0.4, 0.4, 0.2, 0.0], [1.0, 0, 0, 0, 0], [0, 0, 0, 0, 1.0]]
    rows += [[3 / 15, 4 / 15, 8 / 15, 0.0, 0.0], [0.6, 0.2, 0.2, 0.0, 0.0], [0.7, 0.1, 0.1, 0.1, 0.0]]
    probs = torch.tensor(rows * 30, dtype=dtype)
    labels = torch.arange(len(probs)) % k
    fast, ref = _both(probs, labels, n_bins, monkeypatch)
    _assert_same(fast, ref)
    # the tie rule is argmax's first index: the uniform row is correct only for label 0
    conf, correct = M._top_label(probs[:5], torch.arange(5))
    assert correct.tolist() == [True, False, False, False, True]


def test_sparse_classwise_path_same_as_torch_path(monkeypatch) -> None:
    probs = _softmax(400, 80, 5.0, seed=3)  # K >= 4 * n_bins: only entries >= 1/15 are binned
    probs[::9] = 1 / 80  # exact uniform rows: every entry below the first edge
    labels = torch.randint(0, 80, (400,), generator=torch.Generator().manual_seed(2))
    _assert_same(*_both(probs, labels, 15, monkeypatch))


@pytest.mark.parametrize(
    "conf",
    [
        torch.full((1000,), 0.73),  # everything tied: one bucket, one bin
        torch.cat([torch.full((500,), 0.5), torch.full((500,), 0.9)]),  # ties across the median threshold
        0.999 + 0.001 * torch.rand(5000, generator=torch.Generator().manual_seed(0)),  # all in a few buckets
        torch.rand(7, generator=torch.Generator().manual_seed(1)),  # fewer samples than bins
        torch.tensor([0.25]),
        torch.tensor([0.0, 0.0, 1.0, 1.0, 0.5] * 9),
    ],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ace_bucket_selection_same_as_torch_path(conf, dtype, monkeypatch) -> None:
    conf = conf.to(dtype)
    correct = torch.arange(len(conf)) % 3 == 0
    fast = float(M._ace_from_top(conf, correct, 15))
    monkeypatch.setattr(_cpu, "usable", lambda *t: False)
    ref = float(M._ace_from_top(conf, correct, 15))
    assert fast == pytest.approx(ref, abs=1e-12)
    # and the order of the samples does not matter
    perm = torch.randperm(len(conf), generator=torch.Generator().manual_seed(5))
    assert float(M._ace_from_top(conf[perm], correct[perm], 15)) == pytest.approx(ref, abs=1e-12)


def test_ace_negative_values_fall_back() -> None:
    assert _cpu.ace_sums(torch.tensor([-0.5, 0.2, 0.3]), torch.tensor([True, False, True]), 15) is None


def test_fold_boundary_does_not_change_results(monkeypatch) -> None:
    probs, labels = _softmax(999, 7, 2.0, seed=4), torch.randint(0, 7, (999,))
    ref = ClassificationCalibration(7)
    ref.update(probs, labels)
    monkeypatch.setattr(ClassificationCalibration, "FOLD_SAMPLES", 10)
    cal = ClassificationCalibration(7)
    for part in zip(probs.split(33), labels.split(33)):
        cal.update(*part)
    _assert_same(cal.compute(), ref.compute())
    state = cal.state_dict()
    assert int(state["n"]) == 999 and state["top_conf"].shape == (999,)


def test_labels_buffer_reused_by_caller() -> None:
    """update keeps per-sample vectors until the fold: a caller overwriting its labels tensor must not change them."""
    probs = _softmax(64, 4, 2.0, seed=6)
    labels = torch.randint(0, 4, (64,), generator=torch.Generator().manual_seed(3))
    ref = ClassificationCalibration(4)
    ref.update(probs, labels.clone())
    cal = ClassificationCalibration(4)
    buf = labels.clone()
    cal.update(probs, buf)
    buf.fill_(0)
    assert cal.compute() == pytest.approx(ref.compute())


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(np.float32, st.tuples(st.integers(1, 40), st.integers(1, 6)),
               elements=st.sampled_from([0.0, 0.2, 0.4, 1 / 15, 2 / 15, 0.5, 0.7, 1.0, 0.33, 0.066])),
    st.integers(1, 20),
)
def test_property_same_as_torch_path(raw, n_bins) -> None:
    probs = torch.from_numpy(raw)  # not normalised: the kernels must follow the same rules on any values in [0, 1]
    labels = torch.arange(probs.shape[0]) % probs.shape[1]
    fast = _all(probs, labels, n_bins)
    orig = _cpu.usable
    _cpu.usable = lambda *t: False
    try:
        ref = _all(probs, labels, n_bins)
    finally:
        _cpu.usable = orig
    _assert_same(fast, ref)


def test_small_batches_are_staged_and_equal_one_big_batch() -> None:
    """Batches of fewer than STAGE_ENTRIES entries are copied into a staging matrix: the caller may overwrite its
    tensors right after update, dtype changes flush the stage, and every result equals one update of everything."""
    probs = _softmax(3000, 10, 2.0, seed=8)
    labels = torch.randint(0, 10, (3000,), generator=torch.Generator().manual_seed(2))
    ref = ClassificationCalibration(10)
    ref.update(probs, labels)
    cal = ClassificationCalibration(10)
    buf_p, buf_y = torch.empty(64, 10), torch.empty(64, dtype=torch.long)
    for i in range(0, 3000, 64):
        n = min(64, 3000 - i)
        buf_p[:n], buf_y[:n] = probs[i : i + n], labels[i : i + n]
        cal.update(buf_p[:n], buf_y[:n])
        buf_p.fill_(float("nan"))  # the caller reuses its buffers
        buf_y.fill_(-1)
        if i == 1024:
            assert cal._stage_n > 0  # still staged, not processed yet
    _assert_same(cal.compute(), ref.compute())
    assert cal.bins()["count"].tolist() == ref.bins()["count"].tolist()
    assert torch.equal(cal.state_dict()["top_conf"], ref.state_dict()["top_conf"])  # sample order kept
    mixed = ClassificationCalibration(10)
    mixed.update(probs[:100], labels[:100])
    mixed.update(probs[100:].double(), labels[100:])  # another dtype: the float32 stage is flushed first
    _assert_same(mixed.compute(), ref.compute())


@pytest.mark.parametrize("n_bins", [1, 2, 3, 7, 10, 11, 15, 19, 20, 30, 100, 1000])
def test_scaled_float32_binning_equals_the_rule_at_every_edge(n_bins) -> None:
    """The float64 scaled truncation used for float32 (when a scale exists) bins exactly as bin_index: at every edge
    rounded to float32, the float32 just below and above it, 0, 1 and random values."""
    edges = (np.arange(n_bins + 1) / n_bins).astype(np.float32)
    rand = np.random.default_rng(n_bins).random(5000).astype(np.float32)
    x = np.concatenate([edges, np.nextafter(edges, np.float32(0)), np.nextafter(edges, np.float32(2)), rand, [0, 1]])
    x = x[(x >= 0) & (x <= 1)].astype(np.float32)
    got = _cpu._bin_key(x, n_bins, None, "test_key").copy()
    assert np.array_equal(got, _cpu.bin_index(x, n_bins).astype(np.intp))
    if n_bins in (10, 15, 20):  # the common counts have a scale (else the five-step rule ran, trivially equal)
        assert _cpu._float32_scale(n_bins) is not None


def _stream(probs: torch.Tensor, labels: torch.Tensor, cuts: list[int]) -> dict[str, float]:
    """Every metric of ClassificationCalibration fed ``probs`` in the batches that ``cuts`` marks."""
    cal = ClassificationCalibration(probs.shape[1])
    edges = [0, *sorted(cuts), len(probs)]
    for a, b in zip(edges[:-1], edges[1:]):
        cal.update(probs[a:b], labels[a:b])
    return cal.compute()


@settings(max_examples=25, deadline=None)
@given(
    st.integers(1, 3000), st.sampled_from([2, 10, 33, 120]), st.integers(0, 2**16),
    st.lists(st.integers(0, 3000), max_size=6), st.sampled_from([torch.float32, torch.float64]), st.booleans(),
)
def test_property_order_chunks_and_class_order_do_not_matter(n, k, seed, cuts, dtype, torch_path) -> None:
    """A CPU with another SIMD width splits a float sum differently: that is the same as summing in other chunks and
    orders. Shuffled samples, re-chunked batches and permuted classes give the same metrics to 1e-12, on the NumPy
    kernels and on the torch path alike."""
    probs = _softmax(n, k, 3.0, seed, dtype)
    g = torch.Generator().manual_seed(seed + 1)
    labels = torch.randint(0, k, (n,), generator=g)
    orig = _cpu.usable
    if torch_path:
        _cpu.usable = lambda *t: False
    try:
        ref = _stream(probs, labels, [])
        perm = torch.randperm(n, generator=g)
        _assert_same(_stream(probs[perm], labels[perm], []), ref)
        _assert_same(_stream(probs, labels, [c % (n + 1) for c in cuts]), ref)
        cls = torch.randperm(k, generator=g)  # class j of the new order is class cls[j] of the old one
        _assert_same(_stream(probs[:, cls], torch.argsort(cls)[labels], cuts), ref)
    finally:
        _cpu.usable = orig


_SIMD_SCRIPT = """
import json, sys, numpy as np, torch
sys.path.insert(0, sys.argv[1])
from tests.test_calibration_cpu import _softmax, _stream
print(json.dumps({
    "features": [f for f, on in np._core._multiarray_umath.__cpu_features__.items() if on],
    "metrics": {f"{n}x{k}": _stream(_softmax(n, k, 3.0, 7), torch.arange(n) % k, [n // 3])
                for n, k in ((20000, 10), (3000, 120))},
}))
"""


def test_numpy_simd_features_do_not_change_the_metrics(tmp_path) -> None:
    """The same metrics, to 1e-12, with NumPy's dispatched SIMD features (AVX-512, AVX2, ...) turned off in a fresh
    process (``NPY_DISABLE_CPU_FEATURES``; the build's baseline stays on)."""
    import json
    import os
    import subprocess
    import sys

    root = str(Path(__file__).resolve().parents[1])

    def run(disable: str) -> dict:
        env = {**os.environ, "NPY_DISABLE_CPU_FEATURES": disable}
        out = subprocess.run([sys.executable, "-c", _SIMD_SCRIPT, root], env=env, capture_output=True, text=True,
                             check=True, cwd=tmp_path)
        return json.loads(out.stdout.strip().splitlines()[-1])

    base = run("")
    dispatched = [f for f in ("AVX512_SPR", "AVX512_ICL", "X86_V4", "X86_V3") if f in base["features"]]
    if not dispatched:
        pytest.skip("NumPy dispatches no SIMD feature above its baseline on this CPU")
    low = run(" ".join(dispatched))
    assert not set(dispatched) & set(low["features"])  # really turned off
    for case, ref in base["metrics"].items():
        _assert_same(low["metrics"][case], ref)
