"""``yolo-ls compare``: the sweep of variants and seeds (``sweep``), training and caching each run (``runner``) and the
report (``report``). ``yolo_ls.compare.compare`` and the other names of ``runner`` resolve lazily."""

from __future__ import annotations

import importlib
from typing import Any


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    return getattr(importlib.import_module("yolo_ls.compare.runner"), name)
