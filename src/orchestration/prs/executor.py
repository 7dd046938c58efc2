"""The seam between the scheduler and whatever runs the entry script: the workers as the parent's loop
sees them, and the rules that do not depend on how they run.

An executor keeps one worker per slot (node = slot mod NODE_COUNT, agents numbered per node) and stops
replacing the workers of a node whose init() failed 3 × PROCESS_COUNT_PER_NODE times in a row, as
ParallelRunStep does. How a worker starts, talks, is timed out and dies is its subclass's job:
`pool.Pool` runs processes (the runner's executor); the tests drive the scheduler with a scripted
executor in-process, so ordering, retries, thresholds, timeouts and resume are checked in milliseconds.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from orchestration.prs.backlog import Lease
from orchestration.prs.config import RunConfig


@dataclass
class WorkerHandle:
    """One worker, as the parent's loop sees it."""
    node: int
    agent_name: str  # processNNN, unique on its node
    ready: bool = field(default=False, kw_only=True)  # init() succeeded
    init_failed: bool = field(default=False, kw_only=True)
    lease: Lease | None = field(default=None, kw_only=True)
    last_words: str = field(default="", kw_only=True)  # why it is about to exit, when it could say

    @property
    def name(self) -> str:
        return f"{self.node}/{self.agent_name}"


class Exited(NamedTuple):
    """A worker found dead: how it ended, and the mini-batch its run() was running (-1: none) since when."""
    slot: int
    how: str  # "code 3", "signal SIGSEGV"
    running: int
    started: float


@dataclass
class Events:
    """What a wait brought: the stop latch woke, slots whose worker sent messages, workers found dead."""
    woken: bool = False
    talked: list[int] = field(default_factory=list)
    exited: list[Exited] = field(default_factory=list)


class Executor(ABC):
    def __init__(self, config: RunConfig, first_part: int):
        self.config = config
        self.workers: list[WorkerHandle | None] = [None] * config.worker_count
        nodes = min(config.node_count, config.worker_count)  # the nodes with a worker: NODE_COUNT may be huge
        self.agent_numbers = [0] * nodes
        self.node_init_failures = [0] * nodes  # consecutive, per node
        self.next_part = first_part  # each worker appends its rows to a part file of its own
        self.groups: set[int] = set()  # the process groups the workers led: what run() starts stays in one

    def __iter__(self) -> Iterator[WorkerHandle]:
        return (handle for handle in self.workers if handle is not None)

    def __bool__(self) -> bool:
        return any(handle is not None for handle in self.workers)

    @property
    def live(self) -> int:
        return sum(1 for _ in self)

    def start(self) -> None:
        """A worker in every slot."""
        for slot in range(len(self.workers)):
            self.spawn(slot)

    def spawn(self, slot: int) -> None:
        """Starts a worker in `slot`, unless its node gave up on init()."""
        config = self.config
        node = slot % config.node_count
        if self.node_init_failures[node] >= 3 * config.process_count_per_node:
            self.workers[slot] = None
            return
        agent = f"process{self.agent_numbers[node]:03d}"
        self.agent_numbers[node] += 1
        part, self.next_part = self.next_part, self.next_part + 1
        self.workers[slot] = self.launch(slot, node, agent, part)

    def init_succeeded(self, handle: WorkerHandle) -> None:
        handle.ready = True
        self.node_init_failures[handle.node] = 0

    def init_failed(self, handle: WorkerHandle) -> None:
        handle.init_failed = True
        self.node_init_failures[handle.node] += 1

    # --- how workers run: the subclass's
    @abstractmethod
    def launch(self, slot: int, node: int, agent_name: str, part: int) -> WorkerHandle:
        """A new worker in `slot`; it says READY (or INIT_FAILED) once init() has run."""

    @abstractmethod
    def give(self, handle: WorkerHandle, work: Lease) -> None:
        """Hands the worker a lease; it reports DONE as its mini-batches finish."""

    @abstractmethod
    def messages(self, handle: WorkerHandle) -> list[tuple[Any, ...]]:
        """Every message the worker has sent so far (protocol's kinds)."""

    @abstractmethod
    def wait(self, timeout: float, wake: int) -> Events:
        """Waits up to `timeout` seconds for a message, a worker's end, or the file descriptor `wake`."""

    @abstractmethod
    def now(self) -> float:
        """The clock of the run() start times (time.monotonic for processes)."""

    @abstractmethod
    def overdue(self, limit: float) -> tuple[list[tuple[int, int, float]], float]:
        """(slot, mini-batch, start) of each run() past `limit` seconds, and seconds to the next deadline."""

    @abstractmethod
    def kill(self, handle: WorkerHandle) -> None:
        """Kills the worker and what its run() started (past its timeout, say)."""

    @abstractmethod
    def reap(self, slot: int) -> None:
        """Waits for the dead (or killed) worker in `slot` and frees the slot."""

    @abstractmethod
    def release(self, graceful: bool) -> None:
        """Asks the workers to run shutdown() and exit, or kills them at once (errors, signals)."""

    @abstractmethod
    def join(self) -> None:
        """Waits for every worker to exit: none is left behind."""
