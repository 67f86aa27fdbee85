"""What ``yolo-ls enable-yolo-cli`` costs at start-up: ``python -c pass`` and the ``yolo`` command, hook on vs off.

The hook re-points the ``yolo``/``ultralytics`` console scripts and installs nothing that runs at interpreter start
(no ``.pth``, no ``sitecustomize``), so ``python -c pass`` cannot change; this script measures it anyway, and measures
what the re-pointed ``yolo`` itself pays (importing yolo-ls' dispatcher before handing a stock command over).

It works on copies of this environment's console scripts in a temporary folder, never on the real ones. Every timing is
a fresh process; the states are interleaved (the order rotates every repetition) and the hook is switched between
timings, outside the clock. An A/A row (the reference timed twice) shows the noise of the machine.

    .venv/bin/python bench/bench_yolo_cli_hook.py [--reps 30] [--yolo-reps 7] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _timing import environment, ratio_table, report  # noqa: E402

from yolo_ls.cli.yolo_hook import disable, enable  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.05  # python -c pass with the hook on, over off: "not measurable" = within the A/A noise, and below this


def _time(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def measure(states: dict[str, tuple[bool, list[str]]], scripts: Path, reps: int, warmup: int,
            env: dict[str, str]) -> dict[str, list[float]]:
    """Time each (hook on?, command) state ``reps`` times in rotating order, switching the hook outside the clock."""
    names = list(states)
    samples: dict[str, list[float]] = {n: [] for n in names}
    for rep in range(warmup + reps):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            hook_on, cmd = states[name]
            (enable if hook_on else disable)(scripts)
            dt = _time(cmd, env)
            if rep >= warmup:
                samples[name].append(dt)
    disable(scripts)
    return samples


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=30, help="repetitions of 'python -c pass' per state")
    p.add_argument("--yolo-reps", type=int, default=7, help="repetitions of 'yolo version' / 'yolo settings' per state")
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args()

    env = {**os.environ, "PYTHONPATH": str(ROOT), "YOLO_OFFLINE": "1"}
    results: dict = {"environment": environment("cpu")}
    misses: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        scripts = Path(tmp) / "bin"
        scripts.mkdir()
        for name in ("yolo", "ultralytics"):
            shutil.copy2(Path(sys.executable).parent / name, scripts / name)
        env["YOLO_CONFIG_DIR"] = str(Path(tmp) / "cfg")
        subprocess.run([str(scripts / "yolo"), "version"], env=env, capture_output=True, check=True)  # settings file

        py = [sys.executable, "-c", "pass"]
        samples = measure({"hook off": (False, py), "hook on": (True, py), "hook off (A/A)": (False, py)},
                          scripts, a.reps, 3, env)
        times = {k: statistics.median(v) for k, v in samples.items()}
        print(ratio_table(times, "hook off", "1) python -c pass (interpreter start)", samples))
        results["python_c_pass"] = {"median_s": times, "samples": samples}
        ratio = times["hook on"] / times["hook off"]
        if ratio > TARGET:
            misses.append(f"python -c pass hook on/off {ratio:.3f} > {TARGET}")

        for label, cmd in (("yolo version", ["version"]), ("yolo settings", ["settings"])):
            y = [str(scripts / "yolo"), *cmd]
            ys = measure({"stock": (False, y), "hooked": (True, y), "stock (A/A)": (False, y)}, scripts,
                         a.yolo_reps, 1, env)
            yt = {k: statistics.median(v) for k, v in ys.items()}
            print(ratio_table(yt, "stock", f"2) {label} (the re-pointed command handing a stock command over)", ys))
            results[label.replace(" ", "_")] = {"median_s": yt, "samples": ys}
    print("note: shared machine; absolute times are for orientation only, read the ratios against the A/A row")
    report(results, misses, a.json)


if __name__ == "__main__":
    main()
