"""``ls_mode=online``: the class-wise soft-label matrix S of online label smoothing (Zhang et al., IEEE TIP 2021).

S starts uniform. Each epoch accumulates the softmax outputs of correctly classified samples per true class;
:meth:`OnlineSoftLabels.swap` then sets row y of the next epoch's S to their mean (a class with no correct sample keeps
its row). The smoothed target is ``(1 - ε)·onehot + ε·S[y]``.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch


class OnlineSoftLabels:
    """S (K×K) in use, and this epoch's sums and counts from correctly classified training samples.

    Deep copies return the same object (like :class:`~yolo_ls.core.losses.LabelSmoothingState`): the EMA model's
    criterion reads the live S.
    """

    def __init__(self, num_classes: int, device: torch.device | str | None = None) -> None:
        k = int(num_classes)
        self.matrix = torch.full((k, k), 1.0 / k, device=device)  # S used by the loss now
        self.sums = torch.zeros((k, k), device=device)
        self.counts = torch.zeros((k,), device=device)

    @property
    def num_classes(self) -> int:
        return self.matrix.shape[0]

    def __deepcopy__(self, memo: dict) -> OnlineSoftLabels:
        return self

    @torch.no_grad()
    def accumulate(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Add the softmax of the correctly classified rows of ``logits`` (N, K) to their class's sums (on device)."""
        probs = torch.softmax(logits.detach().float(), dim=1)
        correct = (probs.argmax(1) == labels).to(probs.dtype)  # 0/1 weights instead of a boolean index: no sync
        self.sums.index_add_(0, labels, probs * correct[:, None])
        self.counts.index_add_(0, labels, correct)

    @torch.no_grad()
    def swap(self) -> torch.Tensor:
        """End of epoch: S ← the mean correct softmax per class (rows without a correct sample kept); reset sums.

        Under DDP the sums and counts of every rank are added first. Returns the new S.
        """
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self.sums)
            dist.all_reduce(self.counts)
        seen = self.counts > 0
        rows = self.sums / self.counts.clamp_min(1.0)[:, None]
        rows = rows / rows.sum(1, keepdim=True).clamp_min(1e-12)  # exact sum 1 up to rounding
        self.matrix.copy_(torch.where(seen[:, None], rows, self.matrix))
        self.sums.zero_()
        self.counts.zero_()
        return self.matrix

    def state_dict(self) -> dict[str, Any]:
        """S as plain lists, for the checkpoint (the sums are always zero at a checkpoint: it follows the swap)."""
        return {"matrix": self.matrix.detach().cpu().tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`.

        Raises:
            ValueError: For a matrix of another size than this run's classes.
        """
        m = torch.as_tensor(state["matrix"], dtype=torch.float32)
        if m.shape != self.matrix.shape:
            raise ValueError(f"online soft labels of shape {tuple(m.shape)} cannot resume a run with "
                             f"{self.num_classes} classes")
        self.matrix.copy_(m.to(self.matrix.device))

    def write_csv(self, path: str | Path, names: Sequence[str]) -> Path:
        """Write S atomically: a header ``"", name_0, ..., name_K-1``, then one row ``name_y, S[y, 0], ...``."""
        return write_matrix_csv(self.matrix.detach().cpu().tolist(), names, path)


def write_matrix_csv(matrix: Sequence[Sequence[float]], names: Sequence[str], path: str | Path) -> Path:
    """A K×K matrix as CSV with class names as header and index, written to a temporary file then renamed."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["", *map(str, names)])
        for name, row in zip(names, matrix):
            w.writerow([str(name), *(f"{float(v):.8g}" for v in row)])
    os.replace(tmp, path)
    return path
