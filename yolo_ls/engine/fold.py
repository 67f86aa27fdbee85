"""Calibrated checkpoints: an affine map of the class logits, ``z -> A z + b``, folded exactly into the last linear
layer, so that the result is a plain Ultralytics checkpoint and stock ``ultralytics.YOLO(path)`` predicts, validates
and exports calibrated confidences with nothing of yolo-ls installed.

``A`` is a scalar (``1/T``, temperature scaling), a ``(K,)`` diagonal (per-class scaling) or, for classification only,
a full ``(K, K)`` matrix; ``b`` is ``(K,)``.

- Classification: the logits are the output of ``Classify.linear`` (``nn.Linear(1280, K)``), and the map folds as
  ``W' = A W``, ``b' = A b0 + b``. The softmax Ultralytics applies on top then gives ``softmax(A z + b)``.
- Detection (``Detect`` and its subclasses ``Segment``, ``Pose``, ``OBB`` and their YOLO26 forms; v8/11 heads and
  end-to-end heads): the class logits of every anchor are the output channels of the last ``nn.Conv2d`` (1x1,
  ``K`` out channels) of each ``cv3`` branch, one per feature level, and of each ``one2one_cv3`` branch of an
  end-to-end head (YOLO26/YOLOv10). Both sets are folded: stock ``predict``/``val`` use the one-to-many branch plus NMS
  by default and the one-to-one branch with ``nms=False``. The head applies a per-class sigmoid; the map folds per
  output channel, ``W'_c = a_c W_c``, ``b'_c = a_c b0_c + b_c``. A full matrix is refused for detection: a 1x1 conv
  could carry it, but it would mix the independent per-class sigmoid scores, which is not a calibration of them.
"""

from __future__ import annotations

import io
import json
from copy import deepcopy
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["calibration_history", "class_logit_layers", "fold_logit_map", "write_calibrated_checkpoint"]

CALIBRATION_KEY = "calibration"


def _head(model: nn.Module) -> nn.Module:
    """The head of ``model``: ``model.model[-1]`` of a ``BaseModel``, unwrapping an ``ultralytics.YOLO`` first; a head
    passed directly is returned as is."""
    inner = getattr(model, "model", None)
    # ultralytics.YOLO (an nn.Module) holds the BaseModel in .model, which holds the layers in .model
    if isinstance(inner, nn.Module) and not isinstance(inner, (nn.Sequential, nn.ModuleList)):
        model, inner = inner, getattr(inner, "model", None)
    if isinstance(inner, (nn.Sequential, nn.ModuleList)) and len(inner):
        return inner[-1]
    return model


def class_logit_layers(model: nn.Module) -> list[nn.Module]:
    """The modules whose outputs are the class logits of ``model``.

    Classification: ``[Classify.linear]``. Detection family (``Detect``, ``Segment``, ``Pose``, ``OBB``, their YOLO26
    forms, ``v10Detect``): the final ``nn.Conv2d`` of every ``cv3`` branch, then of every ``one2one_cv3`` branch when
    the head is end-to-end (a branch that ``Detect.fuse()`` removed is skipped).

    ``model`` is a ``DetectionModel``/``ClassificationModel`` (or anything whose ``.model[-1]`` is the head), an
    ``ultralytics.YOLO`` wrapper, or the head itself.

    Raises:
        ValueError: the head has no class logits that an affine map can be folded into (RT-DETR, open-vocabulary
            World/YOLOE heads, semantic segmentation, depth, ...), or its layers are not of the expected form.
    """
    from ultralytics.nn.modules.head import Classify, Detect

    head = _head(model)
    name = type(head).__name__
    if isinstance(head, Classify):
        if not isinstance(getattr(head, "linear", None), nn.Linear):
            raise ValueError(f"Classify head without an nn.Linear 'linear' layer (found {type(head.linear).__name__})")
        return [head.linear]
    if isinstance(head, Detect):
        if name.startswith(("World", "YOLOE")):  # class scores are text-embedding similarities, not a conv's output
            raise ValueError(
                f"the {name} head has no class-logit layer to fold a calibration into: its class scores are "
                "similarities to text/prompt embeddings (open-vocabulary), not the outputs of a class conv")
        nc = int(head.nc)
        layers: list[nn.Module] = []
        for branch in ("cv3", "one2one_cv3"):
            seqs = getattr(head, branch, None)
            if seqs is None:  # no end-to-end branch, or removed by Detect.fuse()
                continue
            for i, seq in enumerate(seqs):
                last = seq[-1] if isinstance(seq, nn.Sequential) else seq
                if not isinstance(last, nn.Conv2d) or last.out_channels != nc:
                    got = type(last).__name__ + (f" with {last.out_channels} out channels"
                                                 if isinstance(last, nn.Conv2d) else "")
                    raise ValueError(f"{name}.{branch}[{i}] does not end in an nn.Conv2d with nc={nc} out channels "
                                     f"(found {got}); cannot locate the class logits")
                layers.append(last)
        if not layers:
            raise ValueError(f"the {name} head has neither cv3 nor one2one_cv3 class branches")
        return layers
    raise ValueError(
        f"model has no class head to fold a calibration into: found a {name} head; supported are Classify "
        "(classification) and Detect and its subclasses (detect, segment, pose, obb; v8/11 and end-to-end heads)")


def _float64(x: Any) -> Tensor:
    """``x`` as a float64 CPU tensor: a tensor via the CPU (MPS has no float64), numbers and lists without a float32
    stop on the way."""
    return x.detach().to("cpu").double() if isinstance(x, Tensor) else torch.as_tensor(x, dtype=torch.float64)


def _as_map(weight: Any, bias: Any, k: int, detection: bool) -> tuple[Tensor, Tensor]:
    """``weight`` as a float64 ``(K, K)`` matrix (classification) or ``(K,)`` per-class scale (detection), ``bias`` as
    float64 ``(K,)``, checked."""
    w, b = _float64(weight), _float64(bias)
    if w.ndim > 2 or (w.ndim >= 1 and w.shape[0] != k) or (w.ndim == 2 and w.shape[1] != k):
        raise ValueError(f"calibration weight of shape {tuple(w.shape)} does not match the model's K={k} classes: "
                         f"expected a scalar, ({k},) or ({k}, {k})")
    if b.ndim > 1 or (b.ndim == 1 and b.shape[0] != k):
        raise ValueError(f"calibration bias of shape {tuple(b.shape)} does not match the model's K={k} classes: "
                         f"expected ({k},)")
    if not (torch.isfinite(w).all() and torch.isfinite(b).all()):
        raise ValueError("calibration weight and bias must be finite")
    b = b.expand(k).clone()
    if detection:
        if w.ndim == 2:
            raise ValueError(
                "a full (K, K) matrix cannot be folded into a detection head: detection class scores are independent "
                "per-class sigmoids; use a scalar (temperature) or a (K,) per-class scale")
        return w.expand(k).clone(), b
    return (torch.diag(w) if w.ndim == 1 else w * torch.eye(k, dtype=torch.float64) if w.ndim == 0 else w), b


@torch.no_grad()
def fold_logit_map(model: nn.Module, weight: Tensor, bias: Tensor) -> None:
    """Fold ``z -> z @ A.T + b`` into the class-logit layers of ``model``, in place.

    ``weight`` is ``A``: a scalar ``()`` (``1/T``), a ``(K,)`` diagonal or a ``(K, K)`` matrix (classification only);
    ``bias`` is ``b``, ``(K,)`` (a scalar is broadcast). Classification: ``W' = A W``, ``b' = A b0 + b`` on
    ``Classify.linear``. Detection: each class conv's output channel ``c`` becomes ``a_c W_c``, ``a_c b0_c + b_c``;
    a ``(K, K)`` matrix raises ``ValueError``.

    The fold is computed in float64 and cast back to each layer's dtype (an fp16 layer rounds the folded weights: see
    :func:`write_calibrated_checkpoint`, which folds into float32). A conv without a bias gets one when ``b != 0``.

    Raises:
        ValueError: no class head (see :func:`class_logit_layers`), shapes that do not match ``K``, a full matrix for
            detection, non-finite values.
    """
    layers = class_logit_layers(model)
    detection = isinstance(layers[0], nn.Conv2d)
    k = layers[0].out_channels if detection else layers[0].out_features
    w, b = _as_map(weight, bias, k, detection)
    for layer in layers:  # float64 on the CPU whatever the layer's device (MPS has no float64); copy_ moves back
        w0 = layer.weight.detach().to("cpu", torch.float64)
        b0 = layer.bias.detach().to("cpu", torch.float64) if layer.bias is not None else torch.zeros(k, dtype=w0.dtype)
        if detection:
            new_w, new_b = w0 * w.view(-1, *([1] * (w0.ndim - 1))), w * b0 + b
        else:
            new_w, new_b = w @ w0, w @ b0 + b
        layer.weight.copy_(new_w.to(layer.weight.dtype))
        if layer.bias is not None:
            layer.bias.copy_(new_b.to(layer.bias.dtype))
        elif bool((new_b != 0).any()):
            layer.bias = nn.Parameter(new_b.to(layer.weight.device, layer.weight.dtype),
                                      requires_grad=layer.weight.requires_grad)


def _load(src: str | Path) -> dict:
    """An Ultralytics checkpoint dict, read by Ultralytics' own loader (legacy module paths, safe-load option)."""
    from ultralytics.nn.tasks import torch_safe_load

    src = Path(src)
    if not src.is_file():  # torch_safe_load would try to download a missing official name ("yolo11n.pt")
        raise FileNotFoundError(f"checkpoint not found: {src}")
    ckpt, _ = torch_safe_load(src)
    if not isinstance(ckpt, dict):
        raise ValueError(f"{src} is not an Ultralytics checkpoint dict")
    return ckpt


def _plain_record(record: dict) -> dict:
    """``record`` as plain JSON types (numpy floats and tuples become floats and lists); ``TypeError`` otherwise."""
    if not isinstance(record, dict):
        raise TypeError(f"calibration record must be a dict, got {type(record).__name__}")
    try:
        return json.loads(json.dumps(record, allow_nan=False))
    except (TypeError, ValueError) as e:
        raise TypeError(f"calibration record must be a JSON-able dict of finite values: {e}") from e


def write_calibrated_checkpoint(src: str | Path, dst: str | Path, weight: Tensor, bias: Tensor, record: dict) -> Path:
    """Write ``dst``: the Ultralytics checkpoint ``src`` with ``z -> A z + b`` folded into its class logits.

    The checkpoint is read with Ultralytics' own loader (``torch_safe_load``); the fold goes into every model object
    it holds (``ckpt["ema"]`` and ``ckpt["model"]``; stock loading uses ``ema`` when set, otherwise ``model``), each
    folded once even when both keys hold the same object. ``record`` (a JSON-able dict: method, parameters, ...) is
    appended to the list under ``ckpt["calibration"]``: calibrating a calibrated checkpoint composes the maps (the new
    one applies to the already calibrated logits) and keeps the history. Every other key (``train_args``, ``date``,
    ``version``, an optimizer state, ...) is kept.

    The folded models are saved in **float32**: stock checkpoints hold fp16 weights (``strip_optimizer`` and
    ``save_model`` call ``.half()``), and folding into fp16 would round the calibrated logits (about 1e-3 relative),
    so the file is about twice the size of a stripped one. Stock loading casts to float32 anyway.

    ``dst`` is written atomically (a temporary file in its folder, then ``os.replace``), so ``dst == src`` is safe.
    It must end in ``.pt`` (Ultralytics loads only that suffix as a checkpoint).

    Raises:
        FileNotFoundError: ``src`` does not exist.
        ValueError: see :func:`fold_logit_map`; a checkpoint without a model; a quantization-aware (QAT)
            checkpoint, whose learned quantizer ranges would no longer match the folded weights; ``dst`` not ``.pt``.
        TypeError: ``record`` is not a JSON-able dict.
    """
    from yolo_ls.engine.checkpoints import atomic_write_bytes

    dst = Path(dst)
    if dst.suffix != ".pt":
        raise ValueError(f"calibrated checkpoint must end in .pt for Ultralytics to load it: {dst}")
    rec = _plain_record(record)
    ckpt = _load(src)
    if ckpt.get("modelopt"):
        raise ValueError(f"{src} is a quantization-aware (QAT) checkpoint: its quantizer ranges were learned for the "
                         "unfolded weights; calibrate the float model before QAT instead")
    models: dict[int, nn.Module] = {}
    for key in ("ema", "model"):
        m = ckpt.get(key)
        if isinstance(m, nn.Module):
            models.setdefault(id(m), m)
    if not models:
        raise ValueError(f"{src} holds no model under 'ema' or 'model'")
    for m in models.values():
        m.float()
        fold_logit_map(m, weight, bias)
    ckpt[CALIBRATION_KEY] = [*calibration_history(ckpt), rec]
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    atomic_write_bytes(dst, buf.getvalue())
    return dst


def calibration_history(ckpt: str | Path | dict) -> list[dict]:
    """The calibration records of a checkpoint (a path or a loaded dict), oldest first; ``[]`` when uncalibrated."""
    if not isinstance(ckpt, dict):
        ckpt = _load(ckpt)
    return deepcopy(list(ckpt.get(CALIBRATION_KEY) or []))
