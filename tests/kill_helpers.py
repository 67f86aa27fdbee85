"""Real SIGKILLs of tiny trainings for the kill/resume tests: the fork server, kill hooks, resume-until-done.

Each training is ``yolo-ls ARGV...`` (the CLI's own ``entrypoint``), or Python code for the Python API, run as a
forked child of :func:`serve`, a server process that imported yolo-ls, Ultralytics and torch once (``python -m
tests.kill_helpers serve``; without ``serve`` the module is the CLI itself). A child is killed for real, by
``os.killpg(pid, SIGKILL)`` after a delay (:meth:`ForkServer.run`), or by itself at a chosen point of the N-th matching
file write (``kill="POINT:N"``, ``$YOLO_LS_TEST_KILL`` for the plain CLI form). The hooks replace nothing but the
``os`` module seen by the module doing the write, so the real write code runs up to the kill:

    ``last_replaced:N``  right after the N-th ``os.replace`` onto ``weights/last.pt`` (N = 1-based epoch)
    ``last_torn:N``      halfway through writing the N-th ``last.pt`` temp file (half the bytes written, no replace)
    ``best_torn:N``      halfway through writing the N-th ``best.pt`` temp file
    ``calib_csv:N``      before the N-th ``os.replace`` onto ``calibration.csv`` (temp file complete, not renamed)
    ``epochs_json:N``    before the N-th ``os.replace`` onto ``calibration/epochs.json``
    ``strip_last``       before ``strip_optimizer``'s atomic rewrite of ``last.pt`` at the end of training
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

from tests.helpers import ROOT

KILL_ENV = "YOLO_LS_TEST_KILL"
EPOCHS = 3
# The run every kill test trains: 3 tiny epochs, ε linear 0.2 -> 0 so every epoch has its own ε.
RUN_ARGS: dict[str, Any] = dict(model="yolo11n-cls.yaml", imgsz=32, epochs=EPOCHS, batch=64, fraction=0.1, workers=0,
                                seed=0, deterministic=True, plots=False, device="cpu", amp=False, exist_ok=True,
                                label_smoothing=0.2, ls_schedule="linear", ls_final=0.0)
EXPECTED_EPS = [0.2, 0.1, 0.0]  # linear 0.2 -> 0 over epochs 0..2
FINISHED = "is finished, nothing to resume"  # Ultralytics' answer to resuming a run whose epochs are all trained


def train_argv(data: Path, project: Path, name: str, **extra: Any) -> list[str]:
    """``train key=value ...`` for the kill-test run into ``project/name``."""
    args = {**RUN_ARGS, "data": str(data), "project": str(project), "name": name, **extra}
    return ["train", *(f"{k}={v}" for k, v in args.items())]


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment of a training subprocess: the repo first on the path, one thread, no hook unless given."""
    env = {k: v for k, v in os.environ.items() if k != KILL_ENV}
    env.update(PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
               MPLBACKEND="Agg", YOLO_OFFLINE="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", **extra)
    return env


def loadable(path: Path) -> bool:
    """Whether a checkpoint loads completely (a torn file does not)."""
    from ultralytics.utils.patches import torch_load

    try:
        ckpt = torch_load(str(path), map_location="cpu", weights_only=False)
    except Exception:
        return False
    return isinstance(ckpt, dict) and (ckpt.get("ema") or ckpt.get("model")) is not None  # stripped: "model" only


def complete(server: ForkServer, run: Path, argv: list[str]) -> str:
    """What a user does after a kill, until the run is complete: ``yolo-ls train resume=<run>/weights/last.pt`` when
    a checkpoint exists, else the same training again from scratch. Returns what was done.

    A checkpoint of the last epoch (killed after it, before or during the final optimizer strip) is answered by
    Ultralytics with "training ... is finished, nothing to resume": every epoch is trained, so the run is complete.
    """
    last = run / "weights" / "last.pt"
    if last.exists():
        assert loadable(last), f"{last} is torn: the run cannot be resumed"
        rc, _, log = server.run(["train", f"resume={last}"])
        if rc != 0 and FINISHED in log.read_text():
            return "resume: finished"
        done = "resume"
    else:
        rc, _, log = server.run(argv)
        done = "retrain"
    assert rc == 0, (done, log.read_text()[-4000:])
    return done


def run_record(run: Path) -> dict[str, Any]:
    """The per-epoch record of a run: results.csv, calibration.csv and calibration/epochs.json, as plain values."""
    import pandas as pd

    def csv(name: str) -> Any:
        df = pd.read_csv(run / name)
        df.columns = [c.strip() for c in df.columns]
        return df

    return {"results": csv("results.csv"), "calibration": csv("calibration.csv"),
            "epochs": json.loads((run / "calibration" / "epochs.json").read_text())["epochs"]}


def leftover_temp_files(run: Path) -> list[Path]:
    """Temporary files a write left behind anywhere in the run folder."""
    return sorted(p for p in run.rglob("*") if p.name.endswith(".tmp"))


# ------------------------------------------------------------------------------------------------------- the hooks
def _die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(60)  # never reached


class _OsProxy:
    """The ``os`` module, with ``replace`` and ``fdopen`` routed through the hook."""

    def __init__(self, hook: _Hook) -> None:
        self._hook = hook

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def replace(self, src: Any, dst: Any) -> None:
        self._hook.before_replace(Path(dst))
        os.replace(src, dst)
        self._hook.after_replace(Path(dst))

    def fdopen(self, fd: int, *args: Any, **kwargs: Any) -> Any:
        f = os.fdopen(fd, *args, **kwargs)
        hook = self._hook
        name = Path(os.readlink(f"/proc/self/fd/{fd}")).name if os.path.exists(f"/proc/self/fd/{fd}") else ""

        class Torn:  # the temp file's ``write``: half the bytes, flushed to disk, then SIGKILL
            def __enter__(self) -> Any:
                return self

            def __exit__(self, *exc: Any) -> None:
                f.close()

            def write(self, data: bytes) -> int:
                if hook.tears(name):
                    f.write(data[: len(data) // 2])
                    f.flush()
                    os.fsync(f.fileno())
                    _die()
                return f.write(data)

            def __getattr__(self, attr: str) -> Any:
                return getattr(f, attr)

        return Torn()


class _Hook:
    def __init__(self, spec: str) -> None:
        point, _, n = spec.partition(":")
        self.point, self.n = point, int(n or 1)
        self.counts: dict[str, int] = {}

    def _count(self, key: str) -> int:
        self.counts[key] = self.counts.get(key, 0) + 1
        return self.counts[key]

    def tears(self, tmp_name: str) -> bool:
        for point, target in (("last_torn", "last.pt"), ("best_torn", "best.pt")):
            if self.point == point and tmp_name.startswith(f".{target}.") and self._count(point) == self.n:
                return True
        return False

    def before_replace(self, dst: Path) -> None:
        for point, target in (("calib_csv", "calibration.csv"), ("epochs_json", "epochs.json")):
            if self.point == point and dst.name == target and self._count(point) == self.n:
                _die()
        if self.point == "strip_last" and dst.name == "last.pt" and self._count(self.point) == EPOCHS + 1:
            _die()  # the epochs' writes are 1..EPOCHS; the final strip's is the next one

    def after_replace(self, dst: Path) -> None:
        if self.point == "last_replaced" and dst.name == "last.pt" and self._count(self.point) == self.n:
            _die()


def install_kill_hook(spec: str) -> None:
    """Route the writes of the checkpoints, calibration.csv and epochs.json through a hook that kills at ``spec``."""
    import yolo_ls.core.epoch_bins
    import yolo_ls.core.files
    import yolo_ls.engine.checkpoints

    hook = _Hook(spec)
    known = ("last_replaced", "last_torn", "best_torn", "calib_csv", "epochs_json", "strip_last")
    if hook.point not in known:
        raise SystemExit(f"{KILL_ENV}={spec!r}: the point must be one of {known}")
    proxy = _OsProxy(hook)
    for module in (yolo_ls.engine.checkpoints, yolo_ls.core.files, yolo_ls.core.epoch_bins):
        module.os = proxy  # type: ignore[attr-defined]


def main(argv: list[str]) -> int:
    """``yolo-ls ARGV``, with the kill hook of ``$YOLO_LS_TEST_KILL`` installed first; ``serve``: the fork server."""
    if argv == ["serve"]:
        return serve()
    spec = os.environ.get(KILL_ENV)
    if spec:
        install_kill_hook(spec)
    from yolo_ls.cli.main import entrypoint

    return entrypoint(argv)


# --------------------------------------------------------------------------------------------------- fork server
def warm_imports() -> None:
    """Import, once in the server, what each training otherwise imports on first use (about 3 s a child on the CI
    CPU): ``torch.use_deterministic_algorithms`` pulls in torch._dynamo/_inductor, the integration callbacks Ray and
    MLflow, the final figures matplotlib. Imports only: no torch operation, no thread, no Ray or MLflow session."""
    import importlib

    import torch._dynamo  # noqa: F401
    import torch._inductor  # noqa: F401
    from matplotlib.figure import Figure  # noqa: F401
    from matplotlib.ticker import MaxNLocator  # noqa: F401

    import yolo_ls.core.epoch_bins  # noqa: F401
    import yolo_ls.plots  # noqa: F401

    for name in ("clearml", "comet", "dvc", "mlflow", "neptune", "raytune", "tensorboard", "wb", "platform"):
        try:
            importlib.import_module(f"ultralytics.utils.callbacks.{name}")
        except Exception:  # not in this Ultralytics release: the child will not import it either
            pass


def serve() -> NoReturn:
    """Import yolo-ls/Ultralytics/torch once, then for each JSON request line on stdin (``argv`` or ``code``,
    ``kill``, ``log``) fork a child that runs ``yolo-ls ARGV`` (or exec's ``code``) in its own session, answer
    ``{"pid"}``, and once it ends ``{"returncode"}`` (negative: the signal that ended it, as :mod:`subprocess` says
    it).

    Each child is a separate process killed for real; only the interpreter start and the imports (about 20 s on
    the shared CI CPU, most of a tiny run) are paid once. No torch operation runs in the server before a fork.
    """
    import traceback

    answers = os.fdopen(os.dup(1), "w")  # the protocol's own channel: what the imports print goes to stderr
    os.dup2(2, 1)
    import yolo_ls.cli.main  # noqa: F401 - the imports every child inherits
    import yolo_ls.model  # noqa: F401

    warm_imports()

    for line in sys.stdin:
        req = json.loads(line)
        pid = os.fork()
        if pid == 0:  # the child: one yolo-ls command, then exit without running the server's cleanup
            rc = 1
            try:
                answers.close()
                os.setsid()
                fd = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                if req.get("kill"):
                    install_kill_hook(req["kill"])
                if req.get("code") is not None:  # Python code (the Python API), run as a script's __main__
                    exec(compile(req["code"], "<request>", "exec"), {"__name__": "__main__"})
                    rc = 0
                else:
                    from yolo_ls.cli import entrypoint

                    rc = entrypoint(req["argv"])
            except SystemExit as e:
                rc = e.code if isinstance(e.code, int) else 1
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(rc)
        print(json.dumps({"pid": pid}), file=answers, flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}), file=answers, flush=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # nothing to finalise: the interpreter's teardown of everything imported takes seconds


class ForkServer:
    """Client of :func:`serve`: run yolo-ls commands as forked children, optionally SIGKILLed after a delay."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._stderr = open(self.log_dir / "server.log", "ab")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.kill_helpers", "serve"], cwd=ROOT, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                     env=subprocess_env(YOLO_CONFIG_DIR=str(self.log_dir / "config")))
        self.count = 0

    def _read(self, timeout: float) -> dict[str, Any] | None:
        import select

        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], max(timeout, 0))
        if not ready:
            return None
        line = self.proc.stdout.readline()
        assert line, f"the fork server died (rc {self.proc.poll()})"
        return json.loads(line)

    def run(self, argv: list[str] | None = None, kill: str | None = None, kill_after: float | None = None,
            timeout: float = 900, code: str | None = None) -> tuple[int, float, Path]:
        """Run one command (``yolo-ls ARGV``, or the Python ``code`` as a script) in a forked child; SIGKILL it
        ``kill_after`` seconds after its start when still running.

        Returns:
            Its return code (``-9``: killed), its wall time in seconds, and its log file.
        """
        assert self.proc.stdin is not None
        self.count += 1
        log = self.log_dir / f"{self.count:03d}.log"
        assert (argv is None) != (code is None), "argv or code, not both"
        self.proc.stdin.write(json.dumps({"argv": argv, "code": code, "kill": kill, "log": str(log)}) + "\n")
        self.proc.stdin.flush()
        pid = self._read(60)["pid"]  # type: ignore[index]
        t0 = time.perf_counter()
        answer = self._read(kill_after if kill_after is not None else timeout)
        if answer is None:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:  # it ended meanwhile: its answer is on the way
                pass
            answer = self._read(60)
            assert answer is not None, "a SIGKILLed child did not end"
            if kill_after is None:
                raise AssertionError(f"{argv or code} ran past {timeout} s: {log.read_text()[-3000:]}")
        return int(answer["returncode"]), time.perf_counter() - t0, log

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)
        self._stderr.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
