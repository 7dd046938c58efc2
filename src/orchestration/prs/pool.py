"""The worker processes of a run: start, talk to, time out, lose, release and reap them.

One worker per slot; node = slot mod NODE_COUNT. Each is a fresh interpreter, as on Azure ML, so nothing
of the parent leaks into the entry script. A node whose init() failed 3 × PROCESS_COUNT_PER_NODE times in
a row starts no new worker, as ParallelRunStep does.
"""
from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from orchestration.processes import kill_group
from orchestration.prs import warm
from orchestration.prs.backlog import Lease
from orchestration.prs.config import RunConfig
from orchestration.prs.container import Containers
from orchestration.prs.protocol import STOP, lease
from orchestration.prs.state import SlotTable, StatePaths
from orchestration.prs.worker import WorkerSpec

log = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 5.0


@dataclass
class WorkerHandle:
    spec: WorkerSpec
    process: subprocess.Popen
    conn: Connection
    sentinel: int  # a pidfd: readable once the process has exited
    ready: bool = False
    init_failed: bool = False
    lease: Lease | None = None
    last_words: str = ""  # why it is about to exit, when it could say (protocol.BROKEN)

    @property
    def name(self) -> str:
        return f"{self.spec.node}/{self.spec.agent_name}"


class Pool:
    def __init__(self, config: RunConfig, state: StatePaths, logs: Path, slots: SlotTable, first_part: int):
        self.config, self.state, self.logs, self.slots = config, state, logs, slots
        self.warm = warm.started()  # the workers the command line started ahead, if it did
        self.workers: list[WorkerHandle | None] = [None] * config.worker_count
        nodes = min(config.node_count, config.worker_count)  # the nodes with a worker: NODE_COUNT may be huge
        self.agent_numbers = [0] * nodes
        self.node_init_failures = [0] * nodes  # consecutive, per node
        self.next_part = first_part
        self.groups: set[int] = set()  # every worker's process group: what run() starts stays in it
        self.containers = Containers.for_run(config) if config.container else None

    def __iter__(self) -> Iterator[WorkerHandle]:
        return (handle for handle in self.workers if handle is not None)

    def __bool__(self) -> bool:
        return any(handle is not None for handle in self.workers)

    @property
    def live(self) -> int:
        return sum(1 for _ in self)

    def start(self) -> None:
        """A worker in every slot; the warm workers left over are let go."""
        for slot in range(len(self.workers)):
            self.spawn(slot)
        self.warm.discard()

    def spawn(self, slot: int) -> None:
        """Starts a worker in `slot`, unless its node gave up on init()."""
        config = self.config
        node = slot % config.node_count
        if self.node_init_failures[node] >= 3 * config.process_count_per_node:
            self.workers[slot] = None
            return
        agent = f"process{self.agent_numbers[node]:03d}"
        self.agent_numbers[node] += 1
        spec = WorkerSpec(config, self.state, self.logs, node, agent, self.next_part, slot)
        self.next_part += 1
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
        self.workers[slot] = WorkerHandle(spec, process, parent_conn, os.pidfd_open(process.pid))

    def give(self, handle: WorkerHandle, work: Lease) -> None:
        handle.lease = work
        handle.conn.send(lease(work.first, work.count, work.attempt))

    def messages(self, handle: WorkerHandle) -> list[tuple[Any, ...]]:
        """Every message the worker has sent so far."""
        received = []
        try:
            while handle.conn.poll():
                received.append(handle.conn.recv())
        except (EOFError, OSError):
            pass
        return received

    def init_succeeded(self, handle: WorkerHandle) -> None:
        handle.ready = True
        self.node_init_failures[handle.spec.node] = 0

    def init_failed(self, handle: WorkerHandle) -> None:
        handle.init_failed = True
        self.node_init_failures[handle.spec.node] += 1

    def reap(self, slot: int) -> None:
        """Waits for the dead (or killed) worker in `slot` and frees the slot."""
        handle = self.workers[slot]
        assert handle is not None
        handle.process.wait()
        handle.conn.close()
        os.close(handle.sentinel)
        self.workers[slot] = None
        if self.containers:
            self.containers.remove(handle.process.pid)

    def waitables(self) -> dict[Any, int]:
        """Each live worker's connection and exit sentinel, mapped to its slot."""
        found: dict[Any, int] = {}
        for slot, handle in enumerate(self.workers):
            if handle is not None:
                found[handle.conn] = slot
                found[handle.sentinel] = slot
        return found

    def overdue(self, limit: float) -> tuple[list[tuple[int, int, float]], float]:
        """(slot, mini-batch, start) of each run() past `limit` seconds, and seconds to the next deadline."""
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

    def release(self, graceful: bool) -> None:
        """Asks the workers to run shutdown() and exit, or kills them at once (errors, signals)."""
        for handle in self:
            if graceful:
                try:
                    handle.conn.send((STOP,))
                except OSError:
                    pass
            else:
                if self.containers:
                    self.containers.remove(handle.process.pid)
                kill_group(handle.process.pid)

    def kill(self, handle: WorkerHandle) -> None:
        """Kills the worker and what its run() started (past its timeout, say)."""
        if self.containers:
            self.containers.remove(handle.process.pid)
        kill_group(handle.process.pid)

    def join(self) -> None:
        """Waits for every worker to exit (killing those past STOP_GRACE_SECONDS): no orphan is left."""
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for handle in list(self):
            try:
                handle.process.wait(max(deadline - time.monotonic(), 0))
            except subprocess.TimeoutExpired:
                if self.containers:
                    self.containers.remove(handle.process.pid)
                kill_group(handle.process.pid)
                handle.process.wait()
            handle.conn.close()
            os.close(handle.sentinel)
        self.workers = [None] * len(self.workers)
        self.warm.reap(deadline)  # the ones let go at the start, on the same grace
        if self.containers:
            self.containers.close()
