"""A scripted executor: the runner's workers played in-process, so the scheduler's rules (ordering,
retries, thresholds, timeouts, lost workers, init failures, resume) are tested in milliseconds.

Each input file says what its run() does, as for scripts/faulty_entry.py, whose process runs the same
kinds end to end: ok (its name is the row), short (no row), raise, flaky (raises on its first attempt),
hang (until killed), exit (the process ends with code 3), segv (killed by SIGSEGV). A worker writes its
rows, records and attempt lines where a worker process writes them, so the parent's merge and summary
run unchanged. Time is a clock of its own: it moves only while every live worker waits on a hang.
"""
from __future__ import annotations

import os
import select
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from orchestration.prs.backlog import Lease
from orchestration.prs.config import RunConfig
from orchestration.prs.executor import Events, Executor, Exited, WorkerHandle
from orchestration.prs.protocol import (
    DONE, ERROR, INIT_FAILED, PARTIAL, READY, SUCCESS, Shortfall, attempt_line,
)
from orchestration.prs.state import (
    SUCCEEDED, BatchRecord, SlotTable, StatePaths, decode_task, read_task_lines, write_record,
)
from orchestration.prs.worker import serialize_rows

DEATHS = {"exit": "code 3", "segv": "signal SIGSEGV"}
CLOCK_START = 1000.0  # as time.monotonic(), never 0: a start time of 0 means none


@dataclass
class ScriptedWorker(WorkerHandle):
    slot: int = 0
    part: int = 0
    inbox: list[tuple[Any, ...]] = field(default_factory=list)  # messages not yet read by the parent
    next_run: int = -1  # the lease's next mini-batch to run
    running: tuple[int, float] = (-1, 0.0)  # the hanging mini-batch, since when
    died: str = ""  # how its "process" ended


class ScriptedExecutor(Executor):
    def __init__(self, config: RunConfig, state: StatePaths, logs: Path, slots: SlotTable, first_part: int,
                 failing_inits: int = 0):
        super().__init__(config, first_part)
        self.state, self.logs = state, logs
        self.failing_inits = failing_inits  # the first this many workers fail init()
        self.clock = CLOCK_START
        self.attempted: dict[str, int] = {}  # file name -> attempts begun, for flaky
        self.leases: list[tuple[int, int, int]] = []  # (first, count, attempt), in the order given
        self.ran: list[int] = []  # mini-batches whose run() began, in order
        self.launched = 0

    @classmethod
    def factory(cls, **options: Any) -> Any:
        return partial(cls, **options)

    def launch(self, slot: int, node: int, agent_name: str, part: int) -> ScriptedWorker:
        worker = ScriptedWorker(node, agent_name, slot=slot, part=part)
        self.launched += 1
        if self.launched <= self.failing_inits:
            worker.inbox.append((INIT_FAILED, "RuntimeError: init exploded", "Traceback: init exploded"))
            worker.died = "code 1"
        else:
            worker.inbox.append((READY,))
        return worker

    def give(self, handle: WorkerHandle, work: Lease) -> None:
        handle.lease = work
        scripted(handle).next_run = work.first
        self.leases.append((work.first, work.count, work.attempt))

    def messages(self, handle: WorkerHandle) -> list[tuple[Any, ...]]:
        worker = scripted(handle)
        received, worker.inbox = worker.inbox, []
        return received

    def wait(self, timeout: float, wake: int) -> Events:
        events = Events()
        for worker in map(scripted, list(self)):
            idle = worker.died or worker.running[0] >= 0
            if worker.lease is not None and worker.next_run >= 0 and not idle:
                self.run_lease(worker)
            if worker.died:
                events.exited.append(Exited(worker.slot, worker.died, *worker.running))
            elif worker.inbox:
                events.talked.append(worker.slot)
        hanging = any(worker.running[0] >= 0 for worker in map(scripted, self))
        quiet = not events.exited and not events.talked
        events.woken = bool(select.select([wake], [], [], timeout if quiet and not hanging else 0)[0])
        if quiet and hanging and not events.woken:
            self.clock += timeout  # the workers wait on their hangs: time passes
        return events

    def run_lease(self, worker: ScriptedWorker) -> None:
        """Runs the worker's lease until it ends, hangs or dies; reports what finished, as one flush."""
        lease = worker.lease
        assert lease is not None
        first, reports = worker.next_run, []
        tasks = os.open(self.state.tasks, os.O_RDONLY)
        index = os.open(self.state.tasks_index, os.O_RDONLY)
        records = os.open(self.state.batches, os.O_WRONLY)
        try:
            lines = read_task_lines(tasks, index, first, lease.end - first)
            for batch, line in enumerate(lines, start=first):
                self.ran.append(batch)
                outcome, rows, error = self.run_one(worker, decode_task(line, False))
                if outcome in DEATHS or outcome == "hang":
                    worker.running = (batch, self.clock)
                    worker.died = DEATHS.get(outcome, "")
                    break
                worker.next_run = batch + 1
                items = len(decode_task(line, False))
                if outcome == ERROR:
                    reports.append(Shortfall(batch, ERROR, items, 0, error))
                else:
                    data = serialize_rows(rows)
                    part = self.state.part(worker.part)
                    part.parent.mkdir(parents=True, exist_ok=True)
                    offset = part.stat().st_size if part.exists() else 0
                    with part.open("ab") as handle:
                        handle.write(data)
                    write_record(records, batch, BatchRecord(
                        SUCCEEDED, lease.attempt, items, len(rows), worker.part, offset, len(data),
                        data.count(b"\n")))
                    if len(rows) < items:
                        reports.append(Shortfall(batch, PARTIAL, items, len(rows), ""))
                result = SUCCESS if outcome != ERROR and len(rows) == items else (ERROR if error else PARTIAL)
                self.log_attempt(worker, attempt_line(batch, lease.attempt, items, len(rows), result,
                                                      worker.node, worker.agent_name, 0.0, error))
        finally:
            for fd in (tasks, index, records):
                os.close(fd)
        if worker.next_run > first:
            worker.inbox.append((DONE, first, worker.next_run - first, reports))
        if worker.next_run >= lease.end:
            worker.next_run = -1

    def run_one(self, worker: ScriptedWorker, files: list[str]) -> tuple[str, list[str], str]:
        """(outcome, rows, error) of one run(): the first file whose kind ends it decides."""
        rows = []
        for path in files:
            kind, name = Path(path).read_text().strip(), Path(path).name
            self.attempted[name] = self.attempted.get(name, 0) + 1
            if kind == "raise":
                return ERROR, [], f"ValueError: cannot handle {name}"
            if kind == "flaky" and self.attempted[name] == 1:
                return ERROR, [], f"RuntimeError: first attempt at {name} fails"
            if kind in DEATHS or kind == "hang":
                return kind, [], ""
            if kind != "short":
                rows.append(name)
        return SUCCESS, rows, ""

    def log_attempt(self, worker: ScriptedWorker, line: str) -> None:
        path = self.logs / "sys" / "job_report" / str(worker.node) / f"{worker.agent_name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            handle.write(line)

    def now(self) -> float:
        return self.clock

    def overdue(self, limit: float) -> tuple[list[tuple[int, int, float]], float]:
        late, next_deadline = [], 1.0
        for worker in map(scripted, self):
            batch, started = worker.running
            if batch < 0 or worker.died:
                continue
            if self.clock - started >= limit:
                late.append((worker.slot, batch, started))
            else:
                next_deadline = min(next_deadline, started + limit - self.clock)
        return late, max(next_deadline, 0.01)

    def kill(self, handle: WorkerHandle) -> None:
        scripted(handle).died = "signal SIGKILL"

    def reap(self, slot: int) -> None:
        self.workers[slot] = None

    def release(self, graceful: bool) -> None:
        for worker in map(scripted, self):
            worker.died = worker.died or ("code 0" if graceful else "signal SIGKILL")

    def join(self) -> None:
        self.workers = [None] * len(self.workers)


def scripted(handle: WorkerHandle | None) -> ScriptedWorker:
    assert isinstance(handle, ScriptedWorker)
    return handle
