"""Synthetic label noise for robustness studies of label smoothing.

`add_label_noise` copies a classification (ImageFolder) or YOLO detection dataset to a new folder and flips an exact,
seeded fraction of the labels of chosen splits, recording every flip in `noise_manifest.csv` and the parameters in
`noise.json`. The source dataset is never modified.

Only the `train` split is corrupted by default: the validation split measures a model against the TRUE labels, so a
clean `val` is what shows whether label smoothing makes training robust to noisy supervision. Corrupting `val` too
would measure agreement with the noise instead.
"""

from __future__ import annotations

import csv
import difflib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Callable

import numpy as np

from yolo_ls.datasets.det_files import (
    _det_label_files,
    _img_formats,
    _inside,
    _is_image,
    _label_class,
    _list_file_images,
    _load_det_yaml,
    _split_entries,
)
from yolo_ls.datasets.digits import MARKER, _int_param

__all__ = ("NOISE_KINDS", "add_label_noise")

NOISE_KINDS = ("symmetric", "pairflip")
MANIFEST = "noise_manifest.csv"
PARAMS_FILE = "noise.json"
CLS_SPLITS = ("train", "val", "validation", "valid", "test")  # split folders Ultralytics knows for classification
DET_SPLITS = ("train", "val", "test", "minival")  # split keys Ultralytics resolves in a detection data YAML
SKIP_SUFFIXES = (".cache",)  # Ultralytics label caches describe the source labels: never copied


def _link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link the file `src` points to (symlinks resolved) to `dst` (same filesystem), else copy it."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(os.path.realpath(src), dst)  # Linux link() would otherwise hard-link a symlink itself
    except OSError:
        shutil.copy2(src, dst)


def _walk(root: Path) -> tuple[list[Path], list[Path]]:
    """Return (sorted relative dirs, sorted relative files) below `root`, following symlinks.

    Ultralytics reads through symlinks (torchvision's ImageFolder walks with ``followlinks=True``, ``glob`` follows
    linked folders), so the copy must too: a linked folder or file is copied as what it points to.

    Raises:
        ValueError: For a symlink loop (a linked folder pointing at one of its own parents) or a broken symlink, which
            Ultralytics cannot read either.
    """
    dirs: list[Path] = []
    files: list[Path] = []

    def visit(folder: Path, rel: Path, parents: frozenset[Path]) -> None:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            path, sub = Path(entry.path), rel / entry.name
            if entry.is_dir():  # follows symlinks
                real = path.resolve()
                if real in parents:
                    raise ValueError(
                        f"{path} is a symlink loop: it points to {real}, one of its own parent folders. Remove the "
                        "link (Ultralytics would walk it forever) and run again."
                    )
                dirs.append(sub)
                visit(path, sub, parents | {real})
            elif entry.is_file():  # follows symlinks
                files.append(sub)
            elif entry.is_symlink():
                raise ValueError(
                    f"{path} is a broken symlink (it points to {os.readlink(path)}, which does not exist). Fix or "
                    "remove it and run again."
                )

    visit(root, Path(), frozenset({root.resolve()}))
    return dirs, files


def _count_images(root: Path, split: str, formats: set[str]) -> int:
    """Number of image files below `root/split` (through symlinks), as Ultralytics' ImageFolder would list them."""
    return sum(1 for f in _walk(root / split)[1] if len(f.parts) > 1 and _is_image(f, formats))


def _validate(rate: Any, kind: Any, seed: Any, splits: Any) -> tuple[float, str, int, tuple[str, ...]]:
    """Validate the noise parameters and return them normalised (rate float, kind, seed int, unique splits)."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.integer, np.floating)):
        raise TypeError(f"rate must be a number in [0, 1], not {type(rate).__name__}")
    rate = float(rate)
    if math.isnan(rate) or not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be in [0, 1], got {rate}")
    if kind not in NOISE_KINDS:
        close = difflib.get_close_matches(str(kind), NOISE_KINDS, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ValueError(f"unknown noise kind '{kind}'.{hint} Choose from {', '.join(NOISE_KINDS)}.")
    seed = _int_param("seed", seed, 0)
    if isinstance(splits, str):
        splits = (splits,)
    splits = tuple(dict.fromkeys(str(s) for s in splits))
    if not splits:
        raise ValueError("splits must name at least one split to corrupt, e.g. ('train',)")
    return rate, kind, seed, splits


def _check_dst(dst: str | Path) -> Path:
    """Resolve `dst` and raise FileExistsError if it exists and is not an empty directory."""
    dst = Path(dst).expanduser().resolve()
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise FileExistsError(
            f"noisy dataset destination {dst} already exists and is not an empty directory; "
            "add_label_noise only writes to a new folder. Pass another dst (or delete it yourself)."
        )
    return dst


def _flips(
    rng: np.random.Generator, classes: np.ndarray, rate: float, kind: str, nc: int
) -> tuple[np.ndarray, np.ndarray]:
    """Choose exactly round(rate * n) labels uniformly without replacement; return (sorted indices, new classes)."""
    n = len(classes)
    k = round(rate * n)
    if k == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    idx = np.sort(rng.choice(n, size=k, replace=False))
    old = classes[idx]
    if kind == "pairflip":
        new = (old + 1) % nc
    else:  # symmetric: uniform over the nc - 1 OTHER classes
        offset = rng.integers(0, nc - 1, size=k)
        new = offset + (offset >= old)
    return idx, new.astype(np.int64)


def _detect_kind(src: Path) -> tuple[str, Path]:
    """Return ("detect", yaml path) or ("classify", root) for `src`, raising ValueError if it is neither."""
    if src.is_file():
        if src.suffix.lower() in {".yaml", ".yml"}:
            return "detect", src
        raise ValueError(f"{src} is a file but not a data YAML (.yaml/.yml); cannot add label noise to it.")
    if src.is_dir():
        if (src / "data.yaml").is_file():
            return "detect", src / "data.yaml"
        train = src / "train"
        if train.is_dir() and any(p.is_dir() for p in train.iterdir()):
            return "classify", src
    raise ValueError(
        f"{src} is neither an ImageFolder classification root (with train/<class>/ folders) nor a YOLO "
        "detection dataset (a data YAML, or a folder holding data.yaml)."
    )


def _build(dst: Path, write: Callable[[Path], None]) -> None:
    """Run `write(tmp)` in a temporary sibling of `dst`, then rename it into place (no partial dst on failure)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.tmp-", dir=dst.parent))
    try:
        tmp.chmod(0o755)
        write(tmp)
        if dst.is_dir() and not any(dst.iterdir()):
            dst.rmdir()
        os.replace(tmp, dst)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)  # only ever our own temporary folder


def _unique_name(rel: Path, taken: set[Path]) -> Path:
    """Return `rel`, or `<stem>_noisy<k><suffix>` with the smallest k >= 1 not in `taken` (deterministic)."""
    if rel not in taken:
        return rel
    k = 1
    while (cand := rel.with_name(f"{rel.stem}_noisy{k}{rel.suffix}")) in taken:
        k += 1
    return cand


def _noise_classify(
    root: Path, dst: Path, rate: float, kind: str, seed: int, splits: tuple[str, ...]
) -> tuple[dict, dict[int, str], Callable[[Path], None]]:
    """Plan a noisy copy of an ImageFolder root; return (counts, names, writer of the copy into a folder)."""
    formats = _img_formats()
    names = dict(enumerate(sorted(p.name for p in (root / "train").iterdir() if p.is_dir())))
    nc = len(names)
    if nc < 2:
        raise ValueError(f"label noise needs at least 2 classes, {root / 'train'} has {nc}.")
    index = {v: k for k, v in names.items()}
    available = [s for s in CLS_SPLITS if (root / s).is_dir()]
    missing = [s for s in splits if s not in available]
    if missing:
        raise ValueError(f"split(s) {missing} not found in {root}; available splits: {available}.")

    all_dirs, all_files = _walk(root)  # one walk: what is counted below is exactly what write() copies
    rng = np.random.default_rng(seed)
    moves: dict[Path, Path] = {}  # src-relative image -> dst-relative image for every flipped image
    counts, rows = {}, []
    for split in splits:
        images, classes = [], []
        for cdir in sorted(p for p in (root / split).iterdir() if p.is_dir()):
            if cdir.name not in index:
                raise ValueError(
                    f"class folder {cdir} is not a class of {root / 'train'} ({list(names.values())})."
                )
            files = [f for f in all_files if f.parts[:2] == (split, cdir.name) and _is_image(f, formats)]
            images += files
            classes += [index[cdir.name]] * len(files)
        idx, new = _flips(rng, np.asarray(classes, dtype=np.int64), rate, kind, nc)
        flipped = set(idx.tolist())
        taken = {rel for i, rel in enumerate(images) if i not in flipped}  # images that stay where they are
        for i, c in zip(idx.tolist(), new.tolist()):
            rel = images[i]
            target = _unique_name(Path(split, names[c], *rel.parts[2:]), taken)
            taken.add(target)
            moves[rel] = target
            rows.append(
                {"split": split, "file": target.as_posix(), "original": classes[i], "new": c, "source": rel.as_posix()}
            )
        counts[split] = {"labels": len(images), "flipped": len(idx)}

    def write(tmp: Path) -> None:
        for d in all_dirs:
            (tmp / d).mkdir(parents=True, exist_ok=True)
        for rel in all_files:
            if rel == Path(MARKER) or rel.suffix in SKIP_SUFFIXES:
                continue
            if _is_image(rel, formats):
                _link_or_copy(root / rel, tmp / moves.get(rel, rel))
            else:
                shutil.copyfile(root / rel, tmp / rel)
        for split, c in counts.items():  # never report what was not copied
            copied = _count_images(tmp, split, formats)
            if copied != c["labels"]:
                raise RuntimeError(f"copied {copied} images of split '{split}' but counted {c['labels']}.")
        _write_manifest(tmp, rows, ("split", "file", "original", "new", "source"))

    return counts, names, write


def _noise_detect(
    yaml_file: Path, dst: Path, rate: float, kind: str, seed: int, splits: tuple[str, ...]
) -> tuple[dict, dict[int, str], Callable[[Path], None]]:
    """Plan a noisy copy of a YOLO detection dataset; return (counts, names, writer of the copy into a folder)."""
    import yaml

    formats = _img_formats()
    data, root, names = _load_det_yaml(yaml_file)
    nc = len(names)
    if nc < 2:
        raise ValueError(f"label noise needs at least 2 classes, {yaml_file} has {nc}.")
    if _inside(dst, root):
        raise ValueError(f"dst {dst} lies inside the source dataset root {root}; choose a folder outside.")
    present = [k for k in DET_SPLITS if data.get(k)]
    missing = [s for s in splits if s not in present]
    if missing:
        raise ValueError(f"split(s) {missing} not in {yaml_file}; available splits: {present}.")

    all_dirs, all_files = _walk(root)  # refuses symlink loops and broken links before anything is read
    entries = {k: _split_entries(data, root, k) for k in present}
    labels = _det_label_files(entries, root, splits, formats)
    texts, counts, rows = _flip_det_labels(root, labels, splits, np.random.default_rng(seed), rate, kind, nc)

    list_files = {p for k in present for p in entries[k] if p.is_file()}
    dst_data = {"path": str(dst), **{k: v for k, v in data.items() if k not in ("path", "download")}}

    def write(tmp: Path) -> None:
        for d in all_dirs:
            (tmp / d).mkdir(parents=True, exist_ok=True)
        for rel in all_files:
            src_file = root / rel
            if rel == Path(MARKER) or rel.suffix in SKIP_SUFFIXES or src_file.resolve() == yaml_file:
                continue
            if rel in texts:
                (tmp / rel).write_text("".join(texts[rel]), encoding="utf-8")
            elif src_file.resolve() in list_files:  # image list: point absolute paths into src at dst instead
                lines = _list_file_images(src_file.resolve(), root)
                out = [ln if ln.startswith("./") else str(dst / p.relative_to(root)) for ln, p in lines]
                (tmp / rel).write_text("".join(f"{ln}\n" for ln in out), encoding="utf-8")
            elif _is_image(rel, formats):
                _link_or_copy(src_file, tmp / rel)
            else:
                shutil.copyfile(src_file, tmp / rel)
        (tmp / "data.yaml").write_text(yaml.safe_dump(dst_data, sort_keys=False, allow_unicode=True), encoding="utf-8")
        _write_manifest(tmp, rows, ("split", "file", "line", "original", "new"))

    return counts, names, write


def _flip_det_labels(root: Path, labels: dict[str, list[Path]], splits: tuple[str, ...], rng: np.random.Generator,
                     rate: float, kind: str, nc: int) -> tuple[dict[Path, list[str]], dict, list[dict]]:
    """Flip the class ids of the label lines of each split in turn; returns (label file -> its lines with line ends,
    counts per split, manifest rows)."""
    texts: dict[Path, list[str]] = {}
    counts, rows = {}, []
    for split in splits:
        objects, classes = [], []  # (label file, line index) of every non-blank label line
        for rel in labels[split]:
            lines = (root / rel).read_text(encoding="utf-8").splitlines(keepends=True)
            texts[rel] = lines
            for i, line in enumerate(lines):
                if line.strip():
                    objects.append((rel, i))
                    classes.append(_label_class(line.split(maxsplit=1)[0], root / rel, i, nc))
        idx, new = _flips(rng, np.asarray(classes, dtype=np.int64), rate, kind, nc)
        for j, c in zip(idx.tolist(), new.tolist()):
            rel, i = objects[j]
            line = texts[rel][i]
            lead = len(line) - len(line.lstrip())
            token = line.split(maxsplit=1)[0]
            texts[rel][i] = f"{line[:lead]}{c}{line[lead + len(token) :]}"  # only the class id changes
            rows.append({"split": split, "file": rel.as_posix(), "line": i, "original": classes[j], "new": c})
        counts[split] = {"labels": len(objects), "flipped": len(idx)}
    return texts, counts, rows


def _write_manifest(root: Path, rows: Iterable[dict], columns: tuple[str, ...]) -> None:
    """Write the manifest CSV with a header and one row per flipped label."""
    with open(root / MANIFEST, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def _plan_noise(src: str | Path, dst: str | Path, rate: float, kind: str, seed: int, splits: tuple[str, ...]
                ) -> tuple[str, Path, Path, tuple[dict, dict[int, str], Callable[[Path], None]]]:
    """``(task, src path, dst, (counts, names, writer))`` of a noisy copy, planned before anything is written."""
    src = Path(src).expanduser().resolve()
    task, src_path = _detect_kind(src)
    dst = _check_dst(dst)
    if task == "classify":
        if _inside(dst, src):
            raise ValueError(f"dst {dst} lies inside the source dataset {src}; choose a folder outside.")
        return task, src_path, dst, _noise_classify(src, dst, rate, kind, seed, splits)
    return task, src_path, dst, _noise_detect(src_path, dst, rate, kind, seed, splits)


def add_label_noise(
    src: str | Path,
    dst: str | Path,
    rate: float,
    kind: str = "symmetric",
    seed: int = 0,
    splits: Iterable[str] = ("train",),
    *,
    marker: Mapping[str, Any] | None = None,
) -> Path:
    """Copy a dataset to `dst` and flip an exact, seeded fraction of the labels of `splits`; `src` is never modified.

    Images are hard-linked when possible (else copied: do not edit dst images in place), labels written fresh,
    `*.cache` files and the yolo-ls build marker left out. For each split in order, exactly `round(rate * n)` of its
    n labels are drawn without replacement with one `numpy.random.default_rng(seed)`. `symmetric` maps a flipped class
    to a uniformly random other class, `pairflip` maps c to (c + 1) % nc.

    - Classification: a label is an image, moved to its new class folder (renamed `<stem>_noisy<k><suffix>`, smallest
      free k, on a clash); classes are indexed by the sorted folder names of `train`, as Ultralytics does.
    - Detection (segment/pose/OBB too): a label is a non-blank line of a label file; only its class id is rewritten.
      `dst/data.yaml` gets `path: <dst>` (`download` dropped); image list files point into dst.

    `dst/noise_manifest.csv` lists every flipped label: `split,file,original,new` (class indices, `file` relative to
    dst), plus `line` (0-based) for detection or `source` (relative to src) for classification. `dst/noise.json`
    records the parameters and per-split counts.

    Args:
        src (str | Path): Classification root, detection data YAML, or a folder holding `data.yaml`.
        dst (str | Path): New output folder; must not exist or be empty, and must not lie inside src.
        rate (float): Fraction of labels flipped per split, in [0, 1].
        kind (str): "symmetric" or "pairflip".
        seed (int): Seed of `numpy.random.default_rng` choosing the flipped labels and (symmetric) their new classes.
        splits (Iterable[str]): Splits to corrupt, e.g. ("train",) (the default) or ("train", "val").
        marker (Mapping[str, Any] | None): A yolo-ls dataset marker written into dst last (``yolo-ls datasets``
            recognises its own build by it); its ``source`` is recorded as ``src`` in `noise.json`.

    Returns:
        (Path): The dst root for classification, `dst/data.yaml` for detection (usable as Ultralytics `data=`).

    Raises:
        ValueError: For a rate outside [0, 1] or NaN, an unknown kind, a missing split, a src of neither format, with
            fewer than 2 classes or invalid labels, or a dst inside src.
        FileExistsError: If dst exists and is not an empty directory.
    """
    rate, kind, seed, splits = _validate(rate, kind, seed, splits)
    task, src_path, dst, (counts, names, write_dataset) = _plan_noise(src, dst, rate, kind, seed, splits)
    params = {"task": task, "src": str(marker.get("source", src_path)) if marker else str(src_path), "dst": str(dst),
              "rate": rate, "kind": kind, "seed": seed, "splits": list(splits), "nc": len(names), "names": names,
              "counts": counts, "manifest": MANIFEST}

    def write(tmp: Path) -> None:
        write_dataset(tmp)
        (tmp / PARAMS_FILE).write_text(json.dumps(params, indent=1), encoding="utf-8")
        if marker is not None:
            (tmp / MARKER).write_text(json.dumps(dict(marker), indent=1), encoding="utf-8")  # last: proves completion

    _build(dst, write)  # dst appears complete or not at all
    n, k = (sum(c[key] for c in counts.values()) for key in ("labels", "flipped"))
    from ultralytics.utils import LOGGER

    LOGGER.info(
        f"yolo-ls: flipped {k}/{n} {'+'.join(splits)} labels ({k / max(n, 1):.1%}, {kind}, seed {seed}) -> {dst}"
    )
    return dst if task == "classify" else dst / "data.yaml"
