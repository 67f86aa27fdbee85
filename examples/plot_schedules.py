"""Draw the shape of every built-in ε schedule (docs/schedules.png): label_smoothing=0.2, 20 epochs."""

from __future__ import annotations

import sys
from pathlib import Path

from matplotlib.figure import Figure

from yolo_ls.core.schedules import build_schedule

SHAPES = {
    "constant": {},
    "linear (ls_final=0.02)": {"schedule": "linear", "final": 0.02},
    "cosine (ls_final=0.02)": {"schedule": "cosine", "final": 0.02},
    "step (ls_step_size=5, ls_gamma=0.5)": {"schedule": "step", "step_size": 5, "gamma": 0.5},
    "exp (ls_gamma=0.8, ls_final=0.02)": {"schedule": "exp", "gamma": 0.8, "final": 0.02},
    "two_stage (ls_off_epoch=12)": {"schedule": "two_stage", "off_epoch": 12},
    "linear + ls_warmup_epochs=3": {"schedule": "linear", "final": 0.02, "warmup_epochs": 3},
}


def main(path: str = "docs/schedules.png") -> Path:
    """Save the figure and return its path."""
    fig = Figure(figsize=(10, 5), tight_layout=True)
    axes = fig.subplots(2, 4).flatten()
    for ax, (title, kw) in zip(axes, SHAPES.items()):
        sched = build_schedule(kw.pop("schedule", "constant"), 0.2, 20, **kw)
        x, y = zip(*sched.plan(points_per_epoch=10))
        ax.plot(x, y, color="#042AFF", linewidth=2)
        ax.set_title(title, fontsize=8)
        ax.set_ylim(0, 0.22)
        ax.set_xlabel("epoch", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes[-1].axis("off")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    return out


if __name__ == "__main__":
    print(main(*sys.argv[1:]))
