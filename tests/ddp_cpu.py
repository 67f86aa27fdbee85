"""Test-only: run Ultralytics' own multi-GPU (DDP) path with N processes on the CPU, over gloo.

Ultralytics launches DDP through ``torch.distributed.run`` on a generated file that rebuilds ``type(trainer)`` from a
cloudpickled state, so the trainer below must be importable by its module path (``tests.ddp_cpu``) in the workers:
run the launching process with the repository on ``PYTHONPATH`` (the generated file copies the parent's sys.path).

What is patched, and only because Ultralytics hard-wires it to CUDA:
    - ``world_size``/``ddp``: Ultralytics derives them from a CUDA device string (``device=0,1``) and sets 0 for the
      CPU; here they come from :data:`WORLD_ENV` (default 2).
    - ``_setup_ddp``: picks ``cuda:<LOCAL_RANK>`` and nccl; here the device stays the CPU and the group is gloo.
    - ``DistributedDataParallel(device_ids=[self.device.index])``: ``[None]`` for the CPU, which DDP refuses; the
      workers wrap without ``device_ids``.
    - A non-training validation on a DDP rank (``final_eval`` of best.pt) builds ``AutoBackend`` on
      ``cuda:<current_device()>``; the workers build it on the CPU.

Everything else (samplers, the validator's ``gather_stats``, broadcasts, checkpoints, logging) is stock Ultralytics.
Each rank appends the ε its losses used in every epoch to ``$YOLO_LS_EPS_DIR/eps_rank{RANK}.txt``.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from ultralytics.utils import DEFAULT_CFG, LOCAL_RANK, RANK

from yolo_ls.engine.trainers import ClassificationTrainer, DetectionTrainer

WORLD_ENV = "YOLO_LS_TEST_WORLD"
EPS_DIR_ENV = "YOLO_LS_EPS_DIR"


def record_eps(trainer: Any) -> None:
    """on_train_epoch_end: the ε this rank's losses used in the epoch (per-epoch mode), one line per epoch."""
    folder = os.environ.get(EPS_DIR_ENV)
    if folder and getattr(trainer, "ls_state", None) is not None:
        with open(Path(folder) / f"eps_rank{max(RANK, 0)}.txt", "a") as f:
            f.write(f"{trainer.epoch + 1} {float(trainer.ls_state.eps)!r}\n")


def _patch_cuda_hardwiring() -> None:
    """In a worker only: DDP without device_ids, and a CPU AutoBackend for non-training validations."""
    import torch
    import ultralytics.engine.validator as validator_module
    from torch.nn.parallel import DistributedDataParallel

    if not getattr(torch.nn.parallel.DistributedDataParallel, "_yolo_ls_cpu", False):

        class CPUDistributedDataParallel(DistributedDataParallel):
            _yolo_ls_cpu = True

            def __init__(self, module: Any, device_ids: Any = None, **kwargs: Any) -> None:
                super().__init__(module, device_ids=None if device_ids == [None] else device_ids, **kwargs)

        torch.nn.parallel.DistributedDataParallel = CPUDistributedDataParallel

    if not getattr(validator_module.AutoBackend, "_yolo_ls_cpu", False):
        stock = validator_module.AutoBackend

        def cpu_autobackend(*args: Any, **kwargs: Any) -> Any:
            return stock(*args, **{**kwargs, "device": torch.device("cpu")})

        cpu_autobackend._yolo_ls_cpu = True
        validator_module.AutoBackend = cpu_autobackend

        class _NoCuda:  # the device index the validator asks for; the CPU AutoBackend above ignores it
            @staticmethod
            def current_device() -> int:
                return 0

        stock_backend = validator_module.get_torch_device_backend
        validator_module.get_torch_device_backend = lambda t: _NoCuda() if str(t) == "cuda" else stock_backend(t)


class _CPUDDPMixin:
    def __init__(self, cfg: Any = DEFAULT_CFG, overrides: dict[str, Any] | None = None, _callbacks: Any = None):
        super().__init__(cfg, overrides, _callbacks)
        self.world_size = int(os.environ.get(WORLD_ENV, "2"))
        self.ddp = LOCAL_RANK == -1  # the launching process spawns the workers; a worker trains
        if record_eps not in self.callbacks["on_train_epoch_end"]:  # the relaunch hands the parent's callbacks back
            self.add_callback("on_train_epoch_end", record_eps)

    def _setup_ddp(self) -> None:
        import torch.distributed as dist

        _patch_cuda_hardwiring()
        dist.init_process_group("gloo", timeout=timedelta(seconds=600), rank=RANK, world_size=self.world_size)


class CPUDDPClassificationTrainer(_CPUDDPMixin, ClassificationTrainer):
    """:class:`yolo_ls.ClassificationTrainer` trained by Ultralytics' DDP path on the CPU (gloo)."""


class CPUDDPDetectionTrainer(_CPUDDPMixin, DetectionTrainer):
    """:class:`yolo_ls.DetectionTrainer` trained by Ultralytics' DDP path on the CPU (gloo)."""
