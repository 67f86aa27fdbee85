"""Checkpoints that are never torn: every write of ``last.pt``/``best.pt`` goes to a temporary file, is fsynced, then
replaces the target with ``os.replace`` (atomic on POSIX and Windows). A kill at any instant leaves either the old
checkpoint or the new one, never a truncated file, so a run can always be resumed.

Ultralytics writes checkpoints with ``Path.write_bytes`` in ``BaseTrainer.save_model`` and rewrites them with
``torch.save`` in ``strip_optimizer`` at the end of training; :func:`atomic_checkpoint_paths` and
:func:`atomic_strip_optimizer` route both through :func:`atomic_write_bytes`.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temp file in the same folder, fsync, ``os.replace``, fsync the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # not supported (Windows): os.replace is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class AtomicPath(type(Path())):  # type: ignore[misc]
    """A ``Path`` whose ``write_bytes`` is :func:`atomic_write_bytes` (what ``BaseTrainer.save_model`` calls)."""

    def write_bytes(self, data: bytes) -> int:  # type: ignore[override]
        atomic_write_bytes(self, bytes(data))
        return len(data)

    def __truediv__(self, other: Any) -> AtomicPath:  # ``wdir / "epoch3.pt"`` stays atomic too
        return AtomicPath(Path(self) / other)


def atomic_checkpoint_paths(trainer: Any) -> None:
    """Make the trainer's ``last``, ``best`` and ``wdir`` atomic-writing paths (same locations), and remove the
    temporary files that a kill during an earlier write left in ``wdir`` (:func:`remove_stale_temp_files`)."""
    for name in ("last", "best", "wdir"):
        value = getattr(trainer, name, None)
        if value is not None and not isinstance(value, AtomicPath):
            setattr(trainer, name, AtomicPath(value))
    if getattr(trainer, "wdir", None) is not None:
        remove_stale_temp_files(trainer.wdir)


def remove_stale_temp_files(wdir: str | Path) -> list[Path]:
    """Delete the ``.<name>.pt.*.tmp`` files of checkpoint writes that a kill interrupted (never renamed, so never a
    checkpoint). Called when a trainer starts, before it writes any checkpoint. Returns the files removed."""
    stale = sorted(Path(wdir).glob(".*.pt.*.tmp")) if Path(wdir).is_dir() else []
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


class _TempNameFilter(logging.Filter):
    """Rewrites Ultralytics' "Optimizer stripped from F, saved as TMP," so the log names the file the user gets."""

    def __init__(self, tmp: str, target: Path, in_place: bool) -> None:
        super().__init__()
        self.tmp, self.target, self.in_place = tmp, target, in_place

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if self.tmp in msg:
            if self.in_place:
                msg = msg.replace(f" saved as {self.tmp},", "")
            record.msg, record.args = msg.replace(self.tmp, str(self.target)), ()
        return True


@contextmanager
def _temp_name_hidden(tmp: str, target: Path, in_place: bool) -> Iterator[None]:
    from ultralytics.utils import LOGGER

    filt = _TempNameFilter(tmp, target, in_place)
    LOGGER.addFilter(filt)
    try:
        yield
    finally:
        LOGGER.removeFilter(filt)


def atomic_strip_optimizer(strip: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap Ultralytics' ``strip_optimizer(f, s="", updates=None)`` so its rewrite of ``f`` (or ``s``) is atomic."""

    def wrapper(f: str | Path = "best.pt", s: str = "", updates: dict[str, Any] | None = None) -> Any:
        target = Path(s or f)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        try:
            with _temp_name_hidden(tmp, target, in_place=not s or Path(s) == Path(f)):
                out = strip(f, s=tmp, updates=updates)
            if not out or os.path.getsize(tmp) == 0:  # not a checkpoint: Ultralytics skipped it, keep the file as is
                Path(tmp).unlink(missing_ok=True)
                return out
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(target.parent)
        return out

    return wrapper


@contextmanager
def atomic_final_strip() -> Iterator[None]:
    """While active, the ``strip_optimizer`` that ``BaseTrainer.final_eval`` calls writes atomically."""
    import ultralytics.engine.trainer as engine

    original = engine.strip_optimizer
    engine.strip_optimizer = atomic_strip_optimizer(original)
    try:
        yield
    finally:
        engine.strip_optimizer = original
