"""The parent of a local run: the loop that hands out work and reacts to workers, signals and the end.

The rooms around this one: `backlog` (the work still to hand out, leases), `executor` (the workers, as
this loop sees them; `pool` runs them as processes), `accounting` (tallies, retries, thresholds),
`resume`, `progress` and `outputs`.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from orchestration.errors import EXIT_OK, EXIT_RUN_FAILED, Stopped
from orchestration.processes import adopt_orphans, children, stop_leftovers
from orchestration.prs.accounting import Accounting, Limits
from orchestration.prs.backlog import WorkQueue
from orchestration.prs.claim import check_links, claim, place_links
from orchestration.prs.config import RunConfig
from orchestration.prs.mltable import partitioned_input
from orchestration.prs.executor import Executor, WorkerHandle
from orchestration.prs.pool import Pool
from orchestration.prs.progress import Progress
from orchestration.prs.protocol import (
    BROKEN, CRASH, DONE, ERROR, INIT_FAILED, READY, TIMEOUT, Attempt, Shortfall,
)
from orchestration.prs.outputs import Summary, summarize
from orchestration.prs.resume import clear_previous_run, plan_recorder, resume
from orchestration.prs.state import (
    FAILED, BatchRecord, SlotTable, StatePaths, read_record, write_record,
)
from orchestration.stopping import StopLatch

log = logging.getLogger(__name__)

PLANNING_POLL_SECONDS = 0.005  # how often the loop looks for newly planned mini-batches


class Scheduler:
    def __init__(self, config: RunConfig, work: WorkQueue, pool: Executor, lost_attempts: TextIO,
                 accounting: Accounting, latch: StopLatch):
        self.config, self.work, self.pool, self.lost_attempts = config, work, pool, lost_attempts
        self.accounting, self.latch = accounting, latch
        self.records_fd = -1  # batches.bin, once the planner has begun it
        self.init_failures, self.last_init_error = 0, ""

    def busy(self) -> bool:
        return self.work.pending() or any(handle.lease is not None for handle in self.pool)

    # --- outcomes
    def attempt_failed(self, batch: int, attempt: int, result: str, reason: str,
                       lost: WorkerHandle | None = None, elapsed: float = 0.0) -> None:
        """A failed attempt: retried, or the mini-batch is failed on disk when out of attempts. The
        attempt of a `lost` worker (killed or dead) is logged here, as the worker could not."""
        record = read_record(self.records_fd, batch)
        if lost is not None:
            try:
                self.lost_attempts.write(Attempt(batch, attempt, record.items, 0, result, lost.node,
                                                 lost.agent_name, elapsed, reason).csv_row())
                self.lost_attempts.flush()
            except OSError as exc:  # a full disk: the attempt still counts; only its log line is lost
                log.error("cannot log a lost attempt of mini-batch %d: %s", batch, exc.strerror or exc)
        if self.accounting.attempt_failed(batch, attempt, record.items, result, reason):
            self.work.retry_next(batch, attempt + 1)
        else:
            write_record(self.records_fd, batch, BatchRecord(FAILED, attempt, record.items))

    def on_message(self, handle: WorkerHandle, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == DONE:
            lease = handle.lease
            assert lease is not None
            first, count, others = message[1:]
            lease.next_batch = first + count
            self.accounting.succeeded(range(first, first + count), count - len(others))
            report: Shortfall
            for report in others:
                if report.result == ERROR:
                    self.attempt_failed(report.batch, lease.attempt, ERROR, report.reason)
                else:
                    self.accounting.finished(report)
            if lease.next_batch >= lease.end:
                handle.lease = None
        elif kind == READY:
            self.pool.init_succeeded(handle)
        elif kind == INIT_FAILED:
            self.init_failed(handle, message[2])
            log.warning("init() failed in %s: %s", handle.name, message[1])
        elif kind == BROKEN:
            handle.last_words = message[1]
            log.error("worker %s %s", handle.name, message[1])

    def init_failed(self, handle: WorkerHandle, error: str) -> None:
        self.pool.init_failed(handle)
        self.init_failures += 1
        self.last_init_error = error

    def drain(self, handle: WorkerHandle) -> None:
        for message in self.pool.messages(handle):
            self.on_message(handle, message)

    def lost_worker(self, slot: int, result: str, reason: str, running: int, started: float) -> None:
        """A worker died or was killed: charge its running mini-batch, requeue the rest, replace it."""
        handle = self.pool.workers[slot]
        assert handle is not None
        self.drain(handle)
        self.pool.reap(slot)
        if handle.last_words:
            reason = f"{reason}: {handle.last_words}"
        lease = handle.lease
        if lease is not None:
            charged, unfinished = lease.lost(running)
            self.work.requeue_first(unfinished, lease.attempt)
            if charged is not None:
                elapsed = self.pool.now() - started if started else 0.0
                self.attempt_failed(charged, lease.attempt, result, reason, handle, elapsed)
        elif not handle.ready and not handle.init_failed:  # died in init() without a word
            self.init_failed(handle, reason)
        if self.busy():
            self.pool.spawn(slot)

    def enforce_timeouts(self) -> float:
        """Kills workers whose run() exceeded the timeout; returns seconds to the next deadline."""
        limit = self.config.run_invocation_timeout
        late, next_deadline = self.pool.overdue(limit)
        for slot, batch, started in late:
            handle = self.pool.workers[slot]
            assert handle is not None
            self.pool.kill(handle)
            log.warning("mini-batch %d: run() exceeded %ss, worker %s killed", batch, limit, handle.name)
            self.lost_worker(slot, TIMEOUT, f"run() exceeded RUN_INVOCATION_TIMEOUT={limit}s", batch, started)
        return next_deadline

    def stop_reason(self) -> str:
        """Why the run must stop now (a threshold, or no worker left), or ''."""
        breach = self.accounting.breach(self.work.total, self.work.all_scheduled)
        if breach:
            return breach
        if not self.pool and self.busy():
            return (f"init() failed {self.init_failures} times and no worker is left; last error:\n"
                    f"{self.last_init_error.rstrip()}")
        return ""

    # --- the loop
    def loop(self, state: StatePaths) -> str:
        """Runs until the work is done (''), or returns why it must stop."""
        pool, progress = self.pool, Progress(self.config.progress_interval)
        try:
            while True:
                self.latch.check()
                self.work.poll()
                if self.records_fd < 0 and state.batches.exists():  # the planner has begun
                    self.records_fd = os.open(state.batches, os.O_RDWR)
                timeout = self.enforce_timeouts()  # first: the last mini-batch may be one it fails
                if not self.busy():
                    return ""
                for handle in pool:
                    if handle.ready and handle.lease is None:
                        lease = self.work.next_lease(pool.live)
                        if lease is None:
                            break
                        pool.give(handle, lease)
                if self.work.planner is not None:
                    timeout = min(timeout, PLANNING_POLL_SECONDS)
                events = pool.wait(timeout, self.latch.fd)
                if events.woken:
                    self.latch.drain()
                for slot in events.talked:
                    handle = pool.workers[slot]
                    if handle is not None:
                        self.drain(handle)
                for slot, how, running, started in events.exited:
                    handle = pool.workers[slot]
                    if handle is None:
                        continue
                    if handle.ready:
                        log.warning("worker %s died (%s)", handle.name, how)
                    self.lost_worker(slot, CRASH, f"worker process died ({how})", running, started)
                accounting = self.accounting
                progress.update(accounting.done_batches, len(accounting.live_failed), self.work.total)
                reason = self.stop_reason()
                if reason:
                    return reason
        finally:
            progress.close()
            if self.records_fd >= 0:
                os.close(self.records_fd)
                self.records_fd = -1


ExecutorFactory = Callable[[RunConfig, StatePaths, Path, SlotTable, int], Executor]


def run_parallel(config: RunConfig, last: bool = False, executor: ExecutorFactory = Pool) -> Summary:
    """Runs the entry script over the inputs like ParallelRunStep (see the package docstring), holding the
    output folder for the whole run. `last`: the command ends with this run, so once its logs are
    written, SIGINT, SIGTERM and SIGHUP are ignored (interrupts.ignore_signals): none can contradict them.
    `executor` runs the workers (worker processes; the tests script them in-process)."""
    if config.partition_keys and config.table is None:  # SDK v1's partitioned folder: checked first
        config = dataclasses.replace(config, table=partitioned_input(config))
    with claim(config.output, config.inputs):
        return _run(config, last, executor)


def stop_entry_script_leftovers(pool: Executor, ours: set[int]) -> None:
    """Stops what init() or run() started and left running, in the workers' process groups or orphaned:
    nothing a run starts outlives it."""
    left = stop_leftovers(pool.groups, ours)
    if left:
        log.warning("the entry script left %d process%s running (pid %s), stopped at the end of the run: "
                    "wait for what init() and run() start, or stop it in shutdown()", len(left),
                    "es" * (len(left) > 1), ", ".join(map(str, sorted(left))))


def _run(config: RunConfig, last: bool, executor: ExecutorFactory) -> Summary:
    started, started_ns = time.monotonic(), time.time_ns()
    # Workers run in folders of their own, so every path they get is absolute.
    config = dataclasses.replace(config, entry_script=config.entry_script.resolve(),
                                 output=config.output.resolve(),
                                 inputs=tuple(p.resolve() for p in config.inputs))
    state, logs = StatePaths.of(config.output), config.output / "logs"
    adopt_orphans()  # what the entry script starts and leaves behind comes back to this process
    ours = children()  # the warm workers, and whatever the caller started: not the run's to stop
    accounting = Accounting(Limits.of(config))
    check_links(config.output, config.links)  # before anything of a previous run is cleared
    resumed = resume(config, state, accounting) if config.resume and state.plan.exists() else None
    if resumed is None:
        clear_previous_run(config, state, logs)
    place_links(config.output, config.links)
    state.root.mkdir(parents=True, exist_ok=True)
    slots = SlotTable(state.slots, config.worker_count, create=True)
    pool = executor(config, state, logs, slots, resumed.next_part if resumed else 0)
    lost_log = logs / "sys" / "job_report" / "master" / "lost_attempts.csv"
    lost_log.parent.mkdir(parents=True, exist_ok=True)
    log.info("%d worker processes for %d emulated (%d nodes x %d), local maximum %d",
             config.worker_count, config.emulated_processes, config.node_count,
             config.process_count_per_node, config.max_workers)
    work = (WorkQueue(resumed.backlog, plan=resumed.plan) if resumed
            else WorkQueue.planned_by(config, state, plan_recorder(config, state, started_ns)))
    status, reason, code = "Completed", "", EXIT_OK
    with StopLatch(ignore_on_exit=last) as latch:  # a signal is acted on by the loop and the merge only
        lost = lost_log.open("a", encoding="utf-8", errors="backslashreplace")
        scheduler = Scheduler(config, work, pool, lost, accounting, latch)
        try:
            work.start()  # a fresh run plans in the background: the workers start while inputs are listed
            pool.start()
            reason = scheduler.loop(state)
            if reason:
                status, code = "Failed", EXIT_RUN_FAILED
        except Stopped as exc:
            status, reason, code = "Interrupted", f"stopped by {exc.signal_name}", exc.exit_code
        except BaseException:  # a planning error (e.g. an unreadable tabular file) or a bug
            status = "Error"
            raise
        finally:
            work.stop()
            pool.release(graceful=status == "Completed")
            if status == "Error":
                pool.join()
            slots.close()
            try:
                scheduler.lost_attempts.close()
            except OSError:  # its last lines could not be flushed (a full disk): reported as they failed
                pass
        try:  # the workers' shutdown() runs while the output is merged: every row is on disk already
            summary = summarize(config, state, logs, (status, reason, code), scheduler.accounting,
                                time.monotonic() - started, planning_complete=work.plan is not None,
                                stop=latch.check)  # a signal now stops the merge: the run is Interrupted
        finally:
            pool.join()  # a signal once the logs are written changes nothing: the run has ended
            stop_entry_script_leftovers(pool, ours)
    if summary.items.total == 0 and status == "Completed":
        log.warning("no input items in %s (hidden files are skipped): nothing was run",
                    ", ".join(str(p) for p in config.inputs))
    return summary
