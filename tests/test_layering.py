"""The package's layers: every import of every module, lazy ones (inside functions) included, goes down the stack.

Bottom to top: ``calibration`` and ``datasets`` (pure), ``core`` (``core.args``, the argument table, above the rest of
``core``: the leaves own their vocabulary and the table imports them), ``plots``, ``engine`` (the Ultralytics glue),
``tune``, ``model`` (the drop-in ``YOLO``, which routes ``tune``), ``compare``, ``cli`` (``argv`` shared by the
stock-``yolo`` hook and the ``yolo-ls`` command; the hook never imports the command).
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "yolo_ls"

# (prefix, rank): the longest matching prefix names a module's layer.
LAYERS = (
    ("yolo_ls._version", 0),
    ("yolo_ls.calibration", 0),
    ("yolo_ls.datasets", 0),
    ("yolo_ls.core", 1),
    ("yolo_ls.core.args", 2),
    ("yolo_ls.plots", 3),
    ("yolo_ls.engine", 4),
    ("yolo_ls.tune", 5),
    ("yolo_ls.model", 6),
    ("yolo_ls.compare", 7),
    ("yolo_ls.cli", 8),
    ("yolo_ls.cli.argv", 8),
    ("yolo_ls.cli.yolo_hook", 9),
    ("yolo_ls.cli.main", 10),
    ("yolo_ls.cli.__main__", 11),
    ("yolo_ls.__main__", 11),
)


def _modules() -> dict[str, Path]:
    out = {}
    for f in PKG.rglob("*.py"):
        parts = f.relative_to(PKG.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = f
    return out


MODULES = _modules()


def _rank(module: str) -> int | None:
    best = None
    for prefix, rank in LAYERS:
        if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, rank)
    return None if best is None else best[1]


def _imports(module: str) -> set[str]:
    """Every yolo_ls module ``module`` imports, at the top or inside a function (``from P import m`` of a submodule
    ``m`` counts as an import of ``P.m``)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        out.update(n for n in names if n.split(".")[0] == "yolo_ls" and n != module)
    return out


def test_every_module_has_a_layer() -> None:
    assert [m for m in MODULES if m != "yolo_ls" and _rank(m) is None] == []


def test_imports_only_go_down() -> None:
    """No module imports a higher layer, nor a module of its own rank in another package."""
    bad = []
    for module in MODULES:
        if module == "yolo_ls":  # the facade: lazy names resolved with importlib, never imported by a module below
            continue
        for target in _imports(module):
            if target == "yolo_ls" or target.startswith("yolo_ls._version"):
                if target == "yolo_ls":
                    bad.append(f"{module} -> yolo_ls (import the defining module instead)")
                continue
            r, t = _rank(module), _rank(target)
            same_package = module.split(".")[:2] == target.split(".")[:2]
            if t > r or (t == r and not same_package):
                bad.append(f"{module} (layer {r}) -> {target} (layer {t})")
    assert bad == []


def test_no_import_cycle() -> None:
    graph = {m: {t for t in _imports(m) if t in MODULES} for m in MODULES}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*stack[stack.index(nxt):], nxt]))
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == []


def test_the_hook_never_imports_the_command() -> None:
    assert "yolo_ls.cli.main" not in _imports("yolo_ls.cli.yolo_hook")


def test_the_argument_table_is_imported_by_nothing_below_it() -> None:
    below = [m for m in MODULES if (_rank(m) or 0) < 2]
    assert [m for m in below if "yolo_ls.core.args" in _imports(m)] == []


def test_the_metrics_import_neither_plots_nor_ultralytics() -> None:
    for module in (m for m in MODULES if m.startswith("yolo_ls.calibration")):
        tree = ast.parse(MODULES[module].read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not {n for n in names if n.startswith(("ultralytics", "matplotlib", "yolo_ls.plots"))}, module


def test_old_flat_module_paths_still_resolve_and_name_the_new_one() -> None:
    """Code written against the flat layout keeps working, and is told where each name lives now."""
    import subprocess
    import sys

    code = (
        "import warnings; warnings.simplefilter('error', FutureWarning)\n"
        "import yolo_ls.core.args as new\n"
        "try:\n    from yolo_ls.config import ARGS\nexcept FutureWarning as w:\n    print(w)\n"
        "warnings.simplefilter('ignore', FutureWarning)\n"
        "from yolo_ls.config import ARGS\nfrom yolo_ls.losses import install_smoothing, smooth_targets\n"
        "from yolo_ls.callbacks import add_calibration_callbacks\n"
        "assert ARGS is new.ARGS\n"
        "import yolo_ls.engine.inject as inject; assert install_smoothing is inject.install_smoothing\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "yolo_ls.config moved: import ARGS from yolo_ls.core.args" in out
