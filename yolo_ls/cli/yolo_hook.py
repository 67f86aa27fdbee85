"""The opt-in hook that makes an environment's stock ``yolo`` command train, validate and resume through yolo-ls.

``yolo-ls enable-yolo-cli`` re-points that environment's ``yolo`` and ``ultralytics`` console scripts at
:func:`entrypoint`; ``yolo-ls disable-yolo-cli`` restores the original, which is kept inside the re-pointed script
(a base64 comment line with its sha256). Reinstalling ultralytics also restores the stock script.

With the hook on, ``yolo train|val ...`` (``resume`` included) runs as ``yolo-ls train|val ...``; every other command
(``predict``, ``track``, ``export``, ``benchmark``, ``checks``, ``settings``, ``help``, ``version``, a missing mode...)
is handed unchanged to Ultralytics' own ``entrypoint``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import sys
import sysconfig
from collections.abc import Sequence
from pathlib import Path

SCRIPT_NAMES = ("yolo", "ultralytics")  # both are Ultralytics' console scripts for cfg.entrypoint
MARKER = "# yolo-ls: enable-yolo-cli"
_ORIGINAL = re.compile(r"^# yolo-ls-original: mode=(0o[0-7]+) sha256=([0-9a-f]{64}) b64=([A-Za-z0-9+/=]+)$", re.M)
_STOCK_IMPORT = "from ultralytics.cfg import entrypoint"

_HOOKED_TEMPLATE = """{shebang}
{marker} re-pointed this console script at yolo-ls (train/val/resume through yolo-ls, all else stock).
# 'yolo-ls disable-yolo-cli' writes the original back; it is kept on the next line.
# yolo-ls-original: mode={mode} sha256={sha} b64={b64}
import re
import sys

try:
    from yolo_ls.cli.yolo_hook import entrypoint
except ModuleNotFoundError as e:
    if e.name not in ("yolo_ls", "yolo_ls.cli.yolo_hook"):
        raise
    sys.stderr.write("yolo-ls is not importable here: running the stock command (label smoothing is dropped). "
                     "'pip install yolo-ls' again, or reinstall ultralytics to restore the stock script.\\n")
    from ultralytics.cfg import entrypoint
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])
    sys.exit(entrypoint())
"""


class YoloCliHookError(RuntimeError):
    """The console script cannot be re-pointed or restored (missing, not writable, not Ultralytics' script)."""


# ------------------------------------------------------------------------------------------------- the entry point
def entrypoint() -> int:
    """What a re-pointed ``yolo`` runs: ``train``/``val`` (and plugin arguments) through yolo-ls, all else stock."""
    from yolo_ls.cli.argv import _normalised_tokens, find_mode, run_yolo_command
    from yolo_ls.core.args import PLUGIN_KEYS

    argv = sys.argv[1:]
    try:
        mode = find_mode(argv)
        plugin_given = any(a.split("=", 1)[0].strip() in PLUGIN_KEYS for a in _normalised_tokens(argv) if "=" in a)
    except Exception:  # a malformed command: Ultralytics reports it in its own words
        mode, plugin_given = None, False
    if mode in ("train", "val") or plugin_given:
        return run_yolo_command(argv)  # plugin arguments with another mode are refused there, in one line
    from ultralytics.cfg import entrypoint as stock_entrypoint

    stock_entrypoint()
    return 0


# ----------------------------------------------------------------------------------------- the console scripts
def default_scripts_dir() -> Path:
    """This environment's scripts folder (``<venv>/bin``), where pip wrote the ``yolo`` console script."""
    return Path(sysconfig.get_path("scripts"))


def hooked_script(original: bytes, mode: int) -> bytes:
    """The re-pointed console script for an original stock script (its shebang kept, the original embedded)."""
    shebang = original.decode("utf-8").splitlines()[0]
    return _HOOKED_TEMPLATE.format(
        shebang=shebang,
        marker=MARKER,
        mode=oct(mode),
        sha=hashlib.sha256(original).hexdigest(),
        b64=base64.b64encode(original).decode("ascii"),
    ).encode("utf-8")


def embedded_original(hooked: bytes) -> tuple[bytes, int]:
    """(original bytes, original file mode) kept in a re-pointed script.

    Raises:
        YoloCliHookError: When the embedded copy is missing or does not match its checksum.
    """
    m = _ORIGINAL.search(hooked.decode("utf-8", errors="replace"))
    if m is None:
        raise YoloCliHookError("the re-pointed script has no 'yolo-ls-original' line to restore from")
    original = base64.b64decode(m.group(3))
    if hashlib.sha256(original).hexdigest() != m.group(2):
        raise YoloCliHookError("the original kept in the re-pointed script does not match its sha256")
    return original, int(m.group(1), 8)


def script_state(path: Path) -> str:
    """``on`` (re-pointed by yolo-ls), ``off`` (Ultralytics' stock script), ``missing`` or ``unknown``."""
    if not path.is_file():
        return "missing"
    text = path.read_bytes().decode("utf-8", errors="replace")
    if MARKER in text:
        return "on"
    if text.startswith("#!") and _STOCK_IMPORT in text:
        return "off"
    return "unknown"


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Replace ``path`` with ``data`` and file mode ``mode`` in one rename (never a half-written script)."""
    tmp = path.with_name(f".{path.name}.yolo-ls.tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _check_writable(path: Path) -> None:
    if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK):
        raise YoloCliHookError(
            f"cannot write {path}: permission denied. The hook re-points that file; run this as the user who "
            "installed the environment."
        )


def _targets(scripts_dir: Path) -> list[Path]:
    """The console scripts to act on: ``yolo`` (required) and ``ultralytics`` (when present)."""
    if not scripts_dir.is_dir():
        raise YoloCliHookError(f"'bin={scripts_dir}' is not a folder. Give the folder that holds the 'yolo' script.")
    yolo = scripts_dir / "yolo"
    if not yolo.is_file():
        raise YoloCliHookError(
            f"no 'yolo' console script in {scripts_dir}: is ultralytics installed in this environment? "
            "Give another environment's scripts folder with 'bin=DIR'."
        )
    return [p for p in (scripts_dir / n for n in SCRIPT_NAMES) if p.is_file()]


def enable(scripts_dir: Path | None = None) -> list[str]:
    """Re-point the ``yolo``/``ultralytics`` scripts of an environment at yolo-ls; idempotent.

    Everything is checked before anything is written, and a failed write puts back what was already changed.

    Returns:
        One line per script saying what was done.

    Raises:
        YoloCliHookError: When ``yolo`` is missing, a script is not Ultralytics' stock one, or is not writable.
    """
    scripts_dir = Path(scripts_dir or default_scripts_dir())
    plan, lines = [], []
    for path in _targets(scripts_dir):
        state = script_state(path)
        if state == "on":
            lines.append(f"{path}: already re-pointed at yolo-ls (nothing changed)")
            continue
        if state != "off":
            raise YoloCliHookError(
                f"{path} is not Ultralytics' pip-generated console script (no '{_STOCK_IMPORT}' line); "
                "yolo-ls leaves it alone. Reinstall ultralytics to get the stock script back first."
            )
        _check_writable(path)
        plan.append(path)
    done: list[tuple[Path, bytes, int]] = []
    try:
        for path in plan:
            original, mode = path.read_bytes(), path.stat().st_mode & 0o7777
            _write_atomic(path, hooked_script(original, mode), mode)
            done.append((path, original, mode))
            lines.append(f"{path}: re-pointed at yolo-ls (train/val/resume through yolo-ls, everything else stock)")
    except OSError as e:
        for path, original, mode in done:
            _write_atomic(path, original, mode)
        raise YoloCliHookError(f"could not re-point {path}: {e}; nothing was changed") from None
    return lines


def disable(scripts_dir: Path | None = None) -> list[str]:
    """Write the original ``yolo``/``ultralytics`` scripts back, byte for byte and with their file mode; idempotent.

    Returns:
        One line per script saying what was done.

    Raises:
        YoloCliHookError: When ``yolo`` is missing, a script is not writable or its embedded original is damaged.
    """
    scripts_dir = Path(scripts_dir or default_scripts_dir())
    plan, lines = [], []
    for path in _targets(scripts_dir):
        if script_state(path) != "on":
            lines.append(f"{path}: not re-pointed by yolo-ls (nothing changed)")
            continue
        _check_writable(path)
        plan.append((path, *embedded_original(path.read_bytes())))
    for path, original, mode in plan:
        _write_atomic(path, original, mode)
        lines.append(f"{path}: restored (the stock Ultralytics command again)")
    return lines


def doctor(scripts_dir: Path | None = None) -> list[str]:
    """Lines for ``yolo-ls doctor``: versions, the state of the hook, and which commands are on PATH."""
    from yolo_ls.engine.compat import version_text

    scripts_dir = Path(scripts_dir or default_scripts_dir())
    lines = version_text().splitlines()
    for name in SCRIPT_NAMES:
        path = scripts_dir / name
        state = script_state(path)
        text = {
            "on": "ON: train/val/resume go through yolo-ls ('yolo-ls disable-yolo-cli' restores it)",
            "off": "off: the stock command, which drops label_smoothing ('yolo-ls enable-yolo-cli' turns it on)",
            "missing": "not installed",
            "unknown": "not Ultralytics' stock script and not re-pointed by yolo-ls",
        }[state]
        lines.append(f"stock '{name}' hook: {text} [{path}]")
    for name in ("yolo-ls", "yolo"):
        found = shutil.which(name)
        where = found or f"not on PATH (source {scripts_dir / 'activate'}, or run {scripts_dir / name})"
        if found and Path(found).parent.resolve() != scripts_dir.resolve():
            where += f" (another environment than {scripts_dir})"
        lines.append(f"'{name}' on PATH: {where}")
    return lines


def _parse_bin(command: str, argv: Sequence[str]) -> Path | None:
    scripts_dir = None
    for a in argv:
        key, eq, value = a.partition("=")
        if key != "bin" or not eq or not value:
            raise SyntaxError(f"'{a}' is not a valid '{command}' argument. The only argument is 'bin=DIR', the "
                              f"folder holding the 'yolo' script (default: this environment's {default_scripts_dir()})")
        scripts_dir = Path(value).expanduser()
    return scripts_dir


def main(command: str, argv: Sequence[str]) -> int:
    """``yolo-ls doctor | enable-yolo-cli | disable-yolo-cli [bin=DIR]``: print what was done; the exit code."""
    scripts_dir = _parse_bin(command, argv)  # SyntaxError -> exit 2 in yolo_ls.cli.main.entrypoint
    action = {"doctor": doctor, "enable-yolo-cli": enable, "disable-yolo-cli": disable}[command]
    try:
        lines = action(scripts_dir)
    except YoloCliHookError as e:
        print(f"yolo-ls: error: {command}: {e}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0
