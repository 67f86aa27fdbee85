"""The label-smoothing variants: MbLS (margin), OLS (online), matrix (classify and detect) and negative ε.

Every loss is checked against a hand-written reference (an explicit target or penalty, differentiated by autograd) for
values and gradients; the arguments against their documented rules; OLS's soft-label update against its definition;
and one tiny real training per new classification mode checks the artefacts.
"""

from __future__ import annotations

import csv
import math

import pytest
import torch
import torch.nn.functional as F

from tests.helpers import NO_FIGURES, TINY_CLS
from yolo_ls.core.args import PluginArgumentError, build_schedule_from_args, resolve_plugin_args
from yolo_ls.core.auto import AutoSchedule, gain_factor
from yolo_ls.core.losses import (
    LabelSmoothingState,
    MatrixClassificationLoss,
    class_matrix,
    margin_cross_entropy,
    matrix_cross_entropy,
    smooth_binary_targets,
    smoothed_cross_entropy,
)
from yolo_ls.core.online import OnlineSoftLabels


def _logits(n=7, k=4, seed=0, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, k, generator=g) * scale).requires_grad_(), torch.randint(0, k, (n,), generator=g)


def _grad(fn, z):
    z = z.detach().clone().requires_grad_()
    loss = fn(z)
    loss.backward()
    return loss.detach(), z.grad


# ------------------------------------------------------------------------------------------------ matrix
def test_matrix_target_of_the_issue_example():
    # ε = 0.1, true class 1, row [0.1, 0, 0.3, 0.6] -> [0.01, 0.9, 0.03, 0.06]: via the loss's gradient at z = 0
    m = class_matrix([[1, 0, 0, 0], [0.1, 0, 0.3, 0.6], [0, 0, 1, 0], [0, 0, 0, 1]], 4)
    z = torch.zeros(1, 4, requires_grad=True)
    matrix_cross_entropy(z, torch.tensor([1]), 0.1, m).backward()
    target = torch.softmax(z.detach(), 1) - z.grad  # gradient = softmax - t
    assert torch.allclose(target, torch.tensor([[0.01, 0.9, 0.03, 0.06]]), atol=1e-6)


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.35])
def test_matrix_loss_and_gradient_match_an_explicit_target(eps):
    z, y = _logits(n=9, k=5, seed=1)
    raw = torch.rand(5, 5, generator=torch.Generator().manual_seed(3)) + 0.01
    m = class_matrix(raw.tolist(), 5)
    assert torch.allclose(m.sum(1), torch.ones(5))

    def reference(x):  # -Σ t log softmax with t = (1-ε)·onehot + ε·(raw[y] / Σ raw[y]) written out
        t = (1 - eps) * F.one_hot(y, 5).float() + eps * (raw / raw.sum(1, keepdim=True))[y]
        return -(t * torch.log_softmax(x, 1)).sum(1).mean()

    got, g_got = _grad(lambda x: matrix_cross_entropy(x, y, torch.tensor(eps), m), z)
    ref, g_ref = _grad(reference, z)
    assert torch.allclose(got, ref, atol=1e-6) and torch.allclose(g_got, g_ref, atol=1e-6)


def test_matrix_with_uniform_rows_is_uniform_smoothing():
    z, y = _logits(n=6, k=4, seed=2)
    m = class_matrix([[1] * 4] * 4, 4)
    assert torch.allclose(matrix_cross_entropy(z, y, 0.2, m), F.cross_entropy(z, y, label_smoothing=0.2), atol=1e-6)


def test_class_matrix_refuses_bad_matrices():
    for bad in ([[1, 0], [0, 0]], [[1, -1], [0, 1]], [[1, 0, 0], [0, 1, 0]], [[math.nan, 1], [1, 0]]):
        with pytest.raises(ValueError):
            class_matrix(bad, 2 if len(bad) == 2 and len(bad[0]) == 2 else 3)


# ------------------------------------------------------------------------------------------------ margin
@pytest.mark.parametrize("lam,margin", [(0.0, 10.0), (0.1, 10.0), (0.5, 1.0), (0.2, 0.5)])
def test_margin_loss_and_gradient_match_the_mbls_formula(lam, margin):
    z, y = _logits(n=8, k=6, seed=4, scale=6.0)

    def reference(x):  # CE + λ · mean_{n,k} max(0, max_j x_nj - x_nk - m), loops written out
        ce = -torch.log_softmax(x, 1)[torch.arange(len(y)), y].mean()
        pen = []
        for n in range(x.shape[0]):
            top = x[n].max()
            pen += [torch.clamp(top - x[n, k] - margin, min=0) for k in range(x.shape[1])]
        return ce + lam * torch.stack(pen).mean()

    got, g_got = _grad(lambda x: margin_cross_entropy(x, y, torch.tensor(lam), margin), z)
    ref, g_ref = _grad(reference, z)
    assert torch.allclose(got, ref, atol=1e-5) and torch.allclose(g_got, g_ref, atol=1e-6)
    if lam and margin == 0.5:
        assert got > F.cross_entropy(z, y)  # the penalty is active at these logits: the test can see it


# ------------------------------------------------------------------------------------------------ negative ε
@pytest.mark.parametrize("eps", [-0.1, -0.5, -0.99])
def test_negative_uniform_smoothing_matches_the_explicit_target(eps):
    z, y = _logits(n=10, k=5, seed=5)

    def reference(x):
        t = eps / 5 + (1 - eps) * F.one_hot(y, 5).float()  # sums to 1, negative off the true class
        assert torch.allclose(t.sum(1), torch.ones(10)) and (t[F.one_hot(y, 5) == 0] < 0).all()
        return -(t * torch.log_softmax(x, 1)).sum(1).mean()

    got, g_got = _grad(lambda x: smoothed_cross_entropy(x, y, torch.tensor(eps)), z)
    ref, g_ref = _grad(reference, z)
    assert torch.allclose(got, ref, atol=1e-5) and torch.allclose(g_got, g_ref, atol=1e-6)


def test_negative_eps_is_opt_in_uniform_only_and_reaches_the_schedules():
    with pytest.raises(PluginArgumentError, match="ls_negative=True"):
        resolve_plugin_args({"label_smoothing": -0.1}, "classify")
    args = resolve_plugin_args({"label_smoothing": -0.2, "ls_negative": True, "ls_schedule": "linear",
                                "ls_final": -0.05}, "classify")
    sched = build_schedule_from_args(args, 4)
    assert [round(v, 6) for _, v in sched.plan()] == [-0.2, -0.15, -0.1, -0.05]
    with pytest.raises(PluginArgumentError, match="ls_mode=uniform"):
        resolve_plugin_args({"label_smoothing": -0.1, "ls_negative": True, "ls_mode": "exclusive"}, "classify")
    with pytest.raises(PluginArgumentError, match="ls_mode=uniform"):
        resolve_plugin_args({"label_smoothing": -0.1, "ls_negative": True}, "detect")  # fg
    with pytest.raises(PluginArgumentError, match="ls_negative"):
        resolve_plugin_args({"label_smoothing": -0.1, "ls_negative": True, "ls_schedule": "auto"}, "classify")
    with pytest.raises(PluginArgumentError, match=r"-1.0 \(inclusive\)"):
        resolve_plugin_args({"label_smoothing": -1.5, "ls_negative": True}, "classify")
    # the schedule classes themselves keep [0, 1) unless built for a negative run
    from yolo_ls.core.schedules import ConstantSchedule

    with pytest.raises(PluginArgumentError):
        ConstantSchedule(-0.1, 3)
    assert ConstantSchedule(-0.1, 3, negative=True)(1) == -0.1


# ------------------------------------------------------------------------------------------------ online
def test_online_soft_labels_follow_the_ols_definition():
    k = 3
    ols = OnlineSoftLabels(k)
    assert torch.allclose(ols.matrix, torch.full((k, k), 1 / 3))
    z = torch.tensor([[3.0, 1.0, 0.0], [2.0, 0.0, 1.0], [0.0, 2.0, 1.0], [5.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    y = torch.tensor([0, 0, 1, 1, 0])  # rows 0, 1, 2 correct; 3 (class 1 predicted 0) and 4 (class 0 -> 2) wrong
    ols.accumulate(z[:2], y[:2])
    ols.accumulate(z[2:], y[2:])  # two batches
    s = ols.swap()
    p = torch.softmax(z, 1)
    assert torch.allclose(s[0], (p[0] + p[1]) / 2, atol=1e-6)  # mean softmax of class 0's correct samples
    assert torch.allclose(s[1], p[2], atol=1e-6)
    assert torch.allclose(s[2], torch.full((3,), 1 / 3))  # no correct sample: kept (uniform)
    assert torch.allclose(s.sum(1), torch.ones(3)) and ols.counts.sum() == 0 and ols.sums.abs().sum() == 0
    before = s.clone()
    assert torch.equal(ols.swap(), before)  # an epoch with nothing correct keeps every row
    restored = OnlineSoftLabels(k)
    restored.load_state_dict(ols.state_dict())
    assert torch.equal(restored.matrix, ols.matrix)


def test_online_loss_uses_s_and_only_the_training_criterion_learns():
    k = 4
    ols = OnlineSoftLabels(k)
    ols.matrix.copy_(class_matrix(torch.rand(k, k, generator=torch.Generator().manual_seed(0)) + 0.1, k))
    state = LabelSmoothingState(0.3)
    train_loss = MatrixClassificationLoss(state, ols.matrix, ols)
    val_loss = MatrixClassificationLoss(state, ols.matrix, None)
    z, y = _logits(n=12, k=k, seed=7)
    ref = -(((1 - 0.3) * F.one_hot(y, k).float() + 0.3 * ols.matrix[y]) * torch.log_softmax(z, 1)).sum(1).mean()
    assert torch.allclose(val_loss(z, {"cls": y})[0], ref, atol=1e-6)
    assert ols.counts.sum() == 0
    train_loss(z, {"cls": y})
    assert ols.counts.sum() == (z.argmax(1) == y).sum()


# ------------------------------------------------------------------------------------------------ detection
def test_detection_matrix_on_a_hand_built_target():
    # two images x three anchors x 3 classes; anchor (0, 1) is background, the others hold one class at quality s
    t = torch.zeros(2, 3, 3)
    t[0, 0, 2] = 0.8
    t[0, 2, 0] = 0.5
    t[1, 0, 1] = 1.0
    t[1, 2, 2] = 0.3
    m = class_matrix([[0, 1, 1], [1, 0, 0], [0.5, 0.5, 0]], 3)  # rows -> [0, .5, .5], [1, 0, 0], [.5, .5, 0]
    eps = 0.2
    got = smooth_binary_targets(t, torch.tensor(eps), "matrix", m)
    expected = t.clone()
    for (b, a, c, s) in [(0, 0, 2, 0.8), (0, 2, 0, 0.5), (1, 0, 1, 1.0), (1, 2, 2, 0.3)]:
        expected[b, a] = (1 - eps) * t[b, a] + eps * s * m[c]
    assert torch.allclose(got, expected, atol=1e-7)
    assert torch.equal(got[0, 1], torch.zeros(3)) and torch.equal(got[1, 1], torch.zeros(3))  # background exactly 0
    assert torch.allclose(got.sum(-1), t.sum(-1))  # each anchor's mass s kept
    # with uniform rows, matrix is fg exactly
    u = class_matrix([[1, 1, 1]] * 3, 3)
    assert torch.allclose(smooth_binary_targets(t, eps, "matrix", u), smooth_binary_targets(t, eps, "fg"), atol=1e-7)


# ------------------------------------------------------------------------------------------------ arguments
def test_matrix_and_margin_arguments(tmp_path):
    args = resolve_plugin_args({"ls_mode": "matrix", "ls_matrix": [[1, 3], [2, 2]]}, "classify")
    assert args["ls_matrix"] == [[0.25, 0.75], [0.5, 0.5]]
    assert resolve_plugin_args({"ls_mode": "matrix", "ls_matrix": [[1, 3], [2, 2]]}, "detect")["ls_mode"] == "matrix"
    with pytest.raises(PluginArgumentError, match="needs 'ls_matrix'"):
        resolve_plugin_args({"ls_mode": "matrix"}, "classify")
    with pytest.raises(PluginArgumentError, match="only used with 'ls_mode=matrix'"):
        resolve_plugin_args({"ls_matrix": [[1, 0], [0, 1]]}, "classify")
    with pytest.raises(PluginArgumentError, match="'ls_matrix="):
        resolve_plugin_args({"ls_mode": "matrix", "ls_matrix": [[1, 0], [0]]}, "classify")
    with pytest.raises(PluginArgumentError, match="No file"):
        resolve_plugin_args({"ls_mode": "matrix", "ls_matrix": str(tmp_path / "nope.csv")}, "classify")
    f = tmp_path / "m.csv"
    f.write_text(",a,b\na,1,3\nb,2,2\n")
    assert resolve_plugin_args({"ls_mode": "matrix", "ls_matrix": str(f)}, "classify")["ls_matrix"] == str(f)
    from yolo_ls.core.args import check_num_classes, load_class_matrix

    assert load_class_matrix(str(f)) == ([[0.25, 0.75], [0.5, 0.5]], ["a", "b"])
    with pytest.raises(PluginArgumentError, match="dataset's classes"):
        check_num_classes({"ls_matrix": str(f), "ls_mode": "matrix"}, 2, ["b", "a"])
    with pytest.raises(PluginArgumentError, match="nc=3"):
        check_num_classes({"ls_matrix": str(f), "ls_mode": "matrix"}, 3, None)
    with pytest.raises(PluginArgumentError, match="ls_mode=margin"):
        resolve_plugin_args({"ls_mode": "margin", "ls_schedule": "auto"}, "classify")
    with pytest.raises(PluginArgumentError, match="classification mode"):
        resolve_plugin_args({"ls_mode": "online"}, "detect")
    assert resolve_plugin_args({"ls_mode": "margin", "ls_margin": 5}, "classify")["ls_margin"] == 5.0


def test_gain_factor_for_matrix_and_online():
    # true-class target 1 - ε(1 - M_yy); uniform labels: E[1 - M_yy] = 1 - (0.5 + 0.25 + 0) / 3
    m = [[2, 1, 1], [1, 1, 2], [1, 1, 0]]
    assert gain_factor("matrix", 3, matrix=m) == pytest.approx(1 / (1 - 0.75 / 3))
    assert gain_factor("online", 3, matrix=m, frequencies=[1, 0, 0]) == pytest.approx(2.0)
    assert gain_factor("matrix", 4, matrix=[[1] * 4] * 4) == pytest.approx(gain_factor("uniform", 4))
    with pytest.raises(ValueError):
        gain_factor("margin", 3)


@pytest.mark.parametrize("gain", [0.25, 0.5, 1.0])
def test_idealised_model_converges_for_matrix(gain):
    m = [[0.4, 0.3, 0.3], [0.1, 0.1, 0.8], [0.0, 0.5, 0.5]]  # diagonal 0.4, 0.1, 0.5

    def top(eps):  # mean true-class target over uniform labels, from the definition
        return sum(1 - eps + eps * m[y][y] for y in range(3)) / 3

    accuracy = 0.9
    sched = AutoSchedule(0.0, eps_max=0.99, gain=gain, factor=gain_factor("matrix", 3, matrix=m))
    fixed = (1 - accuracy) / (1 - (0.4 + 0.1 + 0.5) / 3)
    errors = []
    for epoch in range(200):
        errors.append(sched.current - fixed)
        sched.update(epoch, top(sched.current), accuracy)
    assert abs(sched.current - fixed) < 1e-6
    assert all(abs(b) <= abs(a) + 1e-12 and b <= 0 for a, b in zip(errors, errors[1:]))


# ------------------------------------------------------------------------------------------------ trainings
def _read_soft_labels(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    names = rows[0][1:]
    assert [r[0] for r in rows[1:]] == names
    return names, torch.tensor([[float(v) for v in r[1:]] for r in rows[1:]])


@pytest.mark.training
def test_online_training_writes_learned_soft_labels_and_resumes_with_them(tmp_path, digits_root):
    from ultralytics import YOLO

    from yolo_ls.engine.trainers import ClassificationTrainer, checkpoint_plugin_state

    model = YOLO("yolo11n-cls.yaml")
    model.train(data=str(digits_root), trainer=ClassificationTrainer, project=str(tmp_path), name="ols",
                **{**TINY_CLS, **NO_FIGURES, "epochs": 2, "save_period": 1}, label_smoothing=0.1, ls_mode="online")
    run = tmp_path / "ols"
    names, s = _read_soft_labels(run / "soft_labels.csv")
    assert names == [str(i) for i in range(10)] and s.shape == (10, 10)
    assert torch.allclose(s.sum(1), torch.ones(10), atol=1e-6)
    assert not torch.allclose(s, torch.full((10, 10), 0.1), atol=1e-3)  # learned, not the uniform start
    assert (run / "soft_labels.png").is_file()
    state = checkpoint_plugin_state(run / "weights" / "last.pt")
    assert torch.allclose(torch.tensor(state["state"]["online"]["matrix"]), s, atol=1e-6)

    # resume from the epoch-0 checkpoint: epoch 1 starts with the S learned in epoch 0, not a fresh uniform one
    after_epoch0 = torch.tensor(checkpoint_plugin_state(run / "weights" / "epoch0.pt")["state"]["online"]["matrix"])
    assert not torch.allclose(after_epoch0, torch.full((10, 10), 0.1), atol=1e-3)
    seen = []
    resumed = YOLO(str(run / "weights" / "epoch0.pt"))
    resumed.add_callback("on_train_epoch_start", lambda tr: seen.append((tr.epoch, tr.ls_online.matrix.clone())))
    resumed.train(resume=True, trainer=ClassificationTrainer)
    assert [e for e, _ in seen] == [1]
    assert torch.allclose(seen[0][1].cpu(), after_epoch0, atol=1e-6)


@pytest.mark.training
@pytest.mark.parametrize("mode,extra", [("margin", {"ls_margin": 5.0}),
                                        ("matrix", {"ls_matrix": [[1.0] * 10] * 10}),
                                        ("uniform", {"ls_negative": True})])
def test_new_modes_train(tmp_path, digits_root, mode, extra):
    from ultralytics import YOLO

    from tests.helpers import results
    from yolo_ls.engine.trainers import ClassificationTrainer

    eps = -0.1 if extra.get("ls_negative") else 0.1
    model = YOLO("yolo11n-cls.yaml")
    model.train(data=str(digits_root), trainer=ClassificationTrainer, project=str(tmp_path), name=mode,
                **TINY_CLS, **NO_FIGURES, label_smoothing=eps, ls_mode=mode, **extra)
    df = results(tmp_path / mode)
    assert df["label_smoothing"].tolist() == [eps]
    assert math.isfinite(float(df["train/loss"].iloc[-1]))


@pytest.mark.training
def test_online_with_auto_takes_its_gain_factor_from_the_learned_s(tmp_path, digits_root):
    from ultralytics import YOLO

    from yolo_ls.engine.trainers import ClassificationTrainer

    model = YOLO("yolo11n-cls.yaml")
    model.train(data=str(digits_root), trainer=ClassificationTrainer, project=str(tmp_path), name="ols_auto",
                **TINY_CLS, **NO_FIGURES, label_smoothing=0.1, ls_mode="online", ls_schedule="auto")
    trainer = model.trainer
    _, s = _read_soft_labels(tmp_path / "ols_auto" / "soft_labels.csv")
    assert trainer.ls_schedule.factor == pytest.approx(gain_factor("online", 10, matrix=s.tolist()), rel=1e-5)
    assert trainer.ls_schedule.factor != pytest.approx(10 / 9)  # not the uniform start's factor any more


@pytest.mark.training
def test_detection_matrix_trains_through_the_single_injection_point(tmp_path, digits_det_yaml):
    import yaml

    from tests.helpers import TINY_DET, results
    from yolo_ls import YOLO
    from yolo_ls.core.losses import SmoothedBCEWithLogits
    from yolo_ls.engine.inject import detection_losses

    nc = len(yaml.safe_load(digits_det_yaml.read_text())["names"])
    shifted = [[1.0 if j == (i + 1) % nc else 0.0 for j in range(nc)] for i in range(nc)]  # ε goes to the next class
    yolo = YOLO("yolo11n.yaml")
    yolo.train(**TINY_DET, **NO_FIGURES, data=str(digits_det_yaml), project=str(tmp_path), name="mat",
               label_smoothing=0.1, ls_mode="matrix", ls_matrix=shifted)
    trainer = yolo.trainer
    for crit in (trainer.model.criterion, trainer.ema.ema.criterion):
        (loss,) = detection_losses(crit)
        assert isinstance(loss.bce, SmoothedBCEWithLogits) and loss.bce.mode == "matrix"
        assert torch.equal(loss.bce.matrix.cpu(), torch.tensor(shifted))
    assert results(tmp_path / "mat")["label_smoothing"].tolist() == [0.1]


def test_soft_labels_csv_round_trips_and_yolo_ls_plot_draws_it(tmp_path):
    from yolo_ls.core.checks import read_matrix_csv
    from yolo_ls.core.online import write_matrix_csv
    from yolo_ls.plots import render_run

    s = class_matrix(torch.rand(3, 3, generator=torch.Generator().manual_seed(1)) + 0.05, 3)
    write_matrix_csv(s.tolist(), ["cat", "dog", "bird"], tmp_path / "soft_labels.csv")
    assert not list(tmp_path.glob(".*.tmp"))
    names, rows = read_matrix_csv(tmp_path / "soft_labels.csv")
    assert names == ["cat", "dog", "bird"] and torch.allclose(torch.tensor(rows), s, atol=1e-7)
    out = render_run(tmp_path)
    assert tmp_path / "soft_labels.png" in out and (tmp_path / "soft_labels.png").stat().st_size > 5000


def test_eps_axis_shows_negative_values():
    from yolo_ls.plots.figures import eps_limits

    assert eps_limits([-0.2, -0.1]) == (pytest.approx(-0.25), 0.0)
    assert eps_limits([-0.2, 0.1]) == (pytest.approx(-0.25), pytest.approx(0.125))
    assert eps_limits([0.0]) == (0.0, 0.05) and eps_limits([0.1]) == (0.0, pytest.approx(0.125))
