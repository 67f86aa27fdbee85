"""The ``yolo-ls`` command (``main``), its argument splitting shared with the stock-``yolo`` hook (``argv``) and the
hook itself (``yolo_hook``). ``yolo_ls.cli.entrypoint`` and the other names of ``main`` resolve lazily."""

from __future__ import annotations

import importlib
from typing import Any


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    return getattr(importlib.import_module("yolo_ls.cli.main"), name)
