"""Tests for yolo_ls.datasets.noise.add_label_noise (synthetic label noise on copies of the digits datasets)."""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from ultralytics.data.utils import check_cls_dataset, check_det_dataset
from ultralytics.utils import LOGGER

from yolo_ls.datasets import NOISE_KINDS, add_label_noise, digits, digits_detection

NC = 10
MARKER = ".yolo_ls_dataset.json"


@pytest.fixture(scope="module")
def cls_src(tmp_path_factory) -> Path:
    """A digits ImageFolder root at imgsz 8 (1437 train, 360 val)."""
    return digits(tmp_path_factory.mktemp("noise") / "digits-8", imgsz=8)


@pytest.fixture(scope="module")
def det_src(tmp_path_factory) -> Path:
    """A small digits detection data YAML, with a stale Ultralytics label cache next to its train labels."""
    yaml_file = digits_detection(tmp_path_factory.mktemp("noise") / "det-32", imgsz=32, n_train=20, n_val=6)
    (yaml_file.parent / "labels" / "train.cache").write_bytes(b"stale cache of the clean labels")
    return yaml_file


def snapshot(root: Path) -> dict[str, tuple]:
    """Map every file and dir under root to (sha256, mtime_ns) / mtime_ns, including root itself."""
    out: dict[str, tuple] = {".": ("dir", root.stat().st_mtime_ns)}
    for p in sorted(root.rglob("*")):
        st = p.stat()
        key = p.relative_to(root).as_posix()
        out[key] = (
            ("dir", st.st_mtime_ns) if p.is_dir() else (hashlib.sha256(p.read_bytes()).hexdigest(), st.st_mtime_ns)
        )
    return out


def manifest(dst: Path) -> list[dict[str, str]]:
    """Read dst/noise_manifest.csv as a list of row dicts."""
    with open(dst / "noise_manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def cls_labels(root: Path, split: str) -> dict[str, int]:
    """Map each image file name of an ImageFolder split to its class index (digits file names are unique)."""
    names = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    out = {}
    for p in (root / split).glob("*/*.png"):
        assert p.name not in out, p
        out[p.name] = names.index(p.parent.name)
    return out


def det_labels(root: Path, split: str) -> dict[str, list[str]]:
    """Map each root-relative label file of a detection split to its lines."""
    return {
        p.relative_to(root).as_posix(): p.read_text().splitlines() for p in sorted((root / "labels" / split).glob("*"))
    }


class LogCapture(logging.Handler):
    """Collect the messages of the Ultralytics LOGGER."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_exact_flip_count_and_seed(cls_src, tmp_path):
    handler = LogCapture()
    LOGGER.addHandler(handler)
    try:
        out = add_label_noise(cls_src, tmp_path / "a", 0.2)
    finally:
        LOGGER.removeHandler(handler)
    assert out == tmp_path / "a"
    rows = manifest(out)
    assert len(rows) == 287 == round(0.2 * 1437)
    assert {r["split"] for r in rows} == {"train"}
    params = json.loads((out / "noise.json").read_text())
    assert params["counts"] == {"train": {"labels": 1437, "flipped": 287}}
    assert (params["rate"], params["kind"], params["seed"], params["task"]) == (0.2, "symmetric", 0, "classify")
    assert params["src"] == str(cls_src)
    summary = [m for m in handler.messages if "flipped" in m]
    assert summary == [f"yolo-ls: flipped 287/1437 train labels (20.0%, symmetric, seed 0) -> {out}"]

    assert manifest(add_label_noise(cls_src, tmp_path / "b", 0.2)) == rows  # same seed, same flips
    other = manifest(add_label_noise(cls_src, tmp_path / "c", 0.2, seed=1))
    assert len(other) == 287 and other != rows


@pytest.mark.parametrize("rate", [0.0, 0.333, 1.0])
def test_exact_count_other_rates(det_src, tmp_path, rate):
    n = sum(len(v) for v in det_labels(det_src.parent, "train").values())
    dst = add_label_noise(det_src, tmp_path / "d", rate).parent
    assert len(manifest(dst)) == round(rate * n)
    assert json.loads((dst / "noise.json").read_text())["counts"]["train"] == {"labels": n, "flipped": round(rate * n)}


@pytest.mark.parametrize("which", ["cls", "det"])
def test_src_untouched(cls_src, det_src, tmp_path, which):
    src = cls_src if which == "cls" else det_src
    root = src if which == "cls" else src.parent
    before = snapshot(root)
    add_label_noise(src, tmp_path / "noisy", 0.5, kind="pairflip", splits=("train", "val"))
    assert snapshot(root) == before


def test_classify_manifest_matches_diff(cls_src, tmp_path):
    dst = add_label_noise(cls_src, tmp_path / "noisy", 0.3, seed=3)
    rows = manifest(dst)
    assert list(rows[0]) == ["split", "file", "original", "new", "source"]
    manifest_set = {(r["split"], r["file"], int(r["original"]), int(r["new"])) for r in rows}
    assert len(manifest_set) == len(rows) == round(0.3 * 1437)
    for split in ("train", "val"):
        src, noisy = cls_labels(cls_src, split), cls_labels(dst, split)
        assert src.keys() == noisy.keys()  # every image kept, none duplicated
        changes = {(split, f"{split}/{noisy[f]}/{f}", src[f], noisy[f]) for f in src if src[f] != noisy[f]}
        assert changes == {m for m in manifest_set if m[0] == split}
        if split == "val":
            assert not changes  # val stays clean
    for r in rows:  # source column: where the image was in src
        assert (cls_src / r["source"]).is_file() and Path(r["source"]).name == Path(r["file"]).name
        assert r["source"].split("/")[1] == r["original"]

    data = check_cls_dataset(str(dst))
    assert data["nc"] == NC and Path(data["train"]) == dst / "train" and Path(data["val"]) == dst / "val"
    assert len(list(dst.rglob("*.png"))) == len(list(cls_src.rglob("*.png"))) == 1797
    assert not (dst / MARKER).exists()  # a noisy copy must not pass for a cached clean digits build


def test_symmetric_never_same_class(cls_src, tmp_path):
    rows = manifest(add_label_noise(cls_src, tmp_path / "sym", 1.0, kind="symmetric"))
    assert len(rows) == 1437
    targets: dict[int, set[int]] = {}
    for r in rows:
        old, new = int(r["original"]), int(r["new"])
        assert new != old and 0 <= new < NC and r["file"].split("/")[1] == str(new)
        targets.setdefault(old, set()).add(new)
    # ~144 draws per class: every other class is reached (fails if symmetric degenerates to a fixed mapping)
    assert targets == {c: set(range(NC)) - {c} for c in range(NC)}


def test_pairflip_maps_to_next_class(cls_src, tmp_path):
    dst = add_label_noise(cls_src, tmp_path / "pair", 0.5, kind="pairflip")
    rows = manifest(dst)
    assert len(rows) == round(0.5 * 1437)
    assert all(int(r["new"]) == (int(r["original"]) + 1) % NC for r in rows)
    assert any(r["original"] == "9" for r in rows)  # wrap-around exercised
    assert all((dst / r["file"]).is_file() and r["file"].split("/")[1] == r["new"] for r in rows)


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_detection_only_class_ids_change(det_src, tmp_path, kind):
    src_root, dst = det_src.parent, tmp_path / "noisy-det"
    out = add_label_noise(det_src, dst, 0.4, kind=kind, seed=7)
    assert out == dst / "data.yaml"
    rows = manifest(dst)
    assert list(rows[0]) == ["split", "file", "line", "original", "new"]
    manifest_set = {(r["split"], r["file"], int(r["line"]), int(r["original"]), int(r["new"])) for r in rows}
    src_train, dst_train = det_labels(src_root, "train"), det_labels(dst, "train")
    n = sum(len(v) for v in src_train.values())
    assert len(manifest_set) == len(rows) == round(0.4 * n) > 0

    assert src_train.keys() == dst_train.keys()
    changes = set()
    for file, lines in src_train.items():
        assert len(dst_train[file]) == len(lines)
        for i, (a, b) in enumerate(zip(lines, dst_train[file])):
            (ca, box_a), (cb, box_b) = a.split(" ", 1), b.split(" ", 1)
            assert box_a == box_b  # boxes untouched, byte for byte
            if ca != cb:
                changes.add(("train", file, i, int(ca), int(cb)))
    assert changes == manifest_set
    for _, _, _, old, new in changes:
        assert new != old and 0 <= new < NC
        if kind == "pairflip":
            assert new == (old + 1) % NC

    assert det_labels(dst, "val") == det_labels(src_root, "val")  # val stays clean
    images = sorted(p.relative_to(src_root) for p in src_root.glob("images/*/*.png"))
    assert images == sorted(p.relative_to(dst) for p in dst.glob("images/*/*.png"))
    assert all((src_root / p).read_bytes() == (dst / p).read_bytes() for p in images)
    assert not (dst / "labels" / "train.cache").exists() and not (dst / MARKER).exists()

    src_yaml, dst_yaml = yaml.safe_load(det_src.read_text()), yaml.safe_load(out.read_text())
    assert dst_yaml["path"] == str(dst)
    assert {k: dst_yaml[k] for k in ("names", "train", "val")} == {k: src_yaml[k] for k in ("names", "train", "val")}
    data = check_det_dataset(str(out))
    assert data["nc"] == NC and Path(data["train"]) == dst / "images" / "train"
    assert Path(data["val"]) == dst / "images" / "val"

    params = json.loads((dst / "noise.json").read_text())
    assert params["task"] == "detect" and params["counts"] == {"train": {"labels": n, "flipped": len(rows)}}


def test_detection_root_dir_and_val_split(det_src, tmp_path):
    by_yaml = add_label_noise(det_src, tmp_path / "a", 0.3, splits=("val",))
    by_dir = add_label_noise(det_src.parent, tmp_path / "b", 0.3, splits="val")  # root dir holding data.yaml
    assert by_dir == tmp_path / "b" / "data.yaml"
    rows = manifest(by_yaml.parent)
    assert rows == manifest(by_dir.parent) and rows and {r["split"] for r in rows} == {"val"}
    assert det_labels(by_yaml.parent, "train") == det_labels(det_src.parent, "train")
    assert det_labels(by_yaml.parent, "val") != det_labels(det_src.parent, "val")
    assert manifest(add_label_noise(det_src, tmp_path / "c", 0.3, seed=1, splits=("val",)).parent) != rows


def write_image_folder(root: Path, layout: dict[str, list[str]]) -> Path:
    """Write tiny black PNGs at root/<split>/<class>/<name> for each 'split/class/name' of layout."""
    for split, files in layout.items():
        for f in files:
            (root / split / f).parent.mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(root / split / f), np.zeros((8, 8, 3), np.uint8))
    return root


def test_classify_name_collision_is_deterministic(tmp_path):
    src = write_image_folder(tmp_path / "src", {"train": ["a/x.png", "b/x.png"], "val": ["a/y.png", "b/z.png"]})
    results = []
    for name in ("n1", "n2"):
        dst = add_label_noise(src, tmp_path / name, 0.5, kind="pairflip")
        (row,) = manifest(dst)
        new_class = "b" if row["original"] == "0" else "a"
        assert row["file"] == f"train/{new_class}/x_noisy1.png" and row["new"] == ("1" if new_class == "b" else "0")
        assert sorted(p.relative_to(dst).as_posix() for p in (dst / "train").rglob("*.png")) == sorted(
            [f"train/{new_class}/x.png", row["file"]]
        )
        results.append(row)
    assert results[0] == results[1]


@pytest.mark.parametrize("rate", [-0.1, 1.5, math.nan])
def test_bad_rate(det_src, tmp_path, rate):
    with pytest.raises(ValueError, match="rate"):
        add_label_noise(det_src, tmp_path / "x", rate)
    assert not (tmp_path / "x").exists()


def test_bad_kind_did_you_mean(det_src, tmp_path):
    with pytest.raises(ValueError, match="(?i)did you mean 'symmetric'"):
        add_label_noise(det_src, tmp_path / "x", 0.1, kind="symetric")
    with pytest.raises(ValueError, match="(?i)did you mean 'pairflip'"):
        add_label_noise(det_src, tmp_path / "x", 0.1, kind="pair_flip")
    assert not (tmp_path / "x").exists()


def test_existing_dst(det_src, tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="already exists"):
        add_label_noise(det_src, full, 0.1)
    assert [p.name for p in full.iterdir()] == ["keep.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError):
        add_label_noise(det_src, tmp_path / "file", 0.1)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert add_label_noise(det_src, empty, 0.1) == empty / "data.yaml"  # an empty folder is accepted


def test_src_neither_format(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("hi")
    (tmp_path / "flat" / "train").mkdir(parents=True)
    (tmp_path / "flat" / "train" / "img.png").write_bytes(b"")
    for src in ("empty", "notes.txt", "flat", "missing"):
        with pytest.raises(ValueError, match="neither|not a data YAML"):
            add_label_noise(tmp_path / src, tmp_path / f"out-{src}", 0.1)
        assert not (tmp_path / f"out-{src}").exists()


def test_other_bad_inputs(det_src, tmp_path):
    one_class = write_image_folder(tmp_path / "one", {"train": ["a/x.png"], "val": ["a/y.png"]})
    with pytest.raises(ValueError, match="at least 2 classes"):
        add_label_noise(one_class, tmp_path / "o1", 0.1)
    with pytest.raises(ValueError, match="split"):
        add_label_noise(det_src, tmp_path / "o2", 0.1, splits=("test",))
    before = snapshot(det_src.parent)
    with pytest.raises(ValueError, match="inside"):
        add_label_noise(det_src, det_src.parent / "noisy", 0.1)
    assert snapshot(det_src.parent) == before

    bad = tmp_path / "bad"  # YAML without `path` (root = its folder) and a class id >= nc
    shutil.copytree(det_src.parent, bad)
    data = yaml.safe_load((bad / "data.yaml").read_text())
    del data["path"]
    (bad / "data.yaml").write_text(yaml.safe_dump(data))
    label = next(p for p in sorted((bad / "labels" / "train").glob("*.txt")) if p.read_text())
    label.write_text("12" + label.read_text()[1:])
    with pytest.raises(ValueError, match="class id '12'"):
        add_label_noise(bad / "data.yaml", tmp_path / "o3", 0.1)
    assert not (tmp_path / "o3").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".o3")]
    assert sorted(os.listdir(bad)) == sorted(os.listdir(det_src.parent))


def ultralytics_cls_samples(root: Path, split: str) -> list[tuple[str, int]]:
    """(path relative to root/split, class index) of every sample the ImageFolder of Ultralytics' ClassificationDataset
    lists (built exactly as ``ultralytics.data.dataset.ClassificationDataset`` builds it)."""
    import torchvision
    from ultralytics.data.utils import IMG_FORMATS

    base = torchvision.datasets.ImageFolder(root=str(root / split), allow_empty=True,
                                            is_valid_file=lambda x: x.rpartition(".")[-1].lower() in IMG_FORMATS)
    return sorted((Path(f).relative_to(root / split).as_posix(), int(c)) for f, c in base.samples)


def test_symlinked_class_folder_and_files_are_copied_and_counted(tmp_path):
    """Issue: a symlinked class folder was counted in noise.json and the manifest, but none of its images copied."""
    shared = write_image_folder(tmp_path / "elsewhere", {"pool": [f"b/{i}.png" for i in range(6)] + ["c/solo.png"]})
    src = write_image_folder(tmp_path / "src", {"train": [f"a/{i}.png" for i in range(4)], "val": ["a/v.png"]})
    (src / "train" / "b").symlink_to(shared / "pool" / "b", target_is_directory=True)  # a whole linked class
    (src / "train" / "a" / "linked.png").symlink_to(shared / "pool" / "c" / "solo.png")  # one linked file
    (src / "val" / "b").mkdir()
    (src / "val" / "b" / "v.png").symlink_to(shared / "pool" / "b" / "0.png")
    expected = ultralytics_cls_samples(src, "train")
    assert len(expected) == 11  # what Ultralytics trains on: 4 + 1 linked file in a, 6 in the linked b

    dst = add_label_noise(src, tmp_path / "noisy", 0.5, seed=3)
    params = json.loads((dst / "noise.json").read_text())
    assert params["counts"]["train"] == {"labels": 11, "flipped": round(0.5 * 11)}
    got = ultralytics_cls_samples(dst, "train")
    assert len(got) == 11, "every image Ultralytics reads in src is in dst"
    assert not any(p.is_symlink() for p in dst.rglob("*")), "dst holds the files, not links into src"
    rows = manifest(dst)
    assert len(rows) == params["counts"]["train"]["flipped"]
    for r in rows:  # every manifest row names a file that exists, under its new class
        assert (dst / r["file"]).is_file() and Path(r["file"]).parts[1] == ["a", "b"][int(r["new"])]
    assert len(ultralytics_cls_samples(dst, "val")) == 2


def test_symlink_loop_and_broken_link_are_refused_clearly(tmp_path):
    src = write_image_folder(tmp_path / "src", {"train": ["a/x.png", "b/y.png"], "val": ["a/z.png", "b/w.png"]})
    (src / "train" / "a" / "loop").symlink_to(src / "train", target_is_directory=True)
    with pytest.raises(ValueError, match="symlink loop"):
        add_label_noise(src, tmp_path / "o1", 0.5)
    (src / "train" / "a" / "loop").unlink()
    (src / "train" / "b" / "gone.png").symlink_to(tmp_path / "missing.png")
    with pytest.raises(ValueError, match="broken symlink"):
        add_label_noise(src, tmp_path / "o2", 0.5)
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_detection_with_symlinked_images_reads_labels_beside_the_links(digits_seg_yaml, tmp_path):
    """The seg fixture links every image to the detection set: labels are next to the links, as Ultralytics reads."""
    root = digits_seg_yaml.parent
    assert all(p.is_symlink() for p in (root / "images" / "train").iterdir())
    dst = add_label_noise(digits_seg_yaml, tmp_path / "noisy", 0.25, seed=0)
    objects = sum(1 for p in (root / "labels" / "train").glob("*.txt") for ln in p.read_text().splitlines() if ln)
    assert objects > 0
    params = json.loads((dst.parent / "noise.json").read_text())
    assert params["counts"]["train"] == {"labels": objects, "flipped": round(0.25 * objects)}
    for r in manifest(dst.parent):  # segment polygons (9 fields) kept: the labels were read beside the links
        assert len((dst.parent / r["file"]).read_text().splitlines()[int(r["line"])].split()) == 9
    imgs = sorted((dst.parent / "images" / "train").iterdir())
    assert len(imgs) == len(list((root / "images" / "train").iterdir())) and not any(p.is_symlink() for p in imgs)
    check_det_dataset(str(dst))
