"""The ``yolo`` grammar, shared by the ``yolo-ls`` command and the stock-``yolo`` hook: ``[task] mode key=value ...``
parsed with Ultralytics' own helpers, ``train``/``val`` run through :class:`yolo_ls.YOLO`, the other modes handed to
Ultralytics' entrypoint after the plugin arguments are refused and the keys checked."""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from yolo_ls.core.args import DEFAULTS, TASKS, PluginArgumentError, check_keys

MODES = ("train", "val", "predict", "export", "track", "benchmark")
# The yolo-ls special commands (the "did you mean" of a mistyped mode offers them too).
SPECIAL = ("help", "version", "cfg", "compare", "datasets", "plot", "doctor", "enable-yolo-cli", "disable-yolo-cli")
# errno values of a write the user can fix: no space, read-only file system, no permission, quota.
WRITE_ERRORS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT}
# Modes and special commands that Ultralytics' own entrypoint runs (run_stock).
STOCK_MODES = ("predict", "track", "export", "benchmark")
STOCK_SPECIAL = ("checks", "settings", "solutions", "copy-cfg", "login", "logout")


def guarded(fn: Callable[..., Any], *args: Any, exit_code: bool = False) -> int:
    """Call ``fn(*args)`` and turn a user's mistake into one error line: exit code 2 for bad input, 1 for a failure
    the user can act on, else 0 (or ``fn``'s own return value with ``exit_code=True``). Never a traceback for these."""
    try:
        result = fn(*args)
    except (SyntaxError, PluginArgumentError, FileExistsError) as e:
        print(f"yolo-ls: error: {e}", file=sys.stderr)
        return 2
    except (FileNotFoundError, RuntimeError, TypeError, ValueError) as e:
        print(f"yolo-ls: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # a full disk, a read-only or foreign folder: the user's to fix, never a traceback
        if e.errno not in WRITE_ERRORS:
            raise
        print(f"yolo-ls: error: could not write {e.filename or 'an output file'}: {e.strerror or e}. Free space or fix "
              "the folder's permissions; a training can then go on with 'yolo-ls train resume=RUN/weights/last.pt' "
              "(every finished epoch is in its checkpoint).", file=sys.stderr)
        return 1
    return int(result) if exit_code else 0


def run_yolo_command(argv: Sequence[str]) -> int:
    """Run a ``yolo``-grammar command (``train``/``val`` through yolo-ls, the rest stock); returns the exit code."""
    special = _stock_special(argv[0].lstrip("-").lower() if argv else "")  # 'settings k=v' takes settings keys
    code = 0 if special else guarded(precheck, list(argv))
    return code if code else guarded(_run_yolo_command, list(argv))


def stock_keys() -> frozenset[str]:
    """Ultralytics' argument names, read from its ``cfg/default.yaml`` without importing Ultralytics (or torch)."""
    import importlib.util

    import yaml

    spec = importlib.util.find_spec("ultralytics")
    folder = Path(next(iter(spec.submodule_search_locations)))  # type: ignore[union-attr]
    return frozenset(yaml.safe_load((folder / "cfg" / "default.yaml").read_text()))


def precheck(argv: Sequence[str], extra: Sequence[str] = ()) -> None:
    """Answer the common mistakes in well under a second, before Ultralytics and torch are imported and before any
    folder exists: an unknown key (with a "did you mean"), a numeric plugin value out of range, and a mistyped
    embedded dataset name (``data=digts``). Anything this cannot read is left to the full parse.

    Raises:
        SyntaxError: An unknown key or dataset name.
        PluginArgumentError: A plugin argument out of range.
    """
    from difflib import get_close_matches

    from yolo_ls.core.args import _ULTRALYTICS_EXTRA_KEYS, ARG_TABLE, SIGNED_ARGS
    from yolo_ls.datasets.names import DATASET_ALIASES

    pairs = [a.split("=", 1) for a in (t[2:] if t.startswith("--") else t for t in argv)
             if "=" in a and not a.startswith("=") and not a.endswith("=")]
    valid = stock_keys() | _ULTRALYTICS_EXTRA_KEYS | set(ARG_TABLE) | set(extra)
    keys = {k.strip() for k, _ in pairs}
    lines = []
    for key, value in ((k.strip(), v.strip().rstrip(",")) for k, v in pairs):
        if key not in valid:
            close = get_close_matches(key, sorted(valid))
            hint = f" Similar arguments are i.e. {close}." if close else ""
            lines.append(f"'{key}' is not a valid YOLO or yolo-ls argument.{hint}")
        elif key in ARG_TABLE and _is_plain_number(value) and not (key in SIGNED_ARGS and "ls_negative" in keys):
            ARG_TABLE[key](_number(value))
        elif key == "data" and value not in DATASET_ALIASES and not Path(value).exists():
            close = get_close_matches(value, DATASET_ALIASES, n=1, cutoff=0.75)
            if "/" in value and "://" not in value:  # a local path, not a name or URL Ultralytics could download
                lines.append(f"'data={value}': no such file or folder.")
            elif close:
                lines.append(f"'data={value}': no such dataset or folder. Did you mean 'data={close[0]}' (embedded)?")
    if lines:
        raise SyntaxError("\n".join(lines))


def _is_plain_number(text: str) -> bool:
    """Whether a command-line value is a number (nan and inf included: they are refused as numbers, not strings)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def _run_yolo_command(argv: list[str]) -> None:
    if _stock_special(argv[0].lstrip("-").lower() if argv else "") or find_mode(argv) in STOCK_MODES:
        run_stock(argv)
    else:
        task, mode, overrides = parse_args(argv)
        run(task, mode, overrides)


def _resume_model(overrides: dict[str, Any]) -> None:
    """``resume=PATH`` means ``model=PATH`` (as Ultralytics' ``yolo train resume model=PATH``); PATH must be a whole
    checkpoint. Ultralytics would otherwise resume ``model``'s own checkpoint, or start a new run from a default."""
    import zipfile

    resume = overrides.get("resume")
    if not isinstance(resume, (str, Path)):
        return
    path = Path(resume)
    if not path.is_file():
        raise SyntaxError(f"'resume={resume}': no such checkpoint file. Pass the last.pt of the run to resume, i.e. "
                          "'resume=runs/classify/train/weights/last.pt'.")
    try:
        intact = zipfile.is_zipfile(path) and zipfile.ZipFile(path).testzip() is None
    except (OSError, zipfile.BadZipFile, RuntimeError):
        intact = False
    if not intact:
        raise SyntaxError(f"'resume={resume}' is not a readable checkpoint (truncated, or not a .pt file saved by "
                          "Ultralytics). Resume from another checkpoint of the run, i.e. its best.pt, or start anew.")
    model = overrides.get("model")
    if model is not None and Path(str(model)).resolve() != path.resolve():
        raise SyntaxError(f"'resume={resume}' resumes that checkpoint, but 'model={model}' names another one. Drop "
                          "'model=' (resume=PATH uses PATH as the model) or pass 'model=PATH resume'.")
    from yolo_ls.engine.trainers import check_resume_checkpoint

    try:  # a finished run (stripped last.pt) is answered here, before Model.train would start a new run from it
        check_resume_checkpoint(path)
    except PluginArgumentError as e:
        if "is finished, nothing to resume" in str(e):
            raise
    overrides["model"] = str(path)
    overrides["resume"] = True


def parse_args(argv: Sequence[str], extra: Sequence[str] = ()) -> tuple[str | None, str | None, dict[str, Any]]:
    """Parse ``[task] mode key=value ...`` into (task, mode, overrides) with Ultralytics' own value parsing.

    ``extra`` names keys a command accepts besides the train arguments (compare's ``seeds``, ``backend``, ...).

    Raises:
        SyntaxError: For a malformed or unknown argument, with a "did you mean" over Ultralytics and plugin keys.
    """
    from ultralytics.cfg import merge_equals_args, parse_key_value_pair
    from ultralytics.utils import DEFAULT_CFG_DICT, checks

    from yolo_ls.engine.compat import YAML

    task = mode = None
    overrides: dict[str, Any] = {}
    cfg_file: dict[str, Any] = {}
    for a in merge_equals_args(list(argv)):
        a = a[2:] if a.startswith("--") else a
        a = a[:-1] if a.endswith(",") else a
        if "=" in a:
            key, _, raw = a.partition("=")
            if not raw.strip():
                raise _empty_value_error(key, EMPTY_EXAMPLES.get(key, DEFAULTS.get(key, DEFAULT_CFG_DICT.get(key))))
            k, v = parse_key_value_pair(a)
            if k == "cfg" and v is not None:
                cfg_file = {k2: v2 for k2, v2 in YAML.load(checks.check_yaml(v)).items() if k2 != "cfg"}
            else:
                overrides[k] = v
        elif a in TASKS:
            task = a
        elif a in MODES:
            mode = a
        elif a in DEFAULT_CFG_DICT and isinstance(DEFAULT_CFG_DICT[a], bool):
            overrides[a] = True  # 'yolo-ls val plots' sets plots=True, as with 'yolo'
        elif a in DEFAULT_CFG_DICT or a in DEFAULTS:
            default = DEFAULTS.get(a, DEFAULT_CFG_DICT.get(a))
            raise SyntaxError(f"'{a}' is a valid argument but is missing an '=' sign to set it, i.e. '{a}={default}'")
        else:
            from difflib import get_close_matches

            similar = get_close_matches(a, [*MODES, *TASKS, *SPECIAL, *DEFAULTS, *DEFAULT_CFG_DICT])
            hint = f" Similar arguments are i.e. {similar}." if similar else ""
            raise SyntaxError(
                f"'{a}' is not a valid yolo-ls mode, task or key=value argument. Valid modes are {list(MODES)}.{hint}"
            )
    overrides = {**cfg_file, **overrides}
    check_keys([k for k in overrides if k not in ("task", "mode", *extra)])
    _resume_model(overrides)
    task = overrides.pop("task", task)
    mode = overrides.pop("mode", mode)
    return task, mode, overrides


def run(task: str | None, mode: str | None, overrides: dict[str, Any]) -> Any:
    """Execute one parsed command: train and val through :class:`yolo_ls.YOLO`, the other modes through ``yolo``."""
    from ultralytics.cfg import TASK2MODEL
    from ultralytics.utils import LOGGER

    from yolo_ls.model import YOLO

    if mode is None:
        raise SyntaxError(f"'mode' is missing. Valid modes are {list(MODES)}, i.e. 'yolo-ls train ...'.")
    if mode in STOCK_MODES:  # i.e. mode: predict in a cfg= file: the same road as 'yolo-ls predict ...'
        return run_stock([*([task] if task else []), mode, *(f"{k}={v}" for k, v in overrides.items())])
    if mode not in MODES:
        raise SyntaxError(f"Invalid 'mode={mode}'. Valid modes are {list(MODES)}.")
    if task is not None and task not in TASKS:
        raise SyntaxError(f"Invalid 'task={task}'. Valid tasks are {list(TASKS)}.")
    model = overrides.pop("model", None)
    resume = overrides.get("resume")
    if model is None and mode == "train" and isinstance(resume, (str, Path)) and Path(resume).is_file():
        model = str(resume)  # 'yolo-ls train resume=PATH': the checkpoint is the model (not the default download)
    if model is None:
        model = TASK2MODEL[task or "detect"]
        LOGGER.warning(f"'model' argument is missing. Using default 'model={model}'.")
    yolo = YOLO(model, task=task)
    return getattr(yolo, mode)(**overrides)


def _normalised_tokens(argv: Sequence[str]) -> list[str]:
    """The arguments as Ultralytics reads them: '=' merged, leading '--' and trailing ',' dropped."""
    from ultralytics.cfg import merge_equals_args

    out = []
    for a in merge_equals_args(list(argv)):
        a = a[2:] if a.startswith("--") else a
        out.append(a[:-1] if a.endswith(",") else a)
    return out


def _key_values(tokens: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the ``k=v`` tokens, the keys of a ``cfg=file.yaml``) parsed with Ultralytics' helpers (bad pairs skipped)."""
    from ultralytics.cfg import parse_key_value_pair
    from ultralytics.utils import checks

    from yolo_ls.engine.compat import YAML

    given: dict[str, Any] = {}
    for a in tokens:
        if "=" in a:
            try:
                k, v = parse_key_value_pair(a)
            except (NameError, SyntaxError, ValueError, AssertionError):
                continue  # Ultralytics reports it with its own message
            given[k] = v
    cfg_file: dict[str, Any] = {}
    if given.get("cfg") is not None:
        cfg_file = {k: v for k, v in YAML.load(checks.check_yaml(given["cfg"])).items() if k != "cfg"}
    return given, cfg_file


def find_mode(argv: Sequence[str]) -> str | None:
    """The mode a ``yolo``-grammar command names (a bare mode, ``mode=...`` or a ``cfg=`` file's mode), else None.

    Only the modes Ultralytics knows count as bare words; the last one named wins, as in ``yolo``.
    """
    from ultralytics.cfg import MODES as ULTRALYTICS_MODES

    tokens = _normalised_tokens(argv)
    given, cfg_file = _key_values(tokens)
    mode = given.get("mode", cfg_file.get("mode"))
    for a in tokens:
        if a in ULTRALYTICS_MODES:
            mode = a
    return mode if isinstance(mode, str) else None


def check_stock_args(argv: Sequence[str]) -> list[str]:
    """Check a command for Ultralytics' own entrypoint before it runs; return the arguments to hand it.

    The plugin arguments are refused (they apply to train and val only), every key is checked with one "did you mean"
    over the Ultralytics and plugin keys, and ``data=digits`` / ``data=digits-det`` become the built datasets' paths.

    Raises:
        PluginArgumentError: For a plugin argument, given on the command line or in a ``cfg=`` file.
        SyntaxError: For an unknown key or bare word.
    """
    from difflib import get_close_matches

    from ultralytics.cfg import MODES as ULTRALYTICS_MODES
    from ultralytics.cfg import TASKS as ULTRALYTICS_TASKS
    from ultralytics.utils import DEFAULT_CFG_DICT

    from yolo_ls.datasets import DATASET_ALIASES, resolve_data

    tokens = _normalised_tokens(argv)
    given, cfg_file = _key_values(tokens)
    mode = find_mode(argv) or "predict"
    plugin = [k for k in {**cfg_file, **given} if k in DEFAULTS]
    if plugin:
        raise PluginArgumentError(f"{plugin} only apply to 'train' and 'val', not to '{mode}'.")
    check_keys([k for k in {**cfg_file, **given} if k not in ("task", "mode")])
    flags = {k for k, v in DEFAULT_CFG_DICT.items() if isinstance(v, bool)} | {"half", "int8", "end2end", "nms"}
    bare_ok = {*ULTRALYTICS_MODES, *ULTRALYTICS_TASKS, *flags}
    for a in tokens:
        if "=" not in a and a not in bare_ok:
            if a in DEFAULT_CFG_DICT:
                raise SyntaxError(f"'{a}' is a valid argument but is missing an '=' sign to set it, i.e. "
                                  f"'{a}={DEFAULT_CFG_DICT[a]}'")
            similar = get_close_matches(a, sorted(bare_ok | set(DEFAULT_CFG_DICT)))
            hint = f" Similar arguments are i.e. {similar}." if similar else ""
            raise SyntaxError(f"'{a}' is not a valid mode, task or key=value argument for '{mode}'.{hint}")
    out = []
    for a in tokens:
        if a.startswith("data=") and given.get("data") in DATASET_ALIASES:
            a = f"data={resolve_data(given['data'])}"
        out.append(a)
    return out


@contextmanager
def stock_cli_argv(argv: Sequence[str]) -> Iterator[None]:
    """Make Ultralytics see ``yolo ARGS...`` as the program's command line for the duration of the block.

    Ultralytics decides from ``ARGV`` (``sys.argv`` as imported) what the CLI does: ``cfg.entrypoint`` reads the
    arguments from it, and ``Model.predict`` saves results and streams (``predict_cli``) only when ``ARGV[0]`` ends in
    ``yolo``. Both modules' ``ARGV`` are swapped and restored, so nothing else in the process changes.
    """
    import ultralytics.cfg
    import ultralytics.engine.model

    modules = (ultralytics.cfg, ultralytics.engine.model)
    saved = [m.ARGV for m in modules]
    for m in modules:
        m.ARGV = ["yolo", *argv]
    try:
        yield
    finally:
        for m, old in zip(modules, saved):
            m.ARGV = old


def run_stock(argv: Sequence[str]) -> None:
    """Run a non-plugin command (predict, track, export, benchmark, checks, settings, ...) with ``yolo``'s own code.

    The arguments are checked first (:func:`check_stock_args`; special commands are passed as they are), then
    Ultralytics' ``cfg.entrypoint`` runs them as the ``yolo`` program, so results are saved and streamed exactly
    as ``yolo`` saves and streams them.
    """
    from ultralytics.cfg import entrypoint as yolo_entrypoint

    first = argv[0].lstrip("-").lower() if argv else ""
    args = list(argv) if _stock_special(first) else check_stock_args(argv)
    with stock_cli_argv(args):
        yolo_entrypoint()


def _stock_special(word: str) -> bool:
    """Whether a first argument names one of Ultralytics' special commands (``checks``, ``settings``, ...)."""
    return word in STOCK_SPECIAL or f"{word}s" in STOCK_SPECIAL


def _empty_value_error(key: str, example: Any) -> SyntaxError:
    """'key=' typed with nothing after the '=': name the key and show a value."""
    return SyntaxError(f"'{key}=' has no value. Give '{key}' a value, i.e. '{key}={example}', or leave it out.")


EMPTY_EXAMPLES = {"cfg": "my.yaml", "model": "yolo11n-cls.yaml", "data": "digits", "label_smoothing": 0.1,
                  "resume": "path/to/last.pt", "project": "runs/mine", "name": "exp"}
