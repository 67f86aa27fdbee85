"""The ``yolo-ls`` command: the ``yolo`` grammar (``yolo-ls [task] mode key=value ...``) plus the plugin arguments.

    yolo-ls train model=yolo11n-cls.yaml data=digits imgsz=32 epochs=3 label_smoothing=0.1
    yolo-ls val model=runs/classify/train/weights/best.pt data=digits
    yolo-ls compare model=yolo11n-cls.yaml data=digits label_smoothing=0,0.05,0.1 epochs=20 imgsz=32
    yolo-ls datasets digits out=data/digits noise=0.2 noise_kind=symmetric seed=0
    yolo-ls predict model=best.pt source=video.mp4      # predict, track, export, benchmark: exactly as with 'yolo'
    yolo-ls help | version | cfg | doctor | enable-yolo-cli | disable-yolo-cli

``train`` and ``val`` run through :class:`yolo_ls.YOLO`. ``predict``, ``track``, ``export``, ``benchmark`` and the
stock special commands (``checks``, ``settings``, ``solutions``, ...) are handed to Ultralytics' own ``yolo``
entrypoint, after the plugin arguments are refused and the keys checked, so they behave and save as with ``yolo``.

Arguments are parsed by Ultralytics' own helpers (``merge_equals_args``, ``parse_key_value_pair``), so values have the
same types as with ``yolo``. Bad input ends with one error line and exit code 2, never a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from yolo_ls import __version__
from yolo_ls.config import ARGS, DEFAULTS, TASKS, PluginArgumentError, check_keys

MODES = ("train", "val", "predict", "export", "track", "benchmark")
SPECIAL = ("help", "version", "cfg", "compare", "datasets", "plot", "doctor", "enable-yolo-cli", "disable-yolo-cli")
# Modes and special commands that Ultralytics' own entrypoint runs (run_stock), and the yolo-ls commands for the hook.
STOCK_MODES = ("predict", "track", "export", "benchmark")
STOCK_SPECIAL = ("checks", "settings", "solutions", "copy-cfg", "login", "logout")
HOOK_COMMANDS = ("doctor", "enable-yolo-cli", "disable-yolo-cli")


def help_text() -> str:
    """``yolo-ls help``: usage and one line per plugin argument, read from the argument table."""
    width = max(len(a.name) for a in ARGS) + max(len(repr(a.default)) for a in ARGS) + 3
    rows = "\n".join(f"    {(a.name + '=' + str(a.default)).ljust(width)} {a.help}" for a in ARGS)
    return (
        f"yolo-ls {__version__}: Ultralytics YOLO with label smoothing in the loss.\n\n"
        "Usage: yolo-ls [TASK] MODE ARGS...    (the 'yolo' grammar; every Ultralytics argument works too)\n"
        f"    TASK (optional) is one of {list(TASKS)}\n"
        f"    MODE is one of {list(MODES)}, or a special command: {list(SPECIAL)}\n\n"
        "Examples:\n"
        "    yolo-ls train model=yolo11n-cls.yaml data=digits imgsz=32 epochs=3 label_smoothing=0.1\n"
        "    yolo-ls detect train model=yolo11n.yaml data=digits-det imgsz=128 label_smoothing=0.05 ls_mode=fg\n"
        "    yolo-ls val model=runs/classify/train/weights/best.pt data=digits\n"
        "    yolo-ls compare model=yolo11n-cls.yaml data=digits label_smoothing=0,0.05,0.1 epochs=20 imgsz=32\n"
        "    yolo-ls compare ... label_smoothing=0,0.1 ls_mode=uniform,margin seeds=0,1,2 backend=ray\n"
        "    yolo-ls datasets digits out=data/digits-noisy noise=0.2 noise_kind=symmetric seed=0\n\n"
        f"Plugin arguments (defaults):\n{rows}\n\n"
        "Ultralytics arguments: https://docs.ultralytics.com/usage/cfg/"
    )


def cfg_text() -> str:
    """``yolo-ls cfg``: the plugin defaults as YAML."""
    import yaml

    return yaml.safe_dump(dict(DEFAULTS), sort_keys=False).rstrip()


def version_text() -> str:
    """``yolo-ls version``: versions of yolo-ls, Ultralytics and torch."""
    import torch
    import ultralytics

    return f"yolo-ls {__version__}\nultralytics {ultralytics.__version__}\ntorch {torch.version.__version__}"


def run_compare(argv: Sequence[str]) -> Any:
    """``yolo-ls compare key=value ...``: train every variant of the sweep (per seed) and write the report."""
    import errno

    from yolo_ls.compare import COMPARE_KEYS, compare

    task, mode, overrides = parse_args(argv, extra=COMPARE_KEYS)
    if mode is not None:
        raise SyntaxError(f"'compare' takes key=value arguments only, not the mode '{mode}'.")
    for key in ("model", "data"):
        if key not in overrides:
            raise SyntaxError(f"'compare' needs '{key}=...', i.e. 'yolo-ls compare model=yolo11n-cls.yaml data=digits'")
    eps = overrides.pop("label_smoothing", (0.0, 0.05, 0.1))
    try:
        return compare(overrides.pop("model"), overrides.pop("data"), eps, **overrides)
    except OSError as e:  # disk full, read-only or no permission in the middle of a run: one line, no traceback
        if e.errno not in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT):
            raise
        raise RuntimeError(f"compare could not write {e.filename or 'its outputs'}: {e.strerror or e}. Free space or "
                           "fix the folder, then run the same command again: finished variants are kept.") from None


DATASET_ARGS = {"out": None, "imgsz": None, "seed": 0, "noise": 0.0, "noise_kind": "symmetric", "n_train": None,
                "n_val": None}
DATASET_USAGE = "usage: yolo-ls datasets digits|digits-det out=DIR [imgsz=..] [noise=0.2 noise_kind=symmetric seed=0]"


def _empty_value_error(key: str, example: Any) -> SyntaxError:
    """'key=' typed with nothing after the '=': name the key and show a value."""
    return SyntaxError(f"'{key}=' has no value. Give '{key}' a value, i.e. '{key}={example}', or leave it out.")


def _int_arg(key: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SyntaxError(f"'{key}={value}' is an invalid value. Valid '{key}' values are integers >= {minimum}.")
    return value


def _check_writable(key: str, path: Path) -> None:
    """Refuse an output folder that cannot be written, before anything is built."""
    from yolo_ls.utils import unwritable_reason

    reason = unwritable_reason(path)
    if reason:
        raise SyntaxError(f"'{key}={path}' cannot be written: {reason}.")


def _dataset_args(argv: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """Parse and check every ``datasets`` argument before anything is written; return (dataset name, arguments)."""
    from difflib import get_close_matches

    from ultralytics.cfg import parse_key_value_pair

    from yolo_ls.datasets import NOISE_KINDS

    names = [a for a in argv if "=" not in a]
    if len(names) != 1 or names[0] not in ("digits", "digits-det"):
        raise SyntaxError(DATASET_USAGE)
    dataset = names[0]
    examples = {"out": "data/digits", "imgsz": 32, "seed": 0, "noise": 0.2, "noise_kind": "symmetric", "n_train": 400,
                "n_val": 100}
    args, given = dict(DATASET_ARGS), set()
    for a in argv:
        if "=" not in a:
            continue
        k, _, raw = a.partition("=")
        if k not in args:
            hint = get_close_matches(k, list(args))
            hint_text = f" Did you mean '{hint[0]}'?" if hint else ""
            raise SyntaxError(f"'{k}' is not a valid 'datasets' argument.{hint_text} Valid arguments are {list(args)}.")
        if not raw.strip():
            raise _empty_value_error(k, examples[k])
        args[k] = parse_key_value_pair(a)[1]
        given.add(k)
    if args["out"] is None:
        raise SyntaxError("'datasets' needs 'out=DIR', the folder to write the dataset to.")
    noise = args["noise"]
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not 0.0 <= noise <= 1.0:
        raise SyntaxError(f"'noise={noise}' is an invalid value. Valid 'noise' values are floats between 0.0 "
                          "(inclusive) and 1.0 (inclusive), the fraction of train labels flipped, i.e. 'noise=0.2'.")
    args["noise"] = float(noise)
    if args["noise_kind"] not in NOISE_KINDS:
        close = get_close_matches(str(args["noise_kind"]), NOISE_KINDS, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise SyntaxError(f"'noise_kind={args['noise_kind']}' is an invalid value. Valid 'noise_kind' values are "
                          f"{list(NOISE_KINDS)}.{hint}")
    if "noise_kind" in given and not args["noise"]:
        raise SyntaxError("'noise_kind' only applies with label noise: add 'noise=0.2' (a fraction > 0) or drop it.")
    args["seed"] = _int_arg("seed", args["seed"], 0)
    if args["imgsz"] is not None:
        args["imgsz"] = _int_arg("imgsz", args["imgsz"], 8 if dataset == "digits" else 32)
    for k in ("n_train", "n_val"):
        if args[k] is not None:
            if dataset == "digits":
                raise SyntaxError(f"'{k}' applies to 'digits-det' only; 'digits' always has sklearn's 1797 images.")
            args[k] = _int_arg(k, args[k], 1)
    args["out"] = Path(str(args["out"])).expanduser().resolve()
    _check_writable("out", args["out"])
    return dataset, args


def run_datasets(argv: Sequence[str]) -> Any:
    """``yolo-ls datasets digits|digits-det out=... [noise=0.2 noise_kind=symmetric seed=0]``.

    Every argument is checked before anything is written. A folder that already holds the same build (clean or noisy,
    same arguments) is reused; one holding anything else is refused. The clean copy behind a noisy build lives in a
    temporary folder that is removed afterwards.
    """
    import tempfile

    from ultralytics.utils import LOGGER

    from yolo_ls.datasets import add_label_noise, digits, digits_detection
    from yolo_ls.datasets.digits import FORMAT_VERSION, check_cached

    dataset, args = _dataset_args(argv)
    out: Path = args["out"]
    seed = args["seed"]
    if dataset == "digits":
        kw: dict[str, Any] = {"imgsz": args["imgsz"] or 32, "seed": seed}
        params = {"imgsz": kw["imgsz"], "val_fraction": 0.2, "seed": seed}
    else:
        kw = {"imgsz": args["imgsz"] or 128, "seed": seed, **{k: args[k] for k in ("n_train", "n_val") if args[k]}}
        params = {"imgsz": kw["imgsz"], "n_train": kw.get("n_train", 400), "n_val": kw.get("n_val", 100), "seed": seed,
                  "max_digits": 4}
    build = digits if dataset == "digits" else digits_detection
    noisy = f"{dataset}-noisy"
    noisy_params = {**params, "noise": args["noise"], "noise_kind": args["noise_kind"], "noise_splits": ["train"]}
    try:
        cached = check_cached(out, noisy if args["noise"] else dataset, noisy_params if args["noise"] else params)
    except ValueError as e:  # out holds another build or the user's own files: refused, nothing touched (exit 2)
        raise FileExistsError(str(e)) from None
    try:
        if not args["noise"]:
            built = build(out, **kw)  # builds, or reuses the identical build found above
        elif cached:
            built = out if dataset == "digits" else out / "data.yaml"
            LOGGER.info(f"yolo-ls: reusing the identical noisy dataset in {out}")
        else:
            marker = {"dataset": noisy, "format_version": FORMAT_VERSION, "params": noisy_params,
                      "source": f"{dataset}({', '.join(f'{k}={v}' for k, v in params.items())})"}
            with tempfile.TemporaryDirectory(prefix="yolo-ls-clean-") as tmp:
                clean = build(Path(tmp) / "clean", **kw)
                built = add_label_noise(clean, out, args["noise"], kind=args["noise_kind"], seed=seed, marker=marker)
    except FileExistsError:
        raise
    except OSError as e:  # disk full, read-only, ...: one clean line, no traceback
        where = e.filename or out
        raise RuntimeError(f"could not write the dataset to out={out}: {e.strerror or e} ({where})") from None
    LOGGER.info(f"yolo-ls: dataset ready at {built}")
    print(built)
    return built


def run_plot(argv: Sequence[str]) -> list[Path]:
    """``yolo-ls plot RUN``: draw every figure of a run folder from its files (per-epoch diagrams included).

    Raises:
        SyntaxError: Without exactly one RUN, or when RUN is not a folder a yolo-ls training wrote.
    """
    from ultralytics.utils import LOGGER

    from yolo_ls.plots import RUN_FILES, is_run_folder, render_run

    if len(argv) != 1 or "=" in argv[0]:
        raise SyntaxError("usage: yolo-ls plot RUN, i.e. 'yolo-ls plot runs/classify/train' (one run folder)")
    run = Path(argv[0])
    if not is_run_folder(run):
        what = "does not exist" if not run.exists() else "is not a folder" if not run.is_dir() else (
            f"holds none of {', '.join(RUN_FILES)}")
        found = [*run.glob("*/calibration.csv"), *run.glob("*/*/calibration.csv")] if run.is_dir() else []
        runs = [str(p.parent) for p in found]
        hint = f" Did you mean '{runs[0]}'?" if runs else ""
        raise SyntaxError(f"'{run}' is not a yolo-ls run folder: it {what}.{hint}")
    paths = render_run(run)
    LOGGER.info(f"yolo-ls plot: {len(paths)} figures written in {run}")
    for path in paths:
        print(path)
    return paths


EMPTY_EXAMPLES = {"cfg": "my.yaml", "model": "yolo11n-cls.yaml", "data": "digits", "label_smoothing": 0.1,
                  "resume": "path/to/last.pt", "project": "runs/mine", "name": "exp"}


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
    from yolo_ls.trainers import check_resume_checkpoint

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

    from yolo_ls.compat import YAML

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

    from yolo_ls.compat import YAML

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


def run_hook_command(command: str, argv: Sequence[str]) -> int:
    """``yolo-ls doctor | enable-yolo-cli | disable-yolo-cli [bin=DIR]``; returns the exit code."""
    from yolo_ls import yolo_cli

    return yolo_cli.main(command, argv)


def entrypoint(argv: Sequence[str] | None = None) -> int:
    """Console entry point of ``yolo-ls``. Returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    first = argv[0].lstrip("-").lower() if argv else "help"
    if first in ("help", "h"):
        print(help_text())
        return 0
    if first == "version":
        print(version_text())
        return 0
    if first == "cfg":
        print(cfg_text())
        return 0
    try:
        if first == "compare":
            run_compare(argv[1:])
        elif first == "datasets":
            run_datasets(argv[1:])
        elif first == "plot":
            run_plot(argv[1:])
        elif first in HOOK_COMMANDS:
            return run_hook_command(first, argv[1:])
        elif _stock_special(first) or find_mode(argv) in STOCK_MODES:
            run_stock(argv)
        else:
            task, mode, overrides = parse_args(argv)
            run(task, mode, overrides)
    except (SyntaxError, PluginArgumentError, FileExistsError) as e:
        print(f"yolo-ls: error: {e}", file=sys.stderr)
        return 2
    except (FileNotFoundError, RuntimeError, TypeError, ValueError) as e:
        print(f"yolo-ls: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


def main() -> None:  # pragma: no cover - exercised through the console script
    """``python -m yolo_ls`` / console script wrapper."""
    sys.exit(entrypoint())


if __name__ == "__main__":  # pragma: no cover
    main()


__all__ = ("entrypoint", "help_text", "cfg_text", "version_text", "parse_args", "run", "run_stock", "find_mode",
           "check_stock_args")
