"""The worker processes of a run: the runner's executor (see `executor`).

Each worker is a fresh interpreter, as on Azure ML, so nothing of the parent leaks into the entry script.
It leads its own process group, talks over a pipe and is watched through a pidfd; while its run()
executes, its mini-batch and start time sit in a shared slot (state.SlotTable), for the timeouts.
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from orchestration.processes import kill_group
from orchestration.prs import warm
from orchestration.prs.backlog import Lease
from orchestration.prs.config import RunConfig
from orchestration.prs.container import Containers
from orchestration.prs.executor import Events, Executor, Exited, WorkerHandle
from orchestration.prs.protocol import STOP, lease
from orchestration.prs.state import SlotTable, StatePaths
from orchestration.prs.worker import WorkerSpec

log = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 5.0


@dataclass
class ProcessHandle(WorkerHandle):
    spec: WorkerSpec
    process: subprocess.Popen
    conn: Connection
    sentinel: int  # a pidfd: readable once the process has exited


class Pool(Executor):
    def __init__(self, config: RunConfig, state: StatePaths, logs: Path, slots: SlotTable, first_part: int):
        super().__init__(config, first_part)
        self.state, self.logs, self.slots = state, logs, slots
        self.warm = warm.started()  # the workers the command line started ahead, if it did
        self.containers = Containers.for_run(config) if config.container else None

    def start(self) -> None:
        """A worker in every slot; the warm workers left over are let go."""
        super().start()
        self.warm.discard()

    def launch(self, slot: int, node: int, agent_name: str, part: int) -> ProcessHandle:
        config = self.config
        spec = WorkerSpec(config, self.state, self.logs, node, agent_name, part, slot)
        self.slots.reset(slot)
        if self.containers:
            process, ours = self.containers.start_worker()
        else:
            process, ours = self.warm.adopt(config.python) or warm.start_worker(config.python)
        parent_conn = Connection(ours.detach())
        try:
            parent_conn.send(spec)
        except OSError:  # it died before its spec (killed while it waited): the loop sees it exit
            pass
        self.groups.add(process.pid)  # a worker leads its own process group (warm.start_worker)
        return ProcessHandle(node, agent_name, spec=spec, process=process, conn=parent_conn,
                             sentinel=os.pidfd_open(process.pid))

    def give(self, handle: WorkerHandle, work: Lease) -> None:
        handle.lease = work
        process_of(handle).conn.send(lease(work.first, work.count, work.attempt))

    def messages(self, handle: WorkerHandle) -> list[tuple[Any, ...]]:
        conn, received = process_of(handle).conn, []
        try:
            while conn.poll():
                received.append(conn.recv())
        except (EOFError, OSError):
            pass
        return received

    def wait(self, timeout: float, wake: int) -> Events:
        """Each live worker's connection and exit sentinel (a pidfd) are waited on, with `wake`."""
        waitables: dict[Any, int] = {}
        for slot, handle in enumerate(self.workers):
            if handle is not None:
                waitables[process_of(handle).conn] = slot
                waitables[process_of(handle).sentinel] = slot
        events = Events()
        for ready in wait([*waitables, wake], timeout=timeout):
            if ready == wake:
                events.woken = True
                continue
            slot = waitables[ready]
            handle = self.workers[slot]
            if handle is None or slot in events.talked or any(e.slot == slot for e in events.exited):
                continue
            process = process_of(handle).process
            if process.poll() is None:
                events.talked.append(slot)
                continue
            code = process.returncode
            how = f"signal {signal.Signals(-code).name}" if code < 0 else f"code {code}"
            events.exited.append(Exited(slot, how, *self.slots.read(slot)))
        return events

    def now(self) -> float:
        return time.monotonic()

    def overdue(self, limit: float) -> tuple[list[tuple[int, int, float]], float]:
        now, late, next_deadline = time.monotonic(), [], 1.0
        for slot, handle in enumerate(self.workers):
            if handle is None:
                continue
            batch, started = self.slots.read(slot)
            if batch < 0:
                continue
            if now - started >= limit:
                late.append((slot, batch, started))
            else:
                next_deadline = min(next_deadline, started + limit - now)
        return late, max(next_deadline, 0.01)

    def kill(self, handle: WorkerHandle) -> None:
        self.stop_group(process_of(handle).process.pid)

    def reap(self, slot: int) -> None:
        handle = process_of(self.workers[slot])
        handle.process.wait()
        handle.conn.close()
        os.close(handle.sentinel)
        self.workers[slot] = None
        if self.containers:
            self.containers.remove(handle.process.pid)

    def release(self, graceful: bool) -> None:
        for handle in self:
            if graceful:
                try:
                    process_of(handle).conn.send((STOP,))
                except OSError:
                    pass
            else:
                self.stop_group(process_of(handle).process.pid)

    def join(self) -> None:
        """Waits for every worker to exit (killing those past STOP_GRACE_SECONDS): no orphan is left."""
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        handles = [process_of(handle) for handle in self]
        # On the pidfds: Popen.wait(timeout) polls with sleeps, which added tens of ms to every run's end.
        running = {handle.sentinel for handle in handles}
        while running and (left := deadline - time.monotonic()) > 0:
            running.difference_update(wait(list(running), timeout=left))
        for handle in handles:
            if handle.sentinel in running:
                self.stop_group(handle.process.pid)
            handle.process.wait()
            handle.conn.close()
            os.close(handle.sentinel)
        self.workers = [None] * len(self.workers)
        self.warm.reap(deadline)  # the ones let go at the start, on the same grace
        if self.containers:
            self.containers.close()

    def stop_group(self, pid: int) -> None:
        """Kills a worker's process group; a worker's container goes first, so that it writes no more."""
        if self.containers:
            self.containers.remove(pid)
        kill_group(pid)


def process_of(handle: WorkerHandle | None) -> ProcessHandle:
    assert isinstance(handle, ProcessHandle)
    return handle
