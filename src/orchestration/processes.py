"""No process a run starts outlives it: process groups stopped, and orphans adopted, then stopped.

A command node's bash, or a worker's run(), may start processes and return without waiting for them
(`sleep 60 &`, `subprocess.Popen(...)`). They stay in the starter's process group, unless they left it
(setsid, a daemon). So the toolkit stops both: the groups it started (`stop_groups`), and, having made
itself the child subreaper (`adopt_orphans`, Linux), every orphan of its descendants, which the kernel
then hands to it rather than to PID 1 (`stop_adopted`). Stopping is SIGTERM, then SIGKILL after a
grace period, then a wait until nothing of it runs: SIGKILL is certain, but on a busy machine the kernel
may take a moment to end the process. A leaf module: the standard library only.
"""
from __future__ import annotations

import ctypes
import os
import signal
import time
from collections.abc import Callable, Collection
from pathlib import Path

GRACE_SECONDS = 5.0  # between SIGTERM and SIGKILL
KILLED_WAIT_SECONDS = 30.0  # the most to wait for killed processes to be gone
_PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>
_POLL_SECONDS = 0.02


def adopt_orphans() -> bool:
    """Makes this process the child subreaper of its descendants (prctl); False where that is not
    possible (then orphans go to PID 1, and only their process groups are stopped)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def processes() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent pid, process group, state) of every process (a snapshot of /proc)."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, parent, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError, IndexError):  # it exited while being read
            continue
        found[int(stat.parent.name)] = (int(parent), int(group), state)
    return found


def children() -> set[int]:
    """The pids whose parent is this process, zombies included."""
    me = os.getpid()
    return {pid for pid, (parent, _, _) in processes().items() if parent == me}


def running_in(groups: Collection[int]) -> dict[int, int]:
    """pid -> process group of the processes of `groups` that still run. Zombies do not count: an
    orphan's is only reaped by its adopter, which in a container may be a PID 1 that never does it."""
    return {pid: group for pid, (_, group, state) in processes().items() if group in groups and state != "Z"}


def _signal_group(group: int, number: int) -> None:
    try:
        os.killpg(group, number)
    except (ProcessLookupError, PermissionError):  # none left (or the pid now leads someone else's group)
        pass


def _wait(done: Callable[[], bool], seconds: float) -> bool:
    """Polls `done` until it is true (True) or `seconds` have passed (False)."""
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_SECONDS)
    return True


def stop_groups(groups: Collection[int], grace: float = GRACE_SECONDS) -> list[int]:
    """Stops every process group in `groups` together (SIGTERM; SIGKILL after `grace` s, one grace for
    all) and returns once none of them runs: the pids that were running."""
    running = running_in(groups)
    live = set(running.values())  # only groups with a process: a group id no process holds may be reused
    for group in live:
        _signal_group(group, signal.SIGTERM)
    if live and not _wait(lambda: not running_in(live), grace):
        for group in live:
            _signal_group(group, signal.SIGKILL)
        _wait(lambda: not running_in(live), KILLED_WAIT_SECONDS)
    return list(running)


def kill_group(group: int) -> None:
    """SIGKILL to process group `group`, at once (a worker past its timeout, with what its run() started)."""
    _signal_group(group, signal.SIGKILL)


def stop_adopted(keep: Collection[int], grace: float = GRACE_SECONDS) -> list[int]:
    """Stops this process's children that are not in `keep` (orphans it adopted, see adopt_orphans) with
    all their descendants, and reaps them; returns the pids it stopped. A killed orphan's own children
    are adopted in turn, so it goes on until no such child is left. The first round asks (SIGTERM, then
    SIGKILL after `grace`); later ones kill at once: a process that forks an heir when asked to stop
    must not keep a line of heirs alive."""
    stopped: list[int] = []
    for round_number in range(1000):  # each round is a generation deeper; a fork bomb must not hold us
        table = processes()
        me = os.getpid()
        strays = {pid for pid, (parent, _, _) in table.items() if parent == me and pid not in keep}
        if not strays:
            break
        tree, frontier = set(strays), set(strays)
        while frontier:
            frontier = {pid for pid, (parent, _, _) in table.items() if parent in frontier} - tree
            tree |= frontier
        running = [pid for pid in tree if table[pid][2] != "Z"]
        stopped += running

        def settled() -> bool:
            _reap(strays)
            return not any_running(running)

        if round_number == 0:
            _signal_all(running, signal.SIGTERM)
            if _wait(settled, grace):
                continue
        _signal_all(running, signal.SIGKILL)
        _wait(settled, KILLED_WAIT_SECONDS)
    return stopped


def stop_leftovers(groups: Collection[int], keep: Collection[int], grace: float = GRACE_SECONDS) -> list[int]:
    """Stops what is left of process groups `groups` and every adopted orphan not in `keep` (children
    this process had before); the pids that were running."""
    left = stop_groups(groups, grace)
    return left + [pid for pid in stop_adopted(keep, grace) if pid not in left]


def _signal_all(pids: Collection[int], number: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, number)
        except (ProcessLookupError, PermissionError):
            pass


def any_running(pids: Collection[int]) -> bool:
    """Whether any of `pids` runs (a zombie, ended and not yet reaped, does not)."""
    table = processes()
    return any(pid in table and table[pid][2] != "Z" for pid in pids)


def _reap(pids: Collection[int]) -> None:
    """Reaps those of `pids` (children of this process) that have exited."""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # reaped already
            pass
