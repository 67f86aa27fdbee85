"""Figures drawn in forked child processes while training goes on (:class:`BackgroundPlots`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class BackgroundPlots:
    """Figures drawn in forked child processes while the training process goes on; :meth:`join` waits for them.

    A child is a ``fork`` of the training process: it has matplotlib and the data already, draws one figure with the
    object API and exits with ``os._exit`` (no atexit handlers, no flush of the parent's buffers). Nothing is shared
    back: the figure is a file. :meth:`join` waits for the children and draws in this process every figure whose child
    failed or ran past the timeout, so a figure is never missing because of the background route. Where ``fork`` is
    unavailable or unsafe (not Linux), or ``YOLO_LS_PLOT_FORK=0``, :meth:`submit` draws in this process at once.
    On a 2-core machine the child competes with whatever runs meanwhile; bench/bench_training.py measures the net.
    """

    def __init__(self, timeout: float = 120.0) -> None:
        self.timeout = timeout
        self.jobs: list[tuple[int, Callable, tuple, dict]] = []

    @staticmethod
    def can_fork() -> bool:
        """Whether figures go to a forked child (Linux, and ``YOLO_LS_PLOT_FORK`` is not 0)."""
        import os
        import sys

        return hasattr(os, "fork") and sys.platform.startswith("linux") and os.environ.get("YOLO_LS_PLOT_FORK") != "0"

    def submit(self, fn: Callable, *args: Any, **kwargs: Any) -> None:
        """Draw ``fn(*args, **kwargs)`` in a forked child (or here, at once, when forking is not used)."""
        import os
        import sys

        if not self.can_fork():
            fn(*args, **kwargs)
            return
        self._reap()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        pid = os.fork()
        if pid == 0:  # child: draw, then leave without running anything of the parent's
            code = 1
            try:
                fn(*args, **kwargs)
                code = 0
            except BaseException:  # reported by the parent, which draws the figure itself
                pass
            finally:
                os._exit(code)
        self.jobs.append((pid, fn, args, kwargs))

    def _reap(self) -> None:
        """Forget the children that already drew their figure (so a long ``calib_plots=all`` run keeps no zombies)."""
        import os

        running = []
        for job in self.jobs:
            done, code = os.waitpid(job[0], os.WNOHANG)
            if not done:
                running.append(job)
            elif os.waitstatus_to_exitcode(code) != 0:
                job[1](*job[2], **job[3])  # the child failed: draw it here
        self.jobs = running

    def join(self) -> list[str]:
        """Wait for every child; draw here what a child did not. Returns one line per figure redrawn here."""
        import os
        import signal
        import time

        redrawn = []
        jobs, self.jobs = self.jobs, []
        deadline = time.monotonic() + self.timeout
        for pid, fn, args, kwargs in jobs:
            status = None
            while status is None:
                done, code = os.waitpid(pid, os.WNOHANG)
                if done:
                    status = os.waitstatus_to_exitcode(code)
                elif time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    status = "timeout"
                else:
                    time.sleep(0.005)
            if status != 0:
                redrawn.append(f"{getattr(fn, '__name__', fn)} (child {status})")
                fn(*args, **kwargs)
        return redrawn


def background(trainer: Any) -> BackgroundPlots:
    """The trainer's :class:`BackgroundPlots` (one per trainer, shared by the smoothing and calibration callbacks)."""
    bg = getattr(trainer, "yolo_ls_plots", None)
    if not isinstance(bg, BackgroundPlots):
        bg = BackgroundPlots()
        trainer.yolo_ls_plots = bg
    return bg
