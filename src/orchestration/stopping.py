"""Ctrl-C, SIGTERM and SIGHUP during a run: noted when they arrive, acted on where the run can stop cleanly.

A handler that raises lands wherever the main thread happens to be, for instance inside
`subprocess.Popen.poll()` between taking and releasing that Popen's internal lock. The lock then stays
taken, and every later `wait()` on that worker blocks forever: the run never ends. So while a run is in
progress, a signal is only noted, and it wakes the loop through a pipe (`signal.set_wakeup_fd`); the loop
raises Stopped at the top of an iteration, where it holds no such lock, and so does the final merge
between two copies (the run is then Interrupted, its rows kept for --resume). Once the logs are written, a
signal changes nothing: the run has ended.
"""
from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping
from multiprocessing.connection import wait
from pathlib import Path
from types import TracebackType

from orchestration.errors import Stopped
from orchestration.interrupts import STOP_SIGNALS, ignore_signals
from orchestration.processes import adopt_orphans, children, stop_leftovers


class StopLatch:
    """Within `with`: SIGINT, SIGTERM and SIGHUP are noted (the first one counts), `fd` becomes readable, and
    `check()` raises Stopped for it. The previous handlers and wakeup fd are restored on exit; with
    `ignore_on_exit`, the signals are ignored from then on (the command ends with what it leaves)."""

    def __init__(self, ignore_on_exit: bool = False) -> None:
        self.ignore_on_exit = ignore_on_exit
        self.received = ""  # the first signal's name
        self.fd = self._write_fd = -1
        self._previous: dict[int, object] = {}
        self._previous_wakeup = -1

    def __enter__(self) -> "StopLatch":
        self.fd, self._write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._previous_wakeup = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        self._previous = {sig: signal.signal(sig, self._note) for sig in STOP_SIGNALS}
        return self

    def _note(self, signum: int, frame: object = None) -> None:
        self.received = self.received or signal.Signals(signum).name

    def check(self) -> None:
        """Raises Stopped if a signal has arrived."""
        if self.received:
            raise Stopped(self.received)

    def drain(self) -> None:
        """Empties the wakeup pipe (one byte per signal), so that `fd` is readable only for new ones."""
        try:
            while os.read(self.fd, 512):
                pass
        except BlockingIOError:
            pass

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self.ignore_on_exit:  # instead of the raising handlers: none can land in between
            ignore_signals()
        else:
            for sig, handler in self._previous.items():
                signal.signal(sig, handler)  # type: ignore[arg-type]
        signal.set_wakeup_fd(self._previous_wakeup)
        os.close(self.fd)
        os.close(self._write_fd)


def run_stoppable(argv: list[str], cwd: Path, env: Mapping[str, str]) -> tuple[int, list[int]]:
    """Runs `argv` in a process group of its own; returns its exit code and the pids of the processes it
    left running, which were stopped (see orchestration.processes): none outlives the command, whether it
    ends, or a SIGINT, SIGTERM or SIGHUP from a terminal or a `kill` stops it (then Stopped is raised)."""
    adopt_orphans()
    keep = children()
    with StopLatch() as latch:
        process = subprocess.Popen(argv, cwd=cwd, env=env, process_group=0)
        exited = os.pidfd_open(process.pid)
        try:
            while not latch.received:
                wait([exited, latch.fd])  # the pipe stays readable until the loop sees the signal
                if process.poll() is not None:
                    break
        finally:
            os.close(exited)
            left = stop_leftovers([process.pid], keep)
            process.wait()
    if latch.received:
        raise Stopped(latch.received)
    return process.returncode, left
