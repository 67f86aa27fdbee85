"""Calibrated checkpoints (yolo_ls/engine/fold.py): an affine map of the class logits folded into the last linear
layer gives a plain Ultralytics checkpoint whose stock predict/val/export confidences are the calibrated ones.

Every reference is computed independently of the fold: the raw checkpoint's logits (a forward hook on
``Classify.linear`` during the raw checkpoint's stock predict, or the logit of a raw detection score) mapped in float64.
The models are untrained, built from yaml and saved in the shape ``strip_optimizer`` leaves (fp16 weights), with the
class layer's weights spread so that the scores vary.
"""

from __future__ import annotations

import json
import math
from copy import deepcopy
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from tests.helpers import device_params, run_python, yolo26_mark
from yolo_ls.engine.fold import (
    calibration_history,
    class_logit_layers,
    fold_logit_map,
    write_calibrated_checkpoint,
)

K_CLS = 5
K_DET = 3
TOL = 1e-5


# ------------------------------------------------------------------------------------------------------------- builders
_BUILT: dict[tuple[str, int], nn.Module] = {}


def _task_model(cfg: str, nc: int) -> nn.Module:
    """A fresh copy of an untrained ``cfg`` model with ``nc`` classes (each config is built once: seconds on a busy
    CPU)."""
    from ultralytics.nn import tasks

    if (cfg, nc) not in _BUILT:
        task = tasks.guess_model_task(cfg)
        cls = {"classify": tasks.ClassificationModel, "detect": tasks.DetectionModel,
               "segment": tasks.SegmentationModel, "pose": tasks.PoseModel, "obb": tasks.OBBModel}[task]
        with torch.random.fork_rng():
            torch.manual_seed(0)  # the same weights whichever test builds it first
            _BUILT[cfg, nc] = cls(cfg, nc=nc, verbose=False)
    return deepcopy(_BUILT[cfg, nc])


def _blocks(n: int, size: int, seed: int = 0) -> np.ndarray:
    """``n`` images (N, size, size, 3) uint8 of 4x4 coloured blocks (smooth, so that features differ between images)."""
    rng = np.random.RandomState(seed)
    small = rng.randint(0, 256, (n, 4, 4, 3)).astype(np.uint8)
    return np.ascontiguousarray(np.kron(small, np.ones((1, size // 4, size // 4, 1), np.uint8)))


def _spread(model: nn.Module, imgsz: int, seed: int = 0, images: np.ndarray | None = None,
            det_bias: float = -0.5, std: float = 1.0) -> None:
    """Make an untrained model's scores and boxes vary. Its activations vanish layer by layer (class-layer inputs
    ~1e-8: one score everywhere, every box the whole image), so the BatchNorm statistics are set from one batch of
    images; then the class layers are scaled to outputs of standard deviation 1 with random biases, and the box layers
    to small boxes (a few strides) that differ from anchor to anchor. ``images`` (N, imgsz, imgsz, 3) uint8 set the
    statistics (default: 32 block images): on images unlike them the scores can saturate at 1.0 in float32.
    ``det_bias`` is the mean bias of the detection class convs (a trained detector's background scores are low);
    ``std`` scales the spread (an untrained net's activations are heavy-tailed on images outside that batch)."""
    g = torch.Generator().manual_seed(seed)
    images = _blocks(32, imgsz, seed + 100) if images is None else images
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average: one batch sets the statistics
    model.train()
    with torch.no_grad():
        model(x)
    for bn in bns:
        bn.momentum = 0.03
    model.eval()
    head = model.model[-1]
    cls_layers = class_logit_layers(model)
    box_layers = [seq[-1] for br in ("cv2", "one2one_cv2") for seq in (getattr(head, br, None) or [])]
    stds: dict[int, float] = {}
    hooks = [m.register_forward_hook(lambda m, i, o: stds.__setitem__(id(m), float(o.std())))
             for m in cls_layers + box_layers]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    with torch.no_grad():
        for m in cls_layers:
            m.weight.mul_(std / stds[id(m)])
            m.bias.copy_(torch.randn(m.bias.shape, generator=g) + (0 if isinstance(m, nn.Linear) else det_bias))
        for m in box_layers:
            reg_max = m.out_channels // 4
            m.weight.mul_((0.3 if reg_max == 1 else 1.0) * std / stds[id(m)])
            m.bias.copy_(torch.full((4,), 1.5) if reg_max == 1 else (-0.7 * torch.arange(reg_max).float()).repeat(4))


def _save_ckpt(path: Path, cfg: str, nc: int, imgsz: int, seed: int = 0, **spread) -> Path:
    """A checkpoint of an untrained ``cfg`` model as ``strip_optimizer`` leaves one (fp16 model, no EMA, metadata)."""
    from ultralytics import __version__
    from ultralytics.cfg import DEFAULT_CFG_DICT
    from ultralytics.nn.tasks import guess_model_task

    model = _task_model(cfg, nc)
    _spread(model, imgsz, seed, **spread)
    task = guess_model_task(cfg)
    args = {k: v for k, v in {**DEFAULT_CFG_DICT, "task": task, "model": cfg, "imgsz": imgsz}.items()
            if k in DEFAULT_CFG_DICT}
    model.names = {i: f"c{i}" for i in range(nc)}
    model.args = dict(args)
    if task == "classify":  # 8.3's classify predictor reads the transforms from the model, as its trainer sets them
        from ultralytics.data.augment import classify_transforms

        model.transforms = classify_transforms(imgsz)
    model.half()
    for p in model.parameters():
        p.requires_grad = False
    ckpt = {"date": "2026-01-01T00:00:00", "version": __version__, "license": "AGPL-3.0", "docs": "x",
            "epoch": -1, "best_fitness": None, "model": model, "ema": None, "updates": None, "optimizer": None,
            "scaler": None, "stopper": None, "train_args": args, "train_metrics": {"fitness": 0.25}}
    torch.save(ckpt, path)
    return path


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory) -> dict[str, Path]:
    """Raw checkpoints, built on first use: classify (yolo11n-cls), detect v8 head (yolo11n), end-to-end (yolo26n)."""
    root = tmp_path_factory.mktemp("fold-ckpts")

    class Lazy(dict):
        def __missing__(self, key):
            cfg, nc, imgsz = {"cls": ("yolo11n-cls.yaml", K_CLS, 32), "det": ("yolo11n.yaml", K_DET, 64),
                              "e2e": ("yolo26n.yaml", K_DET, 64)}[key]
            self[key] = _save_ckpt(root / f"{key}.pt", cfg, nc, imgsz)
            return self[key]

    return Lazy()


def _images(n: int, size: int, seed: int = 0) -> list[np.ndarray]:
    return list(_blocks(n, size, seed))


def _maps(k: int, seed: int = 1) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return {
        "temperature": (torch.tensor(1 / 1.7, dtype=torch.float64), torch.zeros(k, dtype=torch.float64)),
        "vector": (torch.rand(k, generator=g, dtype=torch.float64) * 1.5 + 0.3,
                   torch.randn(k, generator=g, dtype=torch.float64)),
        "matrix": (torch.eye(k, dtype=torch.float64) * 0.6 + torch.randn(k, k, generator=g, dtype=torch.float64) * 0.2,
                   torch.randn(k, generator=g, dtype=torch.float64) * 0.5),
    }


def _affine(z: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    w, z = w.double(), z.double()
    a = w * torch.eye(z.shape[-1], dtype=torch.float64) if w.ndim == 0 else torch.diag(w) if w.ndim == 1 else w
    return z @ a.T + b.double()


def _cls_logits(ckpt: Path, images: list[np.ndarray]) -> torch.Tensor:
    """The raw checkpoint's class logits for ``images``, read by a hook on Classify.linear during stock predict."""
    from ultralytics import YOLO

    yolo, zs = YOLO(str(ckpt)), []
    handle = yolo.model.model[-1].linear.register_forward_hook(lambda m, i, o: zs.append(o.detach().double()))
    yolo.predict(images, verbose=False)
    handle.remove()
    z = torch.cat(zs)
    assert z.shape == (len(images), K_CLS)
    return z


def _cls_probs(ckpt: Path, images: list[np.ndarray]) -> torch.Tensor:
    from ultralytics import YOLO

    return torch.stack([r.probs.data.double() for r in YOLO(str(ckpt)).predict(images, verbose=False)])


# --------------------------------------------------------------------------------------------------- class_logit_layers
def test_class_logit_layers_classify(ckpts):
    from ultralytics import YOLO

    yolo = YOLO(str(ckpts["cls"]))
    head = yolo.model.model[-1]
    for obj in (yolo, yolo.model, head):  # the YOLO wrapper, the ClassificationModel, the head itself
        assert [id(m) for m in class_logit_layers(obj)] == [id(head.linear)]


@pytest.mark.parametrize("cfg, head, n", [
    ("yolo11n.yaml", "Detect", 3),
    pytest.param("yolo26n.yaml", "Detect", 6, marks=yolo26_mark()),
    # more heads: a model build each (seconds on a busy CPU)
    pytest.param("yolov8n.yaml", "Detect", 3, marks=pytest.mark.slow),
    pytest.param("yolo11n-seg.yaml", "Segment", 3, marks=pytest.mark.slow),
    pytest.param("yolo11n-obb.yaml", "OBB", 3, marks=pytest.mark.slow),
    pytest.param("yolov10n.yaml", "v10Detect", 6, marks=pytest.mark.slow),
    pytest.param("yolo26n-pose.yaml", "Pose26", 6, marks=[yolo26_mark(), pytest.mark.slow]),
])
def test_class_logit_layers_detect(cfg, head, n):
    """Every cv3 branch's last 1x1 conv (K out channels), then every one2one_cv3 branch's; fusing drops one set."""
    model = _task_model(cfg, K_DET)
    h = model.model[-1]
    assert type(h).__name__ == head
    layers = class_logit_layers(model)
    assert len(layers) == n
    assert all(isinstance(m, nn.Conv2d) and m.out_channels == K_DET and m.kernel_size == (1, 1) for m in layers)
    branches = [h.cv3] + ([h.one2one_cv3] if n == 6 else [])
    assert [id(m) for m in layers] == [id(seq[-1]) for br in branches for seq in br]
    model.fuse(verbose=False)  # Detect.fuse() removes the branch the inference mode does not use
    assert len(class_logit_layers(model)) == 3


# ------------------------------------------------------------------------------------------------------- fold_logit_map
@pytest.mark.parametrize("kind", ["temperature", "vector", "matrix"])
def test_fold_classify_head_math(kind):
    """Head outputs after folding equal A z + b of the head outputs before, in float64 (float32 roundoff only)."""
    model = _task_model("yolo11n-cls.yaml", K_CLS)
    _spread(model, 32)
    x = torch.from_numpy(_blocks(6, 32, seed=11)).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        z = model(x)[1].double()
    w, b = _maps(K_CLS)[kind]
    fold_logit_map(model, w, b)
    with torch.no_grad():
        probs, z2 = model(x)
    assert model.model[-1].linear.weight.dtype == torch.float32
    torch.testing.assert_close(z2.double(), _affine(z, w, b), atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(probs.double(), _affine(z, w, b).softmax(1), atol=TOL, rtol=0)


@pytest.mark.skipif(not hasattr(__import__("ultralytics.nn.modules.head", fromlist=["Detect"]).Detect, "forward_head"),
                    reason="reads 8.4's raw head output ({'scores': ...}); 8.3 returns the levels' feature maps")
def test_fold_detect_head_math_and_dtype():
    """Per-class scale on every class conv: raw head scores (pre-sigmoid) map channel-wise; fp16 layers stay fp16."""
    model = _task_model("yolo11n.yaml", K_DET)
    _spread(model, 64)
    x = torch.from_numpy(_blocks(2, 64, seed=11)).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        z = model(x)[1]["scores"].double()  # (B, K, anchors) logits of the one-to-many branch
    w, b = _maps(K_DET)["vector"]
    fold_logit_map(model, w, b)
    with torch.no_grad():
        z2 = model(x)[1]["scores"].double()
    torch.testing.assert_close(z2, z * w[:, None] + b[:, None], atol=1e-4, rtol=1e-5)
    half = deepcopy(model).half()
    fold_logit_map(half, torch.tensor(0.5), torch.zeros(K_DET))
    assert all(m.weight.dtype == torch.float16 for m in class_logit_layers(half))


@pytest.mark.parametrize("device", device_params())
def test_fold_on_device(device):
    """Folding a model on an accelerator gives the CPU fold's weights (the float64 arithmetic runs on the CPU)."""
    cpu = _task_model("yolo11n.yaml", K_DET)
    dev = deepcopy(cpu).to(device)
    w, b = _maps(K_DET)["vector"]
    fold_logit_map(cpu, w, b)
    fold_logit_map(dev, w, b)
    for c, d in zip(class_logit_layers(cpu), class_logit_layers(dev)):
        assert d.weight.device.type == device
        assert torch.equal(c.weight, d.weight.cpu()) and torch.equal(c.bias, d.bias.cpu())


def test_fold_takes_numbers_in_float64():
    """Python numbers, lists and numpy arrays fold exactly as float64 tensors do (no float32 stop on the way)."""
    ref = _task_model("yolo11n-cls.yaml", K_CLS)
    w, b = _maps(K_CLS)["vector"]
    fold_logit_map(ref, w, b)
    for weight, bias in ((w.tolist(), b.tolist()), (w.numpy(), b.numpy())):
        m = _task_model("yolo11n-cls.yaml", K_CLS)
        fold_logit_map(m, weight, bias)
        assert torch.equal(m.model[-1].linear.weight, ref.model[-1].linear.weight)
        assert torch.equal(m.model[-1].linear.bias, ref.model[-1].linear.bias)
    t1, t2 = _task_model("yolo11n-cls.yaml", K_CLS), _task_model("yolo11n-cls.yaml", K_CLS)
    fold_logit_map(t1, 1 / 1.7, 0.0)
    fold_logit_map(t2, torch.tensor(1 / 1.7, dtype=torch.float64), torch.zeros(K_CLS, dtype=torch.float64))
    assert torch.equal(t1.model[-1].linear.weight, t2.model[-1].linear.weight)


def test_fold_conv_without_bias():
    """A class conv built without a bias gets one when the map has b != 0 (and none when b == 0)."""
    model = _task_model("yolo11n.yaml", K_DET)
    for layer in class_logit_layers(model):
        layer.bias = None
    fold_logit_map(model, torch.tensor(2.0), torch.zeros(K_DET))
    assert all(m.bias is None for m in class_logit_layers(model))
    fold_logit_map(model, torch.tensor(1.0), torch.arange(K_DET, dtype=torch.float64))
    assert all(torch.equal(m.bias, torch.arange(K_DET, dtype=torch.float32)) for m in class_logit_layers(model))


def test_errors():
    from ultralytics.nn.modules.head import WorldDetect

    det = _task_model("yolo11n.yaml", K_DET)
    with pytest.raises(ValueError, match="full .*matrix.*detection"):
        fold_logit_map(det, torch.eye(K_DET), torch.zeros(K_DET))
    with pytest.raises(ValueError, match=r"weight of shape \(4,\) does not match .*K=3"):
        fold_logit_map(det, torch.ones(4), torch.zeros(K_DET))
    with pytest.raises(ValueError, match=r"bias of shape \(5,\) does not match .*K=3"):
        fold_logit_map(det, torch.tensor(1.0), torch.zeros(5))
    cls = _task_model("yolo11n-cls.yaml", K_CLS)
    with pytest.raises(ValueError, match=r"weight of shape \(5, 4\) does not match .*K=5"):
        fold_logit_map(cls, torch.ones(5, 4), torch.zeros(K_CLS))
    with pytest.raises(ValueError, match="finite"):
        fold_logit_map(cls, torch.tensor(float("nan")), torch.zeros(K_CLS))
    bare = nn.Module()
    bare.model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Linear(8, 4))
    with pytest.raises(ValueError, match="no class head .*found a Linear head"):
        class_logit_layers(bare)
    with pytest.raises(ValueError, match="no class head .*found a Linear head"):
        fold_logit_map(bare, torch.tensor(1.0), torch.zeros(4))
    with pytest.raises(ValueError, match="WorldDetect head has no class-logit layer"):
        class_logit_layers(WorldDetect(nc=3, embed=16, ch=(16, 32)))


def test_write_errors(ckpts, tmp_path):
    w, b = torch.tensor(0.5), torch.zeros(K_CLS)
    with pytest.raises(FileNotFoundError):
        write_calibrated_checkpoint(tmp_path / "yolo11n.pt", tmp_path / "out.pt", w, b, {})
    with pytest.raises(ValueError, match=r"must end in \.pt"):
        write_calibrated_checkpoint(ckpts["cls"], tmp_path / "out.pth", w, b, {})
    with pytest.raises(TypeError, match="JSON"):
        write_calibrated_checkpoint(ckpts["cls"], tmp_path / "out.pt", w, b, {"t": torch.tensor(1.0)})
    with pytest.raises(ValueError, match="K=5"):
        write_calibrated_checkpoint(ckpts["cls"], tmp_path / "out.pt", torch.ones(3), b, {})
    assert list(tmp_path.iterdir()) == []  # nothing written, no temporary left


# ----------------------------------------------------------------------------------------------- calibrated checkpoints
@pytest.mark.parametrize("kind", ["temperature", "vector", "matrix"])
def test_classify_checkpoint_stock_predict(ckpts, tmp_path, kind):
    """Stock YOLO(calibrated).predict probabilities == softmax(A z + b), z the raw checkpoint's logits."""
    images = _images(6, 32)
    z = _cls_logits(ckpts["cls"], images)
    assert float((z.max(1).values - z.min(1).values).min()) > 1.0  # the logits really differ between classes
    w, b = _maps(K_CLS)[kind]
    dst = write_calibrated_checkpoint(ckpts["cls"], tmp_path / "cal.pt", w, b, {"method": kind})
    probs = _cls_probs(dst, images)
    expected = _affine(z, w, b).softmax(1)
    torch.testing.assert_close(probs, expected, atol=TOL, rtol=0)
    assert float((probs - z.softmax(1)).abs().max()) > 1e-2  # the calibration really changed them


def test_checkpoint_file(ckpts, tmp_path):
    """float32 models, every other key kept, record appended as plain JSON, no temporary file left behind."""
    from ultralytics.nn.tasks import torch_safe_load

    raw, _ = torch_safe_load(ckpts["cls"])
    record = {"method": "temperature", "params": {"T": np.float64(1.7)}, "classes": (0, 1)}
    dst = write_calibrated_checkpoint(ckpts["cls"], tmp_path / "cal.pt", torch.tensor(1 / 1.7), torch.zeros(K_CLS),
                                      record)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cal.pt"]
    cal, _ = torch_safe_load(dst)
    assert set(cal) == set(raw) | {"calibration"}
    for k in raw:
        if k != "model":
            assert cal[k] == raw[k], k
    assert {p.dtype for p in cal["model"].parameters()} == {torch.float32}
    assert cal["model"].names == raw["model"].names and cal["model"].args == raw["model"].args
    assert cal["calibration"] == [{"method": "temperature", "params": {"T": 1.7}, "classes": [0, 1]}]
    assert calibration_history(dst) == calibration_history(cal) == cal["calibration"]
    assert calibration_history(ckpts["cls"]) == []
    safe, _ = torch_safe_load(dst, safe_only=True)  # ULTRALYTICS_SAFE_LOAD: weights_only against the allow-list
    assert safe["calibration"] == cal["calibration"]
    # the untouched layers are the fp16 weights, cast exactly
    sd_raw, sd_cal = raw["model"].float().state_dict(), cal["model"].state_dict()
    assert all(torch.equal(sd_raw[k], sd_cal[k]) for k in sd_raw if "model.10.linear" not in k)


def test_ema_and_model_folded_once(ckpts, tmp_path):
    """A checkpoint holding the same module under 'ema' and 'model' is folded once; distinct ones both."""
    from ultralytics.nn.tasks import torch_safe_load

    raw, _ = torch_safe_load(ckpts["cls"])
    lin0 = raw["model"].model[-1].linear.weight.float().clone()
    same = {**raw, "ema": raw["model"]}
    torch.save(same, tmp_path / "same.pt")
    both = {**raw, "ema": deepcopy(raw["model"])}
    torch.save(both, tmp_path / "both.pt")
    for name in ("same", "both"):
        dst = write_calibrated_checkpoint(tmp_path / f"{name}.pt", tmp_path / f"{name}-cal.pt", torch.tensor(0.5),
                                          torch.zeros(K_CLS), {"method": "temperature"})
        cal, _ = torch_safe_load(dst)
        for key in ("ema", "model"):
            torch.testing.assert_close(cal[key].model[-1].linear.weight, lin0 * 0.5, atol=0, rtol=0)


def test_history_composes(ckpts, tmp_path):
    """Calibrating a calibrated checkpoint composes the maps and appends the record; dst == src is fine."""
    images = _images(5, 32, seed=3)
    z = _cls_logits(ckpts["cls"], images)
    maps = _maps(K_CLS)
    (w1, b1), (w2, b2) = maps["vector"], maps["matrix"]
    dst = tmp_path / "cal.pt"
    write_calibrated_checkpoint(ckpts["cls"], dst, w1, b1, {"method": "vector", "step": 1})
    write_calibrated_checkpoint(dst, dst, w2, b2, {"method": "matrix", "step": 2})
    assert [r["step"] for r in calibration_history(dst)] == [1, 2]
    expected = _affine(_affine(z, w1, b1), w2, b2).softmax(1)
    torch.testing.assert_close(_cls_probs(dst, images), expected, atol=TOL, rtol=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cal.pt"]


@pytest.mark.slow
def test_loads_with_stock_ultralytics_only(ckpts, tmp_path):
    """A fresh interpreter that imports ultralytics (and never yolo_ls) loads, predicts and reads the history."""
    images = _images(3, 32, seed=5)
    z = _cls_logits(ckpts["cls"], images)
    w, b = _maps(K_CLS)["vector"]
    dst = write_calibrated_checkpoint(ckpts["cls"], tmp_path / "cal.pt", w, b, {"method": "vector", "T": 1.5})
    np.save(tmp_path / "images.npy", np.stack(images))
    code = f"""
import json, sys
import numpy as np
import ultralytics
from ultralytics import YOLO
from ultralytics.nn.tasks import torch_safe_load
m = YOLO({str(dst)!r})
probs = [r.probs.data.tolist() for r in m.predict(list(np.load({str(tmp_path / 'images.npy')!r})), verbose=False)]
ckpt, _ = torch_safe_load({str(dst)!r})
assert not any(k.startswith("yolo_ls") for k in sys.modules), sorted(k for k in sys.modules if "yolo_ls" in k)
print("JSON" + json.dumps({{"task": m.task, "probs": probs, "calibration": ckpt["calibration"]}}))
"""
    proc = run_python(code, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(next(x for x in proc.stdout.splitlines() if x.startswith("JSON"))[4:])
    assert out["task"] == "classify"
    assert out["calibration"] == [{"method": "vector", "T": 1.5}] == calibration_history(dst)
    torch.testing.assert_close(torch.tensor(out["probs"], dtype=torch.float64), _affine(z, w, b).softmax(1),
                               atol=TOL, rtol=0)


@pytest.mark.slow
def test_classify_onnx_export(ckpts, tmp_path):
    """Stock ONNX export of the calibrated checkpoint, run under onnxruntime, gives softmax(A z + b)."""
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from ultralytics import YOLO

    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    raw = YOLO(str(ckpts["cls"])).model.eval()
    with torch.no_grad():
        z = raw(x)[1].double()  # the raw checkpoint's logits (eval-mode Classify returns (probs, logits))
    w, b = _maps(K_CLS)["matrix"]
    dst = write_calibrated_checkpoint(ckpts["cls"], tmp_path / "cal.pt", w, b, {"method": "matrix"})
    onnx_file = YOLO(str(dst)).export(format="onnx", imgsz=32, dynamic=True, verbose=False)
    sess = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    (out,) = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
    torch.testing.assert_close(torch.from_numpy(out).double(), _affine(z, w, b).softmax(1), atol=TOL, rtol=0)


# ------------------------------------------------------------------------------------------------------------ detection
def _boxes(ckpt: Path, images: list[np.ndarray], conf: float, nms: bool | None) -> list[dict]:
    """Stock predict's boxes per image as {(rounded xyxy, class): conf}."""
    from ultralytics import YOLO

    kw = {} if nms is None else {"nms": nms}
    out = []
    for r in YOLO(str(ckpt)).predict(images, imgsz=64, conf=conf, verbose=False, **kw):
        xyxy, cls, cf = r.boxes.xyxy.double(), r.boxes.cls.long(), r.boxes.conf.double()
        keys = [(tuple(round(v, 3) for v in box), c) for box, c in zip(xyxy.tolist(), cls.tolist())]
        twice = {k for k in keys if keys.count(k) > 1}  # e.g. clipped to the same place: cannot match by coordinates
        out.append({k: s for k, s in zip(keys, cf.tolist()) if k not in twice})
    return out


def _logit(p: float) -> float:
    return math.log(p) - math.log1p(-p)


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


DET_CASES = [
    pytest.param("det", None, id="v8-head"),
    pytest.param("e2e", None, id="e2e-one2many-nms", marks=yolo26_mark()),
    pytest.param("e2e", False, id="e2e-one2one", marks=yolo26_mark()),
]


@pytest.mark.parametrize("key, nms", DET_CASES)
@pytest.mark.parametrize("kind", ["temperature", "vector"])
def test_detect_checkpoint_stock_predict(ckpts, tmp_path, key, nms, kind):
    """Each stock-predicted box's conf == sigmoid(a_c z + b_c), z the raw checkpoint's logit for that box and class.

    Temperature, with the conf threshold mapped the same way, keeps the box set identical; a per-class map can change
    which class wins an anchor (and NMS), so only the boxes present in both are compared.
    """
    images = _images(3, 64, seed=7)
    w, b = _maps(K_DET)[kind]
    conf = 0.5 if kind == "temperature" else 0.0
    conf_cal = _sigmoid(float(w) * _logit(conf)) if kind == "temperature" else 0.0
    raw = _boxes(ckpts[key], images, conf, nms)
    dst = write_calibrated_checkpoint(ckpts[key], tmp_path / "cal.pt", w, b, {"method": kind})
    cal = _boxes(dst, images, conf_cal, nms)
    a = w.expand(K_DET) if w.ndim == 0 else w
    n_common, spread = 0, []
    for r, c in zip(raw, cal):
        if kind == "temperature":
            assert set(r) == set(c)
        for key_ in set(r) & set(c):
            if not 1e-6 < r[key_] < 1 - 1e-6:  # float32 conf too close to 0 or 1 to give back its logit
                continue
            cls = key_[1]
            assert abs(c[key_] - _sigmoid(float(a[cls]) * _logit(r[key_]) + float(b[cls]))) < TOL, (key_, r[key_])
            spread.append(r[key_])
            n_common += 1
    assert n_common >= 5, n_common
    assert max(spread) - min(spread) > 0.1  # the scores really vary


# -------------------------------------------------------------------------------------- detection: AP under temperature
def _val(ckpt: Path, data: Path, project: Path, name: str, conf: float, nms: bool | None, **kw):
    from ultralytics import YOLO

    extra = {} if nms is None else {"nms": nms}
    return YOLO(str(ckpt)).val(data=str(data), imgsz=64, batch=16, workers=0, device="cpu", plots=False,
                               verbose=False, conf=conf, project=str(project), name=name, exist_ok=True,
                               **extra, **kw)


@pytest.fixture(scope="module")
def ap_ckpts(tmp_path_factory, digits_det_yaml) -> dict[str, Path]:
    """Raw detection checkpoints whose statistics come from the digits-det train images as val letterboxes them
    (block-image statistics saturate scores at 1.0 on those: float32 ties, which a temperature breaks, moving AP) and
    whose class scores are mostly low, as a trained detector's background is; built on first use."""
    import cv2

    root = tmp_path_factory.mktemp("fold-ap-ckpts")
    images = np.stack([cv2.imread(str(f))[..., ::-1] for f in sorted((digits_det_yaml.parent / "images" / "train")
                                                                      .glob("*.png"))])
    # as stock val feeds them: rect batches letterbox a 64 px image into 96 px with grey (114) borders
    images = np.pad(images, ((0, 0), (16, 16), (16, 16), (0, 0)), constant_values=114)

    class Lazy(dict):
        def __missing__(self, key):
            cfg = {"det": "yolo11n.yaml", "e2e": "yolo26n.yaml"}[key]
            self[key] = _save_ckpt(root / f"{key}.pt", cfg, K_DET, 64, images=images, det_bias=-6.0, std=0.2)
            return self[key]

    return Lazy()


def _matched_dataset(ckpt: Path, src_yaml: Path, root: Path, nms: bool | None) -> Path:
    """digits-det val images with labels taken from the raw model's own stock-val predictions (of ranks 1, 2, 4 and
    7 of each class in each image) plus one box nobody predicts: an untrained model with true positives, false
    positives and misses, so that AP is neither 0 nor 1."""
    import yaml

    _val(ckpt, src_yaml, root, "pred", 0.001, nms, save_txt=True, save_conf=True)
    src = src_yaml.parent
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for img in sorted((src / "images" / "val").iterdir()):
        (root / "images" / img.name).symlink_to(img)
        pred = root / "pred" / "labels" / f"{img.stem}.txt"
        rows = [line.split() for line in pred.read_text().splitlines()] if pred.exists() else []
        rows.sort(key=lambda r: -float(r[5]))
        by_class = [[r[:5] for r in rows if r[0] == str(c)] for c in range(K_DET)]
        picked = [rs[i] for rs in by_class for i in (0, 1, 3, 6) if i < len(rs)]
        (root / "labels" / f"{img.stem}.txt").write_text(
            "\n".join(" ".join(r) for r in [*picked, ["0", "0.9", "0.9", "0.1", "0.1"]]) + "\n")
    data = {"path": str(root), "train": "images", "val": "images",
            "names": {i: f"c{i}" for i in range(K_DET)}}
    (root / "data.yaml").write_text(yaml.safe_dump(data))
    return root / "data.yaml"


@pytest.mark.slow
@pytest.mark.parametrize("key, nms", DET_CASES)
def test_detect_val_ap_unchanged_by_temperature(ap_ckpts, tmp_path, digits_det_yaml, key, nms):
    """Temperature scaling is monotone: at the conf threshold mapped the same way (conf' = sigmoid(logit(conf)/T)),
    stock val's candidate set is the same and every class's AP is unchanged. At the default conf=0.001 for both, the
    candidate set differs and AP may move (printed, not asserted)."""
    data = _matched_dataset(ap_ckpts[key], digits_det_yaml, tmp_path / "data", nms)
    conf = 0.05
    raw = _val(ap_ckpts[key], data, tmp_path, "raw", conf, nms).box
    assert 0 < raw.all_ap[:, 0].mean() < 1, raw.all_ap[:, 0]  # true and false positives: something to check
    raw_d = _val(ap_ckpts[key], data, tmp_path, "raw-default", 0.001, nms).box
    for temp in (2.0, 0.5):
        dst = write_calibrated_checkpoint(ap_ckpts[key], tmp_path / f"cal-{temp}.pt", torch.tensor(1 / temp),
                                          torch.zeros(K_DET), {"method": "temperature", "T": temp})
        cal = _val(dst, data, tmp_path, f"cal-{temp}", _sigmoid(_logit(conf) / temp), nms).box
        assert raw.ap_class_index.tolist() == cal.ap_class_index.tolist()
        np.testing.assert_allclose(cal.all_ap, raw.all_ap, atol=1e-6, rtol=0)
        cal_d = _val(dst, data, tmp_path, f"cal-{temp}-default", 0.001, nms).box
        print(f"\n[{key} nms={nms}] T={temp}: AP50 per class at conf=0.001 for both: raw "
              f"{np.round(raw_d.all_ap[:, 0], 4).tolist()}, calibrated {np.round(cal_d.all_ap[:, 0], 4).tolist()}; "
              f"mAP50 {float(cal_d.all_ap[:, 0].mean() - raw_d.all_ap[:, 0].mean()):+.5f}, "
              f"mAP50-95 {float(cal_d.all_ap.mean() - raw_d.all_ap.mean()):+.5f}")
