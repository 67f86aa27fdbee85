"""Every difference between the Ultralytics releases yolo-ls supports, in one place.

yolo-ls supports ``ultralytics>=8.3.210,<8.5`` (:data:`SUPPORTED`). Symbols that differ between those releases are
imported from here, and this module is imported first, so a release too old to have them gets the version guard's
message rather than a bare ImportError.

Differences bridged here: the classification loss item format (:func:`classification_loss_items`), ``model.tune()``
support (:func:`check_tune_supported`, :func:`check_ray_tune_supported`), shipped architectures such as YOLO26
(:func:`has_model_yaml`), the DDP relaunch (:func:`ddp_state_file`), the segmentation output layout
(:func:`segment_proto`) and per-rank validation (:func:`validates_on_every_rank`).
"""

from __future__ import annotations

import functools
import re
from typing import Any, Callable

import ultralytics
from ultralytics.utils import LOGGER

SUPPORTED = ((8, 3, 210), (8, 5, 0))  # >= first, < second: pyproject.toml's range
SUPPORTED_SPEC = ">=8.3.210,<8.5"
TESTED_ULTRALYTICS = SUPPORTED  # alias exported by trainers.py



def parse_version(version: str) -> tuple[int, ...]:
    """``"8.4.190"`` -> ``(8, 4, 190)``; a suffix such as ``.dev0`` or ``rc1`` is ignored."""
    return tuple(int(x) for x in re.findall(r"\d+", version)[:3])


def version_message(version: str) -> str:
    """The guard's message: the installed Ultralytics, the supported range, and what to do."""
    from yolo_ls._version import __version__

    return (
        f"yolo-ls {__version__} supports ultralytics{SUPPORTED_SPEC}, but ultralytics {version} is installed. Label "
        "smoothing is injected into Ultralytics internals that change between releases: install a supported version "
        f"(pip install 'ultralytics{SUPPORTED_SPEC}') or check the results carefully."
    )


def check_ultralytics_version(version: str | None = None) -> bool:
    """Warn, naming both versions, when the installed Ultralytics is outside the supported range.

    Returns:
        Whether the version is inside the supported range.
    """
    version = version or ultralytics.__version__
    lo, hi = SUPPORTED
    if lo <= parse_version(version) < hi:
        return True
    from ultralytics.utils import colorstr

    LOGGER.warning(f"{colorstr('yolo-ls:')} {version_message(version)}")
    return False


check_ultralytics_version()

try:  # symbols older releases lack (YAML, unwrap_model and DetMetrics.update_stats arrived by 8.3.2xx)
    from ultralytics.utils import YAML
    from ultralytics.utils.metrics import DetMetrics
    from ultralytics.utils.torch_utils import unwrap_model

    DetMetrics.update_stats  # noqa: B018 -- the dict-based validator API the detection calibration reads
except (ImportError, AttributeError) as e:
    raise ImportError(f"{version_message(ultralytics.__version__)} (missing: {e})") from e

__all__ = (
    "SUPPORTED",
    "SUPPORTED_SPEC",
    "TESTED_ULTRALYTICS",
    "YAML",
    "check_ultralytics_version",
    "check_tune_supported",
    "classification_loss_items",
    "ddp_state_file",
    "has_model_yaml",
    "segment_proto",
    "parse_version",
    "unwrap_model",
    "validates_on_every_rank",
    "version_message",
)


@functools.cache
def stock_classification_items_are_dict() -> bool:
    """Whether the installed stock ``v8ClassificationLoss`` returns its items as ``{"loss": ...}`` (or a tensor)."""
    import torch
    from ultralytics.utils.loss import v8ClassificationLoss

    _, items = v8ClassificationLoss()(torch.zeros(1, 2), {"cls": torch.zeros(1, dtype=torch.long)})
    return isinstance(items, dict)


def _items_as_dict(loss: Any) -> Any:
    return {"loss": loss}


def _items_as_tensor(loss: Any) -> Any:
    return loss


def classification_loss_items() -> Callable[[Any], Any]:
    """The function that puts a detached classification loss in the installed stock item format (``{"loss": loss}``
    or the tensor itself)."""
    return _items_as_dict if stock_classification_items_are_dict() else _items_as_tensor


def check_tune_supported() -> None:
    """``model.tune()`` through yolo-ls needs the trainer's ``_YOLO_CLI_COMMAND`` (8.4.x); earlier releases launch
    ``python -m ultralytics.cfg`` for every iteration, which would train without the plugin.

    Raises:
        NotImplementedError: Naming the installed release, before any iteration runs.
    """
    import ultralytics.engine.trainer as engine_trainer

    if not hasattr(engine_trainer, "_YOLO_CLI_COMMAND"):
        raise NotImplementedError(
            f"model.tune() through yolo-ls needs an ultralytics 8.4 release (ultralytics {ultralytics.__version__} is "
            "installed, whose Tuner trains every iteration with stock Ultralytics, without the plugin). Upgrade "
            f"within ultralytics{SUPPORTED_SPEC}, or tune stock arguments with ultralytics.YOLO."
        )


@functools.cache
def ray_tune_supported() -> bool:
    """Whether Ultralytics' ``run_ray_tune`` is the 8.4 one yolo-ls wraps (``iterations``, ``search_alg`` and the
    searcher table); 8.3 releases have ``run_ray_tune(max_samples=...)`` without a search algorithm."""
    import inspect

    import ultralytics.utils.tuner as ray_tuner

    params = inspect.signature(ray_tuner.run_ray_tune).parameters
    return "search_alg" in params and hasattr(ray_tuner, "RAY_SEARCH_ALG_REQUIREMENTS")


def check_ray_tune_supported() -> None:
    """``model.tune(use_ray=True)`` through yolo-ls needs the 8.4 ``run_ray_tune``.

    Raises:
        NotImplementedError: Naming the installed release, before Ray starts.
    """
    if not ray_tune_supported():
        raise NotImplementedError(
            f"model.tune(use_ray=True) through yolo-ls needs an ultralytics 8.4 release (ultralytics "
            f"{ultralytics.__version__} is installed, whose run_ray_tune has no search_alg/iterations). Upgrade within "
            f"ultralytics{SUPPORTED_SPEC}, or use the built-in tuner (use_ray=False)."
        )


@functools.cache
def has_model_yaml(name: str) -> bool:
    """Whether the installed Ultralytics ships the model config ``name`` (``yolo26n.yaml`` exists from 8.4.0)."""
    from ultralytics.nn.tasks import yaml_model_load

    try:
        yaml_model_load(name)
    except (FileNotFoundError, OSError):
        return False
    return True


def ddp_state_file() -> bool:
    """Whether the installed multi-GPU relaunch pickles the trainer state into a ``.pt`` file (from about 8.4.14x);
    otherwise a callable ``ls_schedule`` cannot reach the workers."""
    from ultralytics.utils.dist import generate_ddp_file

    return "torch_save" in generate_ddp_file.__code__.co_names


def segment_proto(preds: Any) -> Any:
    """The mask prototypes in a segmentation model's eval output, in either release's layout.

    8.4: ``((y, proto), raw)``; 8.3: ``(y, (feats, coefficients, proto))``; an exported model: ``(y, proto)``.
    """
    if isinstance(preds[0], (list, tuple)):
        return preds[0][1]
    second = preds[1]
    return second[-1] if isinstance(second, (list, tuple)) and len(second) == 3 else second


def validates_on_every_rank(validator: Any) -> bool:
    """Whether this validator runs on every DDP rank with ``gather_stats`` collecting to rank 0 (8.4), rather than
    on rank 0 alone over the whole val set (8.3, no ``gather_stats``): the calibration's cross-rank step hooks it."""
    return callable(getattr(validator, "gather_stats", None))


def version_text() -> str:
    """Versions of yolo-ls, Ultralytics and torch, one per line (``yolo-ls version``, ``yolo-ls doctor``)."""
    import torch
    import ultralytics

    from yolo_ls._version import __version__

    return f"yolo-ls {__version__}\nultralytics {ultralytics.__version__}\ntorch {torch.version.__version__}"


def unshuffled_loader(dataset: Any, batch: int, workers: int, device: Any) -> Any:
    """Ultralytics' dataloader over ``dataset`` in file order (8.4's stock classify val loader shuffles); 8.3's
    ``build_dataloader`` takes no ``device``."""
    import inspect

    from ultralytics.data import build_dataloader

    extra = {"device": device} if "device" in inspect.signature(build_dataloader).parameters else {}
    return build_dataloader(dataset, batch, workers, shuffle=False, rank=-1, **extra)
