"""Ctrl-C and SIGTERM during a run: noted when they arrive, acted on where the run can stop cleanly.

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
import time
from collections.abc import Mapping
from multiprocessing.connection import wait
from pathlib import Path
from types import TracebackType

from orchestration.errors import Stopped
from orchestration.interrupts import STOP_SIGNALS, ignore_signals

GROUP_STOP_GRACE_SECONDS = 5.0


class StopLatch:
    """Within `with`: SIGINT/SIGTERM are noted (the first one counts), `fd` becomes readable, and
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


def run_stoppable(argv: list[str], cwd: Path, env: Mapping[str, str]) -> int:
    """Runs `argv` in a process group of its own and returns its exit code. On SIGINT or SIGTERM the
    whole group is stopped (`stop_group`) and Stopped is raised: a command's children (bash forks them)
    never outlive the command that started them, whether the signal came from a terminal or a `kill`."""
    with StopLatch() as latch:
        process = subprocess.Popen(argv, cwd=cwd, env=env, process_group=0)
        exited = os.pidfd_open(process.pid)
        try:
            while not latch.received:
                wait([exited, latch.fd])  # the pipe stays readable until the loop sees the signal
                if process.poll() is not None:
                    return process.returncode
            stop_group(process)
        finally:
            os.close(exited)
    raise Stopped(latch.received)


def stop_group(process: subprocess.Popen, grace: float = GROUP_STOP_GRACE_SECONDS) -> None:
    """SIGTERM to the process group led by `process`; SIGKILL to whatever is left after `grace` s."""
    deadline = time.monotonic() + grace
    _signal_group(process.pid, signal.SIGTERM)
    while time.monotonic() < deadline:
        process.poll()  # reaps the leader
        if not _group_running(process.pid):
            break
        time.sleep(0.02)
    _signal_group(process.pid, signal.SIGKILL)
    process.wait()


def _signal_group(group: int, number: int) -> None:
    try:
        os.killpg(group, number)
    except ProcessLookupError:  # none left
        pass


def _group_running(group: int) -> bool:
    """Whether a process of the group still runs. Zombies do not count: an orphan's is only reaped by
    PID 1, which in a container may never do it."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _, process_group = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):  # it exited while being read
            continue
        if int(process_group) == group and state != "Z":
            return True
    return False
