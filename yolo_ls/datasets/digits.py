"""Offline datasets built from scikit-learn's handwritten digits (no network needed).

`digits` builds an Ultralytics classification tree and `digits_detection` a synthetic YOLO detection dataset from
the 1797 8x8 images of `sklearn.datasets.load_digits`. Builds are atomic and cached by a marker file holding the
parameters: a root with a matching marker is reused, a root holding anything else raises ValueError.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from yolo_ls.datasets.names import DATASET_ALIASES

__all__ = ("DATASET_ALIASES", "MARKER", "default_root", "digits", "digits_detection", "resolve_data")

MARKER = ".yolo_ls_dataset.json"  # written last: its presence proves a build is complete
FORMAT_VERSION = 1  # bump when the on-disk layout or the pixels produced for given parameters change

NAMES = {i: str(i) for i in range(10)}
BG_MEAN, BG_STD, BG_MAX = 8.0, 4.0, 32  # detection background: N(8, 4) clipped to [0, 32], uint8
SCALE_RANGE = (0.14, 0.35)  # detection digit side as a fraction of imgsz
PLACEMENT_TRIES = 50  # rejection-sampling attempts per digit before it is skipped
POOL_VAL_FRACTION = 0.2  # share of the sklearn images reserved for validation canvases


def default_root(name: str) -> Path:
    """Return the default folder of a yolo-ls dataset: `<ultralytics datasets_dir>/yolo-ls/<name>`.

    Args:
        name (str): Dataset folder name, e.g. "digits-32".

    Returns:
        (Path): The default root (not created).
    """
    from ultralytics.utils import SETTINGS

    return Path(SETTINGS["datasets_dir"]) / "yolo-ls" / name


def _int_param(name: str, value: Any, minimum: int) -> int:
    """Validate an integer parameter (bools rejected) and return it as a Python int."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, not {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _load_sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """Return sklearn's digits as (images uint8 (1797, 8, 8) scaled 0..16 -> 0..255, targets int64 (1797,))."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    return images, bunch.target.astype(np.int64)


def _split(targets: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split of the sklearn indices into sorted (train, val) index arrays."""
    from sklearn.model_selection import train_test_split

    train, val = train_test_split(
        np.arange(len(targets)), test_size=val_fraction, stratify=targets, random_state=seed, shuffle=True
    )
    return np.sort(train), np.sort(val)


def _imwrite(path: Path, gray: np.ndarray) -> None:
    """Save a 2-D uint8 image as a 3-channel PNG, raising if OpenCV fails."""
    import cv2

    if not cv2.imwrite(str(path), np.repeat(gray[..., None], 3, axis=2)):
        raise OSError(f"cv2.imwrite failed for {path}")


def _read_marker(root: Path) -> dict[str, Any]:
    """Load a root's marker, raising ValueError if it is not valid JSON of the expected shape."""
    try:
        marker = json.loads((root / MARKER).read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"unreadable dataset marker {root / MARKER} ({e}); choose another root.") from e
    if not isinstance(marker, dict):
        raise ValueError(f"malformed dataset marker {root / MARKER}; choose another root.")
    return marker


def check_cached(root: Path, dataset: str, params: dict[str, Any]) -> bool:
    """Return True if `root` holds a complete build of `dataset` with `params`; False if `root` is absent or empty.

    Raises:
        ValueError: If `root` holds a different build, a corrupt marker, or files without a marker (an interrupted
            build by another tool, or a user's folder), which are never deleted or overwritten.
    """
    if (root / MARKER).is_file():
        marker = _read_marker(root)
        found = {k: marker.get(k) for k in ("dataset", "format_version", "params")}
        wanted = {"dataset": dataset, "format_version": FORMAT_VERSION, "params": params}
        if found != wanted:
            raise ValueError(
                f"{root} already holds a different dataset build {found}, but {wanted} was requested. "
                f"Pass another root (or delete {root} yourself)."
            )
        return True
    if root.exists():
        if not root.is_dir():
            raise ValueError(f"dataset root {root} exists and is not a directory; choose another root.")
        if any(root.iterdir()):
            raise ValueError(
                f"{root} is not empty but has no {MARKER} marker, so it is not a complete yolo-ls build "
                f"(perhaps an interrupted build or unrelated files). Pass another root (or delete {root} yourself)."
            )
    return False


_check_cached = check_cached  # the earlier private name


def _build_atomically(root: Path, dataset: str, params: dict[str, Any], build: Callable[[Path], dict]) -> bool:
    """Build into a temporary sibling of `root`, write the marker last, then rename it into place.

    Args:
        root (Path): Final absolute dataset root.
        dataset (str): Dataset kind recorded in the marker.
        params (dict): Build parameters recorded in the marker.
        build (Callable[[Path], dict]): Writes the dataset into the given folder and returns extra marker fields.

    Returns:
        (bool): True if this call built the dataset, False if it found a cached build.
    """
    if check_cached(root, dataset, params):
        return False
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp creates 0o700; the final dataset folder should be readable like any other
        extra = build(tmp)
        marker = {"dataset": dataset, "format_version": FORMAT_VERSION, "params": params, **extra}
        (tmp / MARKER).write_text(json.dumps(marker, indent=1))
        if root.is_dir() and not any(root.iterdir()):
            root.rmdir()  # an empty folder (e.g. a freshly created tmp dir) may be taken over
        try:
            os.replace(tmp, root)
        except OSError:
            # Another process may have finished the same build first: accept it if its marker matches.
            if check_cached(root, dataset, params):
                return False
            raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)  # only ever our own temporary folder
    return True


def digits(root: str | Path | None = None, imgsz: int = 32, val_fraction: float = 0.2, seed: int = 0) -> Path:
    """Build (or reuse) an ImageFolder classification dataset of sklearn's 1797 handwritten digits.

    Layout: `root/{train,val}/<class>/<sklearn index>.png` with classes "0".."9", stratified split with `seed`;
    images are upscaled with `cv2.INTER_NEAREST` and saved as 3-channel PNGs, white digit on black.

    Args:
        root (str | Path, optional): Dataset folder; defaults to `default_root(f"digits-{imgsz}")`.
        imgsz (int): Output image side in pixels (>= 8).
        val_fraction (float): Fraction of images per class put in `val` (0 < val_fraction < 1).
        seed (int): Random state of the stratified split.

    Returns:
        (Path): The dataset root, usable as Ultralytics `data=` for classification.

    Raises:
        ValueError: If `root` holds a build with other parameters or non-yolo-ls files.
    """
    imgsz = _int_param("imgsz", imgsz, 8)
    seed = _int_param("seed", seed, 0)
    if isinstance(val_fraction, bool) or not 0.0 < float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    val_fraction = float(val_fraction)
    root = Path(root if root is not None else default_root(f"digits-{imgsz}")).expanduser().resolve()
    params = {"imgsz": imgsz, "val_fraction": val_fraction, "seed": seed}

    def build(tmp: Path) -> dict:
        import cv2

        images, targets = _load_sklearn_digits()
        splits = dict(zip(("train", "val"), _split(targets, val_fraction, seed)))
        from ultralytics.utils import LOGGER

        LOGGER.info(
            f"yolo-ls: building digits dataset ({len(splits['train'])} train, {len(splits['val'])} val, "
            f"{imgsz}x{imgsz}) at {root}"
        )
        for split, indices in splits.items():
            for c in NAMES.values():
                (tmp / split / c).mkdir(parents=True)
            for i in indices:
                img = cv2.resize(images[i], (imgsz, imgsz), interpolation=cv2.INTER_NEAREST)
                _imwrite(tmp / split / str(targets[i]) / f"{i:04d}.png", img)
        return {
            "counts": {k: len(v) for k, v in splits.items()},
            "sources": {k: v.tolist() for k, v in splits.items()},
        }

    _build_atomically(root, "digits", params, build)
    return root


def _render_canvas(
    rng: np.random.Generator, images: np.ndarray, targets: np.ndarray, pool: np.ndarray, imgsz: int, max_digits: int
) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """Draw one detection canvas; return (gray uint8 canvas, [(source, cls, x1, y1, x2, y2, x, y, size), ...]).

    (x1, y1, x2, y2) are exclusive pixel bounds of the tight non-zero support of each scaled digit, (x, y, size) the
    pasted square; boxes never overlap and are at least one pixel apart.
    """
    import cv2

    canvas = np.clip(rng.normal(BG_MEAN, BG_STD, (imgsz, imgsz)), 0, BG_MAX).round().astype(np.uint8)
    smin = max(4, round(SCALE_RANGE[0] * imgsz))
    smax = max(smin, round(SCALE_RANGE[1] * imgsz))
    objects: list[tuple[int, ...]] = []
    for _ in range(int(rng.integers(1, max_digits + 1))):
        src = int(rng.choice(pool))
        s = int(rng.integers(smin, smax + 1))
        patch = cv2.resize(images[src], (s, s), interpolation=cv2.INTER_LINEAR)
        ys, xs = np.nonzero(patch)
        if len(xs) == 0:
            continue
        px1, py1, px2, py2 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
        for _ in range(PLACEMENT_TRIES):
            ox, oy = (int(v) for v in rng.integers(0, imgsz - s + 1, size=2))
            box = (ox + px1, oy + py1, ox + px2, oy + py2)
            # keep a 1-pixel gap so boxes of neighbouring digits never touch
            if all(box[0] > b[4] or box[2] < b[2] or box[1] > b[5] or box[3] < b[3] for b in objects):
                region = canvas[oy : oy + s, ox : ox + s]
                np.maximum(region, patch, out=region)
                objects.append((src, int(targets[src]), *box, ox, oy, s))
                break
    return canvas, objects


def digits_detection(
    root: str | Path | None = None,
    imgsz: int = 128,
    n_train: int = 400,
    n_val: int = 100,
    seed: int = 0,
    max_digits: int = 4,
) -> Path:
    """Build (or reuse) a synthetic YOLO detection dataset of sklearn digits pasted on noisy dark canvases.

    Each canvas holds 1..max_digits non-overlapping digits of 14%-35% of imgsz; labels are the tight boxes of their
    non-zero pixels. Train and val draw from disjoint stratified pools of the sklearn images.

    Layout: `root/data.yaml`, `root/images/{train,val}/*.png`, `root/labels/{train,val}/*.txt` (`cls cx cy w h`,
    normalised) and `root/sources/{train,val}.csv` (one row per digit: source index, class and pixel box).

    Args:
        root (str | Path, optional): Dataset folder; defaults to `default_root(f"digits-det-{imgsz}")`.
        imgsz (int): Canvas side in pixels (>= 32).
        n_train (int): Number of train canvases.
        n_val (int): Number of val canvases.
        seed (int): Seed of the pool split and of the canvas generation.
        max_digits (int): Maximum number of digits per canvas.

    Returns:
        (Path): Path of `root/data.yaml`, usable as Ultralytics `data=` for detection.

    Raises:
        ValueError: If `root` holds a build with other parameters or non-yolo-ls files.
    """
    import yaml

    imgsz = _int_param("imgsz", imgsz, 32)
    n_train = _int_param("n_train", n_train, 1)
    n_val = _int_param("n_val", n_val, 1)
    seed = _int_param("seed", seed, 0)
    max_digits = _int_param("max_digits", max_digits, 1)
    root = Path(root if root is not None else default_root(f"digits-det-{imgsz}")).expanduser().resolve()
    params = {"imgsz": imgsz, "n_train": n_train, "n_val": n_val, "seed": seed, "max_digits": max_digits}

    def build(tmp: Path) -> dict:
        images, targets = _load_sklearn_digits()
        pools = dict(zip(("train", "val"), _split(targets, POOL_VAL_FRACTION, seed)))
        from ultralytics.utils import LOGGER

        LOGGER.info(f"yolo-ls: building digits-det dataset ({n_train} train, {n_val} val, {imgsz}x{imgsz}) at {root}")
        counts = {}
        for stream, (split, n) in enumerate((("train", n_train), ("val", n_val))):
            rng = np.random.default_rng([seed, stream])
            n_objects = _write_det_split(tmp, split, n, rng, images, targets, pools[split], imgsz, max_digits)
            counts[split], counts[f"{split}_objects"] = n, n_objects
        data = {"path": str(root), "train": "images/train", "val": "images/val", "names": dict(NAMES)}
        (tmp / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        return {"counts": counts, "pools": {k: v.tolist() for k, v in pools.items()}}

    _build_atomically(root, "digits-det", params, build)
    return root / "data.yaml"


def _write_det_split(tmp: Path, split: str, n: int, rng: np.random.Generator, images: np.ndarray,
                     targets: np.ndarray, pool: np.ndarray, imgsz: int, max_digits: int) -> int:
    """Write the ``n`` canvases of a split (images, YOLO labels, sources csv) under ``tmp``; returns its digit count."""
    (tmp / "images" / split).mkdir(parents=True)
    (tmp / "labels" / split).mkdir(parents=True)
    (tmp / "sources").mkdir(exist_ok=True)
    n_objects = 0
    with open(tmp / "sources" / f"{split}.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("image", "source_index", "cls", "x1", "y1", "x2", "y2", "x", "y", "size"))
        for k in range(n):
            name = f"{split}_{k:06d}"
            canvas, objects = _render_canvas(rng, images, targets, pool, imgsz, max_digits)
            _imwrite(tmp / "images" / split / f"{name}.png", canvas)
            lines = [
                f"{c} {(x1 + x2) / 2 / imgsz:.6f} {(y1 + y2) / 2 / imgsz:.6f} "
                f"{(x2 - x1) / imgsz:.6f} {(y2 - y1) / imgsz:.6f}"
                for _, c, x1, y1, x2, y2, *_ in objects
            ]
            (tmp / "labels" / split / f"{name}.txt").write_text("".join(f"{s}\n" for s in lines))
            writer.writerows((f"{name}.png", *o) for o in objects)
            n_objects += len(objects)
    return n_objects


def resolve_data(data: Any) -> Any:
    """Map a dataset alias to a built dataset path; return anything else unchanged.

    "digits" -> `str(digits())` and "digits-det" -> `str(digits_detection())` (exact strings only, default roots).

    Args:
        data (Any): Ultralytics `data=` value, e.g. "coco8.yaml", a Path, or an alias in `DATASET_ALIASES`.

    Returns:
        (Any): The dataset path string for an alias, otherwise `data` itself.
    """
    if isinstance(data, str):
        if data == "digits":
            return str(digits())
        if data == "digits-det":
            return str(digits_detection())
    return data
