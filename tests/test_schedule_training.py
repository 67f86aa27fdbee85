"""Scheduled ε in real trainings: the results.csv column, kill-and-resume, the schedule plot; no recompiles."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.helpers import NO_FIGURES, TINY_CLS, results
from yolo_ls.core.losses import LabelSmoothingState, SmoothedBCEWithLogits, SmoothedClassificationLoss

LINEAR = {"label_smoothing": 0.2, "ls_schedule": "linear", "ls_final": 0.0, "epochs": 4}
EXPECTED = [0.2, 0.133333, 0.066667, 0.0]  # linear 0.2 -> 0 over epochs 0..3


def _train_script(data: Path, project: Path, name: str, **extra) -> str:
    args = {**TINY_CLS, **LINEAR, "data": str(data), "project": str(project), "name": name, "exist_ok": True,
            "plots": True, **extra}
    return f"from yolo_ls import YOLO\nYOLO('yolo11n-cls.yaml').train(**{args!r})\n"


@pytest.mark.training
def test_linear_schedule_column_kill_and_resume(tmp_path, digits_root, fork_server):
    """Python-API trainings, each a forked child of the fork server (a separate process, imports already done)."""
    # 1) uninterrupted reference run
    rc, _, log = fork_server.run(code=_train_script(digits_root, tmp_path, "ref"))
    assert rc == 0, log.read_text()[-3000:]
    ref_eps = results(tmp_path / "ref")["label_smoothing"].round(6).tolist()
    assert ref_eps == pytest.approx(EXPECTED, abs=1e-6)
    assert (tmp_path / "ref" / "label_smoothing.png").stat().st_size > 5000

    # 2) the same run, SIGKILLed once two epochs are on disk (by itself, right after epoch 2's last.pt is in place)
    run = tmp_path / "killed"
    rc, _, log = fork_server.run(code=_train_script(digits_root, tmp_path, "killed"), kill="last_replaced:2")
    assert rc == -9, ("the run was not killed", log.read_text()[-3000:])
    done = len(results(run))
    assert 2 <= done < 4, f"killed after {done} epochs"

    # 3) resume=True with nothing but the checkpoint: ε and its schedule come back from last.pt
    code = (f"from yolo_ls import YOLO\nYOLO({str(run / 'weights/last.pt')!r}).train(resume=True)\n")
    rc, _, log = fork_server.run(code=code)
    assert rc == 0, log.read_text()[-3000:]
    df = results(run)
    assert df["epoch"].tolist() == [1, 2, 3, 4]
    assert df["label_smoothing"].round(6).tolist() == ref_eps
    # calibration.csv: 4 rows, no duplicate and no gap, the same ε column as the uninterrupted run
    cal = pd.read_csv(run / "calibration.csv")
    assert cal["epoch"].tolist() == [1, 2, 3, 4]
    assert cal["label_smoothing"].round(6).tolist() == ref_eps
    assert not list(run.glob(".*.tmp")), "a temporary CSV was left behind"
    args = yaml.safe_load((run / "args.yaml").read_text())
    assert args["label_smoothing"] == 0.2 and args["ls_schedule"] == "linear"


@pytest.mark.training
def test_per_iteration_schedule_logs_epoch_mean(tmp_path, digits_root):
    from yolo_ls import YOLO

    model = YOLO("yolo11n-cls.yaml")
    model.train(**{**TINY_CLS, **NO_FIGURES, "data": str(digits_root), "project": str(tmp_path), "name": "it",
                   "epochs": 2, "label_smoothing": 0.2, "ls_schedule": "linear", "ls_final": 0.0, "ls_per_iter": True})
    trainer = model.trainer
    nb = len(trainer.train_loader)
    applied = trainer.ls_applied.points
    assert nb <= trainer.ls_applied.max_points_per_epoch and len(applied) == 2 * nb  # one update per optimizer step
    assert [e for e, _ in applied[:3]] == pytest.approx([0.0, 1 / nb, 2 / nb])
    # span is E-1 = 1 epoch: ε(e) = 0.2 * (1 - e) during epoch 0, then held at 0
    assert applied[1][1] == pytest.approx(0.2 * (1 - 1 / nb))
    logged = results(tmp_path / "it")["label_smoothing"].tolist()
    assert logged[0] == pytest.approx(sum(v for _, v in applied[:nb]) / nb, abs=1e-6)
    assert logged[1] == 0.0


def test_applied_trace_is_bounded_per_epoch_and_the_mean_covers_every_step():
    from yolo_ls.engine.callbacks.smoothing import AppliedEpsilon

    applied = AppliedEpsilon(max_points_per_epoch=50)
    steps = 1000
    for epoch in range(3):
        applied.start_epoch(epoch)
        for i in range(steps):
            applied.record(epoch + i / steps, 0.1 + epoch + i / steps, i, steps)
    assert len(applied) == 3 * 50  # every 20th step of each epoch, not 3000 entries
    assert applied.points[:2] == [(0.0, 0.1), (0.02, pytest.approx(0.12))]
    mean = sum(0.1 + 2 + i / steps for i in range(steps)) / steps  # the mean of all 1000 steps of epoch 2
    assert applied.epoch_mean(2, schedule=lambda e: -1.0) == pytest.approx(mean)
    assert applied.epoch_mean(5, schedule=lambda e: 0.25) == 0.25  # nothing applied in epoch 5: the schedule's value


def test_changing_eps_does_not_recompile():
    """ε is a device tensor read by the loss: new values reuse the compiled graph (counted with torch._dynamo)."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    state = LabelSmoothingState(0.0)
    cls_loss = SmoothedClassificationLoss(state, 10)
    bce = SmoothedBCEWithLogits(state, "fg")

    def step(logits, labels, scores, targets):
        return cls_loss(logits, {"cls": labels})[0] + bce(scores, targets).sum()

    compiled = torch.compile(step, backend="eager", fullgraph=False)
    g = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(16, 10, generator=g), torch.randint(0, 10, (16,), generator=g)
    scores, targets = torch.randn(2, 50, 4, generator=g), torch.rand(2, 50, 4, generator=g)
    values = []
    for eps in (0.0, 0.05, 0.1, 0.2, 0.3):
        state.set_(eps)
        values.append(compiled(logits, labels, scores, targets))
    frames = counters["stats"]["unique_graphs"]
    assert frames == 1, f"{frames} graphs compiled for 5 ε values"
    assert not counters["recompiles"], dict(counters["recompiles"])
    assert len({round(v.item(), 6) for v in values}) == 5  # and the values really changed with ε
