"""Tests for the offline sklearn-digits datasets in yolo_ls.datasets."""

from __future__ import annotations

import csv
import importlib
import json
import math
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from sklearn.datasets import load_digits

from yolo_ls.datasets import DATASET_ALIASES, default_root, digits, digits_detection, resolve_data

# `yolo_ls.datasets.digits` as an attribute is the function (re-exported), so fetch the module explicitly.
digits_mod = importlib.import_module("yolo_ls.datasets.digits")

MARKER = ".yolo_ls_dataset.json"
CLS_KW = {"imgsz": 16, "val_fraction": 0.2, "seed": 0}
DET_KW = {"imgsz": 64, "n_train": 20, "n_val": 10, "seed": 0, "max_digits": 4}
BG_MAX = 32  # background noise ceiling of digits_detection


def tree(root: Path) -> dict[str, bytes]:
    """Map every file under root (relative posix path) to its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def read_gray(path: Path) -> np.ndarray:
    """Read a PNG written by yolo-ls, checking its 3 channels are equal, and return one channel."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert img is not None and img.ndim == 3 and img.shape[2] == 3, path
    assert (img[..., 0] == img[..., 1]).all() and (img[..., 0] == img[..., 2]).all()
    return img[..., 0]


@pytest.fixture(scope="module")
def sk():
    """sklearn digits as (images scaled to 0..255 uint8, targets)."""
    bunch = load_digits()
    return np.rint(bunch.images * 255 / 16).astype(np.uint8), bunch.target


@pytest.fixture(scope="module")
def cls_root(tmp_path_factory) -> Path:
    return digits(tmp_path_factory.mktemp("cls") / "digits", **CLS_KW)


@pytest.fixture(scope="module")
def det_yaml(tmp_path_factory) -> Path:
    return digits_detection(tmp_path_factory.mktemp("det") / "det", **DET_KW)


def load_labels(root: Path, split: str) -> dict[str, np.ndarray]:
    """Map image stem -> (n, 5) label array for a detection split."""
    out = {}
    for p in sorted((root / "labels" / split).glob("*.txt")):
        rows = [list(map(float, line.split())) for line in p.read_text().splitlines() if line.strip()]
        out[p.stem] = np.array(rows, dtype=np.float64).reshape(-1, 5)
    return out


def load_sources(root: Path, split: str) -> list[dict[str, str]]:
    with open(root / "sources" / f"{split}.csv", newline="") as f:
        return list(csv.DictReader(f))


# ----------------------------------------------------------------------------------------------------- classification
def test_default_roots():
    from ultralytics.utils import SETTINGS

    assert default_root("digits-32") == Path(SETTINGS["datasets_dir"]) / "yolo-ls" / "digits-32"
    assert DATASET_ALIASES == ("digits", "digits-det")


def test_digits_layout_counts_and_stratification(cls_root, sk):
    _, targets = sk
    counts = {}
    for split in ("train", "val"):
        assert sorted(p.name for p in (cls_root / split).iterdir()) == [str(i) for i in range(10)]
        counts[split] = {c: len(list((cls_root / split / str(c)).glob("*.png"))) for c in range(10)}
    n_train, n_val = sum(counts["train"].values()), sum(counts["val"].values())
    assert n_train + n_val == 1797
    assert n_val == math.ceil(0.2 * 1797)  # sklearn's train_test_split rounds the test size up
    for c in range(10):
        total = int((targets == c).sum())
        assert counts["train"][c] + counts["val"][c] == total
        assert counts["val"][c] >= 1
        assert abs(counts["val"][c] - 0.2 * total) <= 1.0  # stratified: each class keeps the val fraction

    marker = json.loads((cls_root / MARKER).read_text())
    assert marker["params"] == CLS_KW and marker["counts"] == {"train": n_train, "val": n_val}
    train, val = set(marker["sources"]["train"]), set(marker["sources"]["val"])
    assert not train & val and train | val == set(range(1797))


def test_digits_pixels_match_source(cls_root, sk):
    images, targets = sk
    seen = set()
    for split in ("train", "val"):
        for p in sorted((cls_root / split).rglob("*.png")):
            idx = int(p.stem)  # files are named by sklearn index
            seen.add(idx)
            assert int(p.parent.name) == targets[idx]
            img = read_gray(p)
            assert img.shape == (16, 16)
            # INTER_NEAREST with imgsz a multiple of 8: every source pixel is a 2x2 block
            np.testing.assert_array_equal(cv2.resize(img, (8, 8), interpolation=cv2.INTER_AREA), images[idx])
            np.testing.assert_array_equal(img, np.kron(images[idx], np.ones((2, 2), np.uint8)))
    assert len(seen) == 1797


def test_digits_ultralytics_accepts(cls_root):
    from ultralytics.data.utils import check_cls_dataset

    data = check_cls_dataset(str(cls_root))
    assert data["nc"] == 10 and data["names"] == {i: str(i) for i in range(10)}


def test_digits_deterministic_and_seeded(cls_root, tmp_path):
    again = digits(tmp_path / "again", **CLS_KW)
    assert tree(again) == tree(cls_root)
    other = digits(tmp_path / "other", **{**CLS_KW, "seed": 1})
    a, b = json.loads((cls_root / MARKER).read_text()), json.loads((other / MARKER).read_text())
    assert a["sources"]["val"] != b["sources"]["val"]


def test_digits_cached_not_rewritten(tmp_path):
    root = digits(tmp_path / "d", imgsz=8)
    files = [p for p in root.rglob("*") if p.is_file()]
    old = 1_000_000_000
    for p in files:
        os.utime(p, ns=(old, old))
    assert digits(root, imgsz=8) == root
    assert digits(str(root), imgsz=8) == root
    assert all(p.stat().st_mtime_ns == old for p in files)
    assert sorted(p for p in root.rglob("*") if p.is_file()) == sorted(files)


def test_digits_mismatched_params_raise(tmp_path):
    root = digits(tmp_path / "d", imgsz=8)
    before = tree(root)
    for kw in ({"imgsz": 8, "seed": 1}, {"imgsz": 8, "val_fraction": 0.3}):
        with pytest.raises(ValueError, match="another root"):
            digits(root, **kw)
    with pytest.raises(ValueError, match="another root"):
        digits_detection(root, imgsz=32, n_train=1, n_val=1)  # a classification root is not a detection root
    assert tree(root) == before


def test_digits_incomplete_build_not_cached(tmp_path):
    root = tmp_path / "d"
    (root / "train" / "0").mkdir(parents=True)
    (root / "train" / "0" / "0000.png").write_bytes(b"partial")
    with pytest.raises(ValueError, match="marker"):
        digits(root, imgsz=8)
    assert (root / "train" / "0" / "0000.png").read_bytes() == b"partial"  # user files are never deleted
    assert not (root / MARKER).exists()


def test_digits_corrupt_marker_raises(tmp_path):
    root = tmp_path / "d"
    root.mkdir()
    (root / MARKER).write_text("{not json")
    with pytest.raises(ValueError, match="marker"):
        digits(root, imgsz=8)


def test_digits_empty_root_and_leftover_tmp(tmp_path):
    root = tmp_path / "d"
    root.mkdir()  # an existing empty folder is taken over
    (tmp_path / ".d.tmp-leftover").mkdir()  # an interrupted earlier build's temp folder does not matter
    assert digits(root, imgsz=8) == root
    assert (root / MARKER).is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".d.tmp-") and p.name != ".d.tmp-leftover"]


def test_digits_failed_build_leaves_nothing(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(digits_mod, "_imwrite", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        digits(tmp_path / "d", imgsz=8)
    assert list(tmp_path.iterdir()) == []  # neither a root nor a temp folder is left behind


def test_digits_invalid_args(tmp_path):
    with pytest.raises(ValueError):
        digits(tmp_path / "a", val_fraction=1.0)
    with pytest.raises(ValueError):
        digits(tmp_path / "b", imgsz=4)
    with pytest.raises(TypeError):
        digits(tmp_path / "c", imgsz=16.0)


# ---------------------------------------------------------------------------------------------------------- detection
def test_detection_yaml_valid(det_yaml):
    from ultralytics.data.utils import check_det_dataset

    root = det_yaml.parent
    raw = yaml.safe_load(det_yaml.read_text())
    assert raw["path"] == str(root) and Path(raw["path"]).is_absolute()
    assert raw["train"] == "images/train" and raw["val"] == "images/val"
    assert raw["names"] == {i: str(i) for i in range(10)}
    data = check_det_dataset(str(det_yaml))
    assert data["nc"] == 10
    assert Path(data["train"]) == root / "images" / "train" and Path(data["val"]) == root / "images" / "val"


def test_detection_labels_match_images(det_yaml):
    root = det_yaml.parent
    for split, n in (("train", DET_KW["n_train"]), ("val", DET_KW["n_val"])):
        images = sorted(p.stem for p in (root / "images" / split).glob("*.png"))
        labels = load_labels(root, split)
        assert len(images) == n and images == sorted(labels)
        sources = load_sources(root, split)
        for stem, lab in labels.items():
            assert 1 <= len(lab) <= DET_KW["max_digits"]
            assert ((lab[:, 1:] >= 0) & (lab[:, 1:] <= 1)).all()
            assert (lab[:, 3:] > 0).all()
            assert set(lab[:, 0]) <= set(range(10)) and (lab[:, 0] == lab[:, 0].round()).all()
            rows = [r for r in sources if r["image"] == f"{stem}.png"]
            assert [int(r["cls"]) for r in rows] == lab[:, 0].astype(int).tolist()
            # pixel boxes in sources.csv agree with the normalised labels
            s = DET_KW["imgsz"]
            xyxy = np.array([[int(r[k]) for k in ("x1", "y1", "x2", "y2")] for r in rows], dtype=np.float64) / s
            cxcywh = np.stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2,
                               xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]], 1)  # fmt: skip
            np.testing.assert_allclose(lab[:, 1:], cxcywh, atol=1e-6)


def test_detection_boxes_tight(det_yaml, sk):
    root = det_yaml.parent
    s = DET_KW["imgsz"]
    images, _ = sk
    for split in ("train", "val"):
        sources = load_sources(root, split)
        for stem, lab in load_labels(root, split).items():
            img = read_gray(root / "images" / split / f"{stem}.png").astype(np.int64)
            assert img.shape == (s, s)
            inside = np.zeros_like(img, dtype=bool)
            rows = [r for r in sources if r["image"] == f"{stem}.png"]
            for (_, cx, cy, w, h), r in zip(lab, rows):
                x1, y1 = round((cx - w / 2) * s), round((cy - h / 2) * s)
                x2, y2 = round((cx + w / 2) * s), round((cy + h / 2) * s)
                assert not inside[y1:y2, x1:x2].any()  # boxes never overlap
                inside[y1:y2, x1:x2] = True
                # the digit's bright pixels span the box, up to a few faint (sub-background) pixels at each edge
                ys, xs = np.nonzero(img[y1:y2, x1:x2] > BG_MAX)
                margin = max(3, round(0.2 * max(w, h) * s))
                assert xs.min() <= margin and ys.min() <= margin
                assert xs.max() >= x2 - x1 - 1 - margin and ys.max() >= y2 - y1 - 1 - margin
                # exact check against the source: the pasted patch is on the canvas and the box is its tight support
                x, y, size = int(r["x"]), int(r["y"]), int(r["size"])
                assert round(0.14 * s) <= size <= round(0.35 * s)
                patch = cv2.resize(images[int(r["source_index"])], (size, size), interpolation=cv2.INTER_LINEAR)
                region = img[y : y + size, x : x + size]
                assert (region >= patch).all() and (region[patch > BG_MAX] == patch[patch > BG_MAX]).all()
                pys, pxs = np.nonzero(patch)
                assert (x1, y1, x2, y2) == (x + pxs.min(), y + pys.min(), x + pxs.max() + 1, y + pys.max() + 1)
            assert img[~inside].max() <= BG_MAX  # outside the boxes there is only background noise
            fg = np.clip(img - BG_MAX, 0, None)
            assert fg[inside].sum() > 0 and fg[~inside].sum() == 0
            assert img[~inside].mean() < 16 and img.max() > 128  # dark background, bright digits


def test_detection_no_leakage(det_yaml, sk):
    root = det_yaml.parent
    _, targets = sk
    marker = json.loads((root / MARKER).read_text())
    assert marker["params"] == DET_KW
    pools = {k: set(v) for k, v in marker["pools"].items()}
    assert not pools["train"] & pools["val"]
    used = {}
    for split in ("train", "val"):
        rows = load_sources(root, split)
        used[split] = {int(r["source_index"]) for r in rows}
        assert used[split] <= pools[split]
        assert all(int(r["cls"]) == targets[int(r["source_index"])] for r in rows)
        assert marker["counts"][f"{split}_objects"] == len(rows)
    assert used["train"] and used["val"] and not used["train"] & used["val"]


def test_detection_deterministic_and_seeded(det_yaml, tmp_path):
    a = tree(det_yaml.parent)
    again = digits_detection(tmp_path / "again", **DET_KW)
    b = tree(again.parent)
    ya, yb = yaml.safe_load(a.pop("data.yaml")), yaml.safe_load(b.pop("data.yaml"))
    assert ya.pop("path") != yb.pop("path") and ya == yb
    assert a == b
    other = digits_detection(tmp_path / "other", **{**DET_KW, "seed": 1})
    assert (other.parent / "labels" / "train" / "train_000000.txt").read_bytes() != a["labels/train/train_000000.txt"]


def test_detection_cached_and_mismatch(det_yaml):
    root = det_yaml.parent
    files = [p for p in root.rglob("*") if p.is_file()]
    old = 1_000_000_000
    for p in files:
        os.utime(p, ns=(old, old))
    assert digits_detection(root, **DET_KW) == det_yaml
    assert all(p.stat().st_mtime_ns == old for p in files)
    with pytest.raises(ValueError, match="another root"):
        digits_detection(root, **{**DET_KW, "n_train": 21})
    with pytest.raises(ValueError, match="another root"):
        digits(root, imgsz=16)


# ------------------------------------------------------------------------------------------------------- resolve_data
def test_resolve_data_passthrough():
    for value in ("coco8.yaml", "digits.yaml", "Digits", "digits ", "digits-det.yaml", "", None, 3):
        assert resolve_data(value) == value
    p = Path("digits")
    assert resolve_data(p) is p  # only the exact strings are aliases


def test_resolve_data_aliases(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(digits_mod, "digits", lambda: calls.append("cls") or tmp_path / "cls")
    monkeypatch.setattr(digits_mod, "digits_detection", lambda: calls.append("det") or tmp_path / "det" / "data.yaml")
    assert resolve_data("digits") == str(tmp_path / "cls")
    assert resolve_data("digits-det") == str(tmp_path / "det" / "data.yaml")
    assert calls == ["cls", "det"]


# ------------------------------------------------------------------ the `yolo-ls datasets` command (in-process)
def _datasets_cli(capsys, *args: str) -> tuple[int, str]:
    from yolo_ls.cli.main import entrypoint

    rc = entrypoint(["datasets", *args])
    captured = capsys.readouterr()
    return rc, captured.out + captured.err


@pytest.mark.parametrize("args,message", [
    (["noise=abc"], "'noise=abc' is an invalid value. Valid 'noise' values are floats between 0.0"),
    (["noise=1.5"], "'noise=1.5' is an invalid value"),
    (["noise=0.2", "seed=1.5"], "'seed=1.5' is an invalid value. Valid 'seed' values are integers >= 0"),
    (["seed=-1"], "'seed=-1' is an invalid value"),
    (["noise=0.2", "noise_kind=symetric"], "Did you mean 'symmetric'?"),
    (["noise_kind=pairflip"], "'noise_kind' only applies with label noise"),
    (["imgsz=4"], "'imgsz=4' is an invalid value. Valid 'imgsz' values are integers >= 8"),
    (["n_train=10"], "'n_train' applies to 'digits-det' only"),
    (["nosie=0.2"], "Did you mean 'noise'?"),
    (["noise="], "'noise=' has no value"),
], ids=lambda v: v if isinstance(v, str) else "-".join(v))
def test_datasets_cli_checks_every_argument_before_writing(tmp_path, capsys, args, message):
    rc, text = _datasets_cli(capsys, "digits", f"out={tmp_path / 'out'}", *args)
    assert rc == 2 and message in text and "Traceback" not in text
    assert list(tmp_path.iterdir()) == [], "nothing may be written (not even a hidden sibling) on a bad argument"


def test_datasets_cli_empty_out_and_unwritable_out(tmp_path, capsys):
    rc, text = _datasets_cli(capsys, "digits", "out=")
    assert rc == 2 and "'out=' has no value" in text
    rc, text = _datasets_cli(capsys, "digits", "out=/proc/yolo-ls-test/digits")  # /proc: never writable
    assert rc == 2 and "'out=/proc/yolo-ls-test/digits' cannot be written" in text
    (tmp_path / "file").write_text("x")
    rc, text = _datasets_cli(capsys, "digits", f"out={tmp_path / 'file' / 'digits'}")
    assert rc == 2 and "is not a folder" in text


def test_datasets_cli_noisy_rerun_reuses_identical_and_refuses_different(tmp_path, capsys, caplog):
    out = tmp_path / "noisy"
    rc, text = _datasets_cli(capsys, "digits", f"out={out}", "imgsz=8", "noise=0.2", "seed=0")
    assert rc == 0, text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["noisy"], "no clean copy left beside out="
    params = json.loads((out / "noise.json").read_text())
    assert params["counts"]["train"] == {"labels": 1437, "flipped": 287}
    assert params["src"] == "digits(imgsz=8, val_fraction=0.2, seed=0)"
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    rc, text = _datasets_cli(capsys, "digits", f"out={out}", "imgsz=8", "noise=0.2", "seed=0")
    assert rc == 0 and "reusing the identical noisy dataset" in caplog.text, text
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before
    for other in (["noise=0.3"], ["noise=0.2", "noise_kind=pairflip"], ["noise=0.2", "seed=1"], []):
        rc, text = _datasets_cli(capsys, "digits", f"out={out}", "imgsz=8", *other)
        assert rc == 2 and "already holds a different dataset build" in text and "Traceback" not in text, other
        assert "yolo-ls: error: yolo-ls:" not in text, "doubled prefix"
        assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


def test_datasets_cli_disk_full_is_one_clean_line(tmp_path, capsys, monkeypatch):
    import errno

    noise_mod = importlib.import_module("yolo_ls.datasets.noise")

    def full(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))

    monkeypatch.setattr(noise_mod, "_link_or_copy", full)
    rc, text = _datasets_cli(capsys, "digits", f"out={tmp_path / 'out'}", "imgsz=8", "noise=0.2")
    assert rc == 1 and "No space left on device" in text and "Traceback" not in text
    assert list(tmp_path.iterdir()) == [], "a failed build leaves neither out= nor a hidden sibling"
