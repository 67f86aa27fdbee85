"""yolo-ls: label smoothing that reaches the loss in Ultralytics YOLO.

>>> from yolo_ls import YOLO
>>> YOLO("yolo11n-cls.yaml").train(data="digits", epochs=3, imgsz=32, label_smoothing=0.1)

The public names are imported lazily, so ``import yolo_ls.calibration`` does not load the Ultralytics trainers.
Layers, bottom to top (each imports only from layers below it; ``tests/test_layering.py`` enforces it):
``calibration``, ``datasets`` → ``core`` → ``plots`` → ``engine`` → ``tune`` → ``model`` → ``compare`` → ``cli``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings
from typing import Any

from yolo_ls._version import __version__

_LAZY = {
    "YOLO": "yolo_ls.model",
    "ClassificationTrainer": "yolo_ls.engine.trainers",
    "DetectionTrainer": "yolo_ls.engine.trainers",
    "SegmentationTrainer": "yolo_ls.engine.trainers",
    "PoseTrainer": "yolo_ls.engine.trainers",
    "OBBTrainer": "yolo_ls.engine.trainers",
    "add_calibration_callbacks": "yolo_ls.engine.callbacks",
    "calibrate": "yolo_ls.engine.calibrate",
}

#: Modules of the flat layout (up to 0.1.0) and where their names live now, in lookup order.
MOVED = {
    "yolo_ls.config": ("yolo_ls.core.args",),
    "yolo_ls.schedules": ("yolo_ls.core.schedules",),
    "yolo_ls.auto": ("yolo_ls.core.auto", "yolo_ls.engine.auto_controller"),
    "yolo_ls.losses": ("yolo_ls.core.losses", "yolo_ls.engine.inject"),
    "yolo_ls.online": ("yolo_ls.core.online",),
    "yolo_ls.objective": ("yolo_ls.core.objective",),
    "yolo_ls.utils": ("yolo_ls.core.files",),
    "yolo_ls.epoch_bins": ("yolo_ls.core.epoch_bins",),
    "yolo_ls.trainers": ("yolo_ls.engine.trainers",),
    "yolo_ls.compat": ("yolo_ls.engine.compat",),
    "yolo_ls.checkpoints": ("yolo_ls.engine.checkpoints",),
    "yolo_ls.callbacks": ("yolo_ls.engine.callbacks",),
    "yolo_ls.callbacks.calibration": ("yolo_ls.engine.callbacks.calibration",),
    "yolo_ls.callbacks.smoothing": ("yolo_ls.engine.callbacks.smoothing",),
    "yolo_ls.tuner": ("yolo_ls.tune.tuner",),
    "yolo_ls.ray_tune": ("yolo_ls.tune.ray_tune",),
    "yolo_ls.compare_report": ("yolo_ls.compare.report",),
    "yolo_ls.sweep": ("yolo_ls.compare.sweep",),
    "yolo_ls.yolo_cli": ("yolo_ls.cli.yolo_hook",),
}

__all__ = ("__version__", *_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        importlib.import_module("yolo_ls.engine.compat")  # the version guard speaks before a missing symbol
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'yolo_ls' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(__all__)


class _MovedModule(types.ModuleType):
    """An old module path: each name is looked up in the new modules, with a warning that names the new one."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        for target in MOVED[self.__name__]:
            module = importlib.import_module(target)
            if hasattr(module, name):
                warnings.warn(f"{self.__name__} moved: import {name} from {target}", FutureWarning, stacklevel=2)
                value = getattr(module, name)
                setattr(self, name, value)  # one warning per name
                return value
        raise AttributeError(f"{self.__name__} moved to {' / '.join(MOVED[self.__name__])}, which has no {name!r}")


class _MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old flat-layout module paths of :data:`MOVED` (the new ones are found as usual)."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True) if fullname in MOVED else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return _MovedModule(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        module.__path__ = []


if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
    sys.meta_path.append(_MovedFinder())
