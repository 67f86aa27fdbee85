"""A YOLO detection dataset's files as Ultralytics reads them: its data YAML, split entries, image lists and labels.

Every path is required to lie inside the dataset root (a ``ValueError`` otherwise), so that a copy of the root holds
the whole dataset.
"""

from __future__ import annotations

import math
import os
from pathlib import Path


def _img_formats() -> set[str]:
    """Return Ultralytics' image suffixes (lowercase, without dot)."""
    from ultralytics.data.utils import IMG_FORMATS

    return set(IMG_FORMATS)


def _is_image(path: Path, formats: set[str]) -> bool:
    """Return True if Ultralytics reads `path` as an image: its rule, ``name.rpartition(".")[-1].lower()``."""
    return path.name.rpartition(".")[-1].lower() in formats


def _inside(path: Path, root: Path) -> bool:
    """Return True if the resolved `path` is `root` or lies below it."""
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


def _load_det_yaml(yaml_file: Path) -> tuple[dict, Path, dict[int, str]]:
    """Read a detection data YAML; return (data, resolved dataset root, names)."""
    import yaml
    from ultralytics.utils import DATASETS_DIR

    try:
        data = yaml.safe_load(yaml_file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise ValueError(f"cannot read data YAML {yaml_file} ({e}).") from e
    if not isinstance(data, dict) or "train" not in data:
        raise ValueError(f"{yaml_file} is not a YOLO detection data YAML (no 'train' key).")
    names = data.get("names")
    if isinstance(names, (list, tuple)):
        names = dict(enumerate(names))
    elif isinstance(names, dict):
        names = {int(k): v for k, v in names.items()}
    elif data.get("nc") is not None:
        names = {i: f"class_{i}" for i in range(int(data["nc"]))}
    else:
        raise ValueError(f"{yaml_file} has neither 'names' nor 'nc'.")
    # Same root resolution as ultralytics.data.utils.check_det_dataset.
    root = Path(data.get("path") or yaml_file.parent)
    if not root.exists() and not root.is_absolute():
        root = DATASETS_DIR / root
    root = root.resolve()
    if not root.is_dir():
        raise ValueError(f"dataset root {root} of {yaml_file} does not exist.")
    return data, root, names


def _split_entries(data: dict, root: Path, key: str) -> list[Path]:
    """Return the resolved image dirs / list files of split `key` (Ultralytics rules), each required inside root."""
    value = data.get(key)
    entries = [] if not value else [value] if isinstance(value, str) else list(value)
    out = []
    for e in entries:
        p = (root / str(e)).resolve()
        if not p.exists() and str(e).startswith("../"):
            p = (root / str(e)[3:]).resolve()
        if not p.exists():
            raise ValueError(f"'{key}: {e}' of the data YAML does not exist ({p}).")
        if not _inside(p, root):
            raise ValueError(f"'{key}: {e}' lies outside the dataset root {root}; it cannot be copied.")
        out.append(p)
    return out


def _list_file_images(txt: Path, root: Path) -> list[tuple[str, Path]]:
    """Return [(line, resolved image path)] of an image list file, each image required inside root."""
    out = []
    for line in txt.read_text(encoding="utf-8-sig").strip().splitlines():
        line = line.strip()
        if not line:
            continue
        p = Path(os.path.abspath(line.replace("./", str(txt.parent) + os.sep, 1) if line.startswith("./") else line))
        if not _inside(p, root):
            raise ValueError(f"image {line} listed in {txt} lies outside the dataset root {root}.")
        out.append((line, p))
    return out


def _split_images(entries: list[Path], root: Path, formats: set[str]) -> list[Path]:
    """Return the sorted image paths of a split's entries as Ultralytics lists them (``glob("**/*.*")`` of a folder,
    the lines of a list file), not resolved: a symlinked image keeps the label file next to the link."""
    import glob

    images = []
    for p in entries:
        if p.is_dir():
            images += [Path(f) for f in glob.glob(str(p / "**" / "*.*"), recursive=True) if _is_image(Path(f), formats)]
        else:
            images += [q for _, q in _list_file_images(p, root) if _is_image(q, formats)]
    return sorted(set(images))


def _label_class(token: str, path: Path, line: int, nc: int) -> int:
    """Parse the class id of a label line, requiring an integer in [0, nc)."""
    try:
        value = float(token)
    except ValueError:
        value = math.nan
    if not value.is_integer() or not 0 <= value < nc:
        raise ValueError(f"{path} line {line}: class id '{token}' is not an integer in [0, {nc}).")
    return int(value)


def _det_label_files(entries: dict[str, list[Path]], root: Path, splits: tuple[str, ...], formats: set[str]
                     ) -> dict[str, list[Path]]:
    """Split -> sorted root-relative label files of its images; refuses a label file outside ``root`` or one that a
    split in ``splits`` shares with another split."""
    from ultralytics.data.utils import img2label_paths

    labels: dict[str, list[Path]] = {}
    for k, split_entries in entries.items():
        found = []
        for lab in img2label_paths([str(p) for p in _split_images(split_entries, root, formats)]):
            lab = Path(lab)
            if lab.is_file():
                if not _inside(lab, root):
                    raise ValueError(f"label file {lab} lies outside the dataset root {root}.")
                found.append(lab.relative_to(root))
        labels[k] = sorted(set(found))
    for s in splits:
        for k in entries:
            shared = set(labels[s]) & set(labels[k]) if k != s else set()
            if shared:
                raise ValueError(
                    f"splits '{s}' and '{k}' share {len(shared)} label files (e.g. {sorted(shared)[0]}), so "
                    f"noise in '{s}' cannot be kept out of '{k}'."
                )
    return labels
