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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from yolo_ls._version import __version__
from yolo_ls.cli.argv import (
    MODES,
    SPECIAL,
    _empty_value_error,
    check_stock_args,
    find_mode,
    guarded,
    parse_args,
    precheck,
    run,
    run_stock,
    run_yolo_command,
)
from yolo_ls.core.args import ARGS, DEFAULTS, TASKS

# The yolo-ls commands for the stock-yolo hook.
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
        "    yolo-ls datasets digits out=data/digits-noisy noise=0.2 noise_kind=symmetric seed=0\n"
        "    yolo-ls calibrate model=runs/classify/train/weights/best.pt    (writes best-calibrated.pt)\n"
        "    yolo-ls compare --help    (likewise calibrate, plot, datasets --help: a command's own arguments)\n\n"
        f"Plugin arguments (defaults):\n{rows}\n\n"
        "Ultralytics arguments: https://docs.ultralytics.com/usage/cfg/"
    )


# The arguments compare takes besides the train and plugin arguments (yolo_ls.compare.runner.COMPARE_KEYS).
COMPARE_HELP = {
    "seeds": "seeds to train each variant with, i.e. seeds=0,1,2 (default: the train 'seed')",
    "backend": "local (one run after another) or ray (parallel Ray tasks)",
    "cpu_per_variant": "backend=ray: CPUs per run (default 1)",
    "gpu_per_variant": "backend=ray: GPUs per run (default 0)",
    "ray_address": "backend=ray: the Ray cluster to join (default: a local one)",
}

# calibrate's own arguments (yolo_ls.engine.calibrate.calibrate; kept here so help and the key check need no torch).
# Every other key is an Ultralytics val argument: imgsz, batch, device, workers, ...
CALIBRATE_HELP = {
    "model": "the trained .pt checkpoint to calibrate (required)",
    "data": "the dataset (default: the one the checkpoint was trained on)",
    "method": "classify: temperature (default), vector, matrix; detect/segment/pose/obb: temperature, platt",
    "split": "the split to cross-fit when fit_split/score_split are not given (default val)",
    "folds": "cross-fit folds by image: fit on the others, score the held-out one (default 5)",
    "fit_split": "fit on this split instead of cross-fitting (with score_split)",
    "score_split": "score on this split (with fit_split; never the same images)",
    "target_precision": "detection: the lowest confidence threshold reaching this held-out precision, i.e. 0.9",
    "calib_conf": "detection: fit and score the boxes the raw model keeps at this confidence (default 0.25)",
    "calib_bins": "equal-width confidence bins for ECE and the diagram (default 15)",
    "seed": "the fold assignment's seed (default 0)",
    "plots": "write the before/after reliability diagram (default True)",
}


def command_help(command: str) -> str:
    """``yolo-ls COMMAND --help``: the usage of one special command and its own arguments."""
    if command == "compare":
        rows = "\n".join(f"    {k.ljust(16)} {v}" for k, v in COMPARE_HELP.items())
        return ("usage: yolo-ls compare model=... data=... label_smoothing=0,0.05,0.1 [KEY=VALUE ...]\n\n"
                "Trains every variant of the sweep (a comma list in label_smoothing or in any plugin argument makes "
                "variants), once per seed, and writes report.md, report.csv, reliability.png and curves.png.\n\n"
                f"compare's own arguments:\n{rows}\n\n"
                "Every train argument (epochs, imgsz, project, name, ...) and plugin argument is passed to each run; "
                "see 'yolo-ls help'.")
    if command == "calibrate":
        rows = "\n".join(f"    {k.ljust(17)} {v}" for k, v in CALIBRATE_HELP.items())
        return ("usage: yolo-ls calibrate model=RUN/weights/best.pt [data=...] [method=temperature] [KEY=VALUE ...]\n\n"
                "Fits a post-hoc calibration on images the model never trained on (the val split, cross-fitted by "
                "image), folds it into the weights and writes <stem>-calibrated.pt next to the checkpoint (a stock "
                "Ultralytics checkpoint: predict, val and every export give calibrated confidences), plus "
                "calibration/calibrate.json and a before/after reliability diagram.\n\n"
                f"calibrate's own arguments:\n{rows}\n\n"
                "Ultralytics val arguments (imgsz, batch, device, workers, ...) are passed to the validation.")
    if command == "plot":
        return ("usage: yolo-ls plot RUN\n\nRedraws every figure of a yolo-ls run folder from its files "
                "(calibration/epochs.json, final.json, calibration.csv, results.csv): per-epoch reliability diagrams, "
                "the best.pt diagram, the calibration curves and the ε plot. Nothing is trained or validated.")
    if command == "datasets":
        rows = "\n".join(f"    {k}={v}" for k, v in DATASET_ARGS.items())
        return f"{DATASET_USAGE}\n\nArguments (defaults):\n{rows}"
    return help_text()


def cfg_text() -> str:
    """``yolo-ls cfg``: the plugin defaults as YAML."""
    import yaml

    return yaml.safe_dump(dict(DEFAULTS), sort_keys=False).rstrip()


def version_text() -> str:
    """``yolo-ls version``: versions of yolo-ls, Ultralytics and torch."""
    from yolo_ls.engine.compat import version_text as text

    return text()


def run_compare(argv: Sequence[str]) -> Any:
    """``yolo-ls compare key=value ...``: train every variant of the sweep (per seed) and write the report."""
    import errno

    from yolo_ls.compare.runner import COMPARE_KEYS, compare

    precheck(argv, extra=COMPARE_KEYS)  # a mistyped key or dataset is answered before Ultralytics loads
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


def _int_arg(key: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SyntaxError(f"'{key}={value}' is an invalid value. Valid '{key}' values are integers >= {minimum}.")
    return value


def _check_writable(key: str, path: Path) -> None:
    """Refuse an output folder that cannot be written, before anything is built."""
    from yolo_ls.core.files import unwritable_reason

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


def run_calibrate(argv: Sequence[str]) -> dict[str, Any]:
    """``yolo-ls calibrate model=best.pt [data=...] [method=...] [KEY=VALUE ...]``: fold a post-hoc calibration into
    the checkpoint's weights."""
    precheck(argv, extra=tuple(CALIBRATE_HELP))
    if not any(a.split("=", 1)[0].strip() == "model" for a in argv):
        raise SyntaxError("'calibrate' needs 'model=...', i.e. 'yolo-ls calibrate model=runs/classify/train/weights/"
                          "best.pt'")
    from ultralytics.cfg import merge_equals_args, parse_key_value_pair

    args: dict[str, Any] = {}
    for a in merge_equals_args(list(argv)):
        if "=" not in a:
            raise SyntaxError(f"'calibrate' takes key=value arguments only, not '{a}': i.e. 'yolo-ls calibrate "
                              "model=runs/classify/train/weights/best.pt'")
        k, v = parse_key_value_pair(a)
        args[k] = v
    from yolo_ls.engine.calibrate import calibrate

    return calibrate(args.pop("model"), **args)


def run_plot(argv: Sequence[str]) -> list[Path]:
    """``yolo-ls plot RUN``: draw every figure of a run folder from its files (per-epoch diagrams included).

    Raises:
        SyntaxError: Without exactly one RUN, or when RUN is not a folder a yolo-ls training wrote.
    """
    from ultralytics.utils import LOGGER

    from yolo_ls.plots.run_folder import RUN_FILES, is_run_folder, render_run

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


def run_hook_command(command: str, argv: Sequence[str]) -> int:
    """``yolo-ls doctor | enable-yolo-cli | disable-yolo-cli [bin=DIR]``; returns the exit code."""
    from yolo_ls.cli import yolo_hook as yolo_cli

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
    commands = {"calibrate": run_calibrate, "compare": run_compare, "datasets": run_datasets, "plot": run_plot}
    if first in commands and any(a in ("--help", "-h", "help") for a in argv[1:]):
        print(command_help(first))
        return 0
    if first in commands:
        return guarded(commands[first], argv[1:])
    if first in HOOK_COMMANDS:
        return guarded(run_hook_command, first, argv[1:], exit_code=True)
    return run_yolo_command(argv)


def main() -> None:  # pragma: no cover - exercised through the console script
    """``python -m yolo_ls`` / console script wrapper."""
    sys.exit(entrypoint())


if __name__ == "__main__":  # pragma: no cover
    main()


__all__ = ("entrypoint", "help_text", "cfg_text", "version_text", "parse_args", "run", "run_stock", "find_mode",
           "check_stock_args")
