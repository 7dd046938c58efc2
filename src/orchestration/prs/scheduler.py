"""The parent of a local run: the loop that hands out leases and reacts to workers, signals and the end.

Work goes out in leases of consecutive mini-batches, large while much work remains and single near the
end (guided scheduling), so the per-mini-batch cost in the parent is a few microseconds. Retries and
mini-batches lost with a dead worker go out first, one per lease. The rooms around this one: `pool`
(the worker processes), `accounting` (tallies, retries, thresholds), `resume`, `progress`, `report`.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import signal
import time
from collections import deque
from multiprocessing.connection import wait
from typing import Any, TextIO

from orchestration.prs.accounting import Accounting, Limits
from orchestration.prs.backlog import Backlog, Planner
from orchestration.prs.config import RunConfig
from orchestration.prs.planning import Plan
from orchestration.prs.pool import Lease, Pool, WorkerHandle
from orchestration.prs.progress import Progress
from orchestration.prs.protocol import CRASH, DONE, ERROR, INIT_FAILED, READY, TIMEOUT, Attempt, Report
from orchestration.prs.report import Summary, summarize
from orchestration.prs.resume import clear_previous_run, plan_recorder, resume
from orchestration.prs.state import FAILED, BatchRecord, SlotTable, StatePaths, read_record, write_record

log = logging.getLogger(__name__)

EXIT_COMPLETED, EXIT_FAILED, EXIT_SIGINT, EXIT_SIGTERM = 0, 42, 130, 143
MAX_LEASE = 256
PLANNING_POLL_SECONDS = 0.005  # how often the loop looks for newly planned mini-batches


class Interrupted(Exception):
    def __init__(self, signal_name: str, exit_code: int):
        super().__init__(signal_name)
        self.signal_name, self.exit_code = signal_name, exit_code


def guided_lease_size(remaining: int, workers: int) -> int:
    """Large leases while much remains, down to one at the end, so that no worker idles at the end."""
    return max(1, min(MAX_LEASE, remaining // (4 * workers)))


class Scheduler:
    def __init__(self, config: RunConfig):
        # Workers run in folders of their own, so every path they get is absolute.
        self.config = config = dataclasses.replace(
            config, entry_script=config.entry_script.resolve(), output=config.output.resolve(),
            inputs=tuple(p.resolve() for p in config.inputs),
        )
        self.state = StatePaths.of(config.output)
        self.logs = config.output / "logs"
        self.accounting = Accounting(Limits(config.run_max_try, config.error_threshold,
                                            config.allowed_failed_count, config.allowed_failed_percent))
        self.retry: deque[tuple[int, int]] = deque()  # (mini-batch, attempt) to send first, singly
        self.plan: Plan | None = None  # known once planning is done
        self.backlog = Backlog(deque(), 0)
        self.planner: Planner | None = None
        self.records_fd = -1
        self.lost_attempts: TextIO | None = None  # attempts lost with their worker: the parent logs them
        self.init_failures, self.last_init_error = 0, ""

    # --- planning
    def poll_planner(self) -> None:
        """Moves what the planner published into the backlog; re-raises its errors here."""
        planner = self.planner
        if planner is None:
            return
        if planner.error is not None:
            raise planner.error
        self.backlog.published = planner.published
        if planner.result is not None:
            self.plan = planner.result
            self.backlog.finish_planning(self.plan.batches)
            self.planner = None

    # --- work
    def next_lease(self, live: int) -> Lease | None:
        if self.retry:
            batch, attempt = self.retry.popleft()
            return Lease(batch, 1, attempt, batch)
        taken = self.backlog.take(guided_lease_size(self.backlog.left, max(live, 1)))
        return Lease(taken[0], taken[1], 1, taken[0]) if taken else None

    def dispatch(self, pool: Pool) -> None:
        for handle in pool:
            if handle.ready and handle.lease is None:
                work = self.next_lease(pool.live)
                if work is None:
                    return
                pool.give(handle, work)

    def work_left(self, pool: Pool) -> bool:
        return bool(self.retry) or not self.backlog.empty or any(h.lease is not None for h in pool)

    # --- outcomes
    def attempt_failed(self, batch: int, attempt: int, result: str, reason: str,
                       lost: WorkerHandle | None = None, elapsed: float = 0.0) -> None:
        """A failed attempt: retried, or the mini-batch is failed on disk when out of attempts.

        `lost` is the worker that was killed or died during the attempt: the parent logs that attempt,
        as the worker could not.
        """
        record = read_record(self.records_fd, batch)
        if lost is not None and self.lost_attempts is not None:
            self.lost_attempts.write(Attempt(batch, attempt, record.items, 0, result, lost.spec.node,
                                             lost.spec.agent_name, elapsed, reason).csv_row())
            self.lost_attempts.flush()
        if self.accounting.attempt_failed(batch, attempt, record.items, result, reason):
            self.retry.append((batch, attempt + 1))
        else:
            write_record(self.records_fd, batch, BatchRecord(FAILED, attempt, record.items))

    def on_reports(self, handle: WorkerHandle, reports: list[Report]) -> None:
        lease = handle.lease
        assert lease is not None
        for report in reports:
            lease.next_batch = report.batch + 1
            if report.result == ERROR:
                self.attempt_failed(report.batch, lease.attempt, ERROR, report.reason)
            else:
                self.accounting.finished(report)
        if lease.next_batch >= lease.end:
            handle.lease = None

    def on_message(self, pool: Pool, handle: WorkerHandle, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == DONE:
            self.on_reports(handle, message[1])
        elif kind == READY:
            pool.init_succeeded(handle)
        elif kind == INIT_FAILED:
            pool.init_failed(handle)
            self.init_failures += 1
            self.last_init_error = message[2]
            log.warning("init() failed in %s: %s", handle.name, message[1])

    def drain(self, pool: Pool, handle: WorkerHandle) -> None:
        for message in pool.messages(handle):
            self.on_message(pool, handle, message)

    def lost_worker(self, pool: Pool, slot: int, result: str, reason: str, running: int,
                    started: float) -> None:
        """A worker died or was killed: charge its running mini-batch, requeue the rest, replace it."""
        handle = pool.workers[slot]
        assert handle is not None
        self.drain(pool, handle)
        pool.reap(slot)
        lease = handle.lease
        if lease is not None:
            charged, unfinished = lease.lost(running)
            self.retry.extendleft((batch, lease.attempt) for batch in reversed(unfinished))
            if charged is not None:
                elapsed = time.monotonic() - started if started else 0.0
                self.attempt_failed(charged, lease.attempt, result, reason, handle, elapsed)
        elif not handle.ready and not handle.init_failed:  # died in init() without a word
            pool.init_failed(handle)
            self.init_failures += 1
            self.last_init_error = reason
        if self.work_left(pool):
            pool.spawn(slot)

    def enforce_timeouts(self, pool: Pool) -> float:
        """Kills workers whose run() exceeded the timeout; returns seconds to the next deadline."""
        limit = self.config.run_invocation_timeout
        late, next_deadline = pool.overdue(limit)
        for slot, batch, started in late:
            handle = pool.workers[slot]
            assert handle is not None
            handle.process.kill()
            log.warning("mini-batch %d: run() exceeded %ss, worker %s killed", batch, limit, handle.name)
            self.lost_worker(pool, slot, TIMEOUT, f"run() exceeded RUN_INVOCATION_TIMEOUT={limit}s", batch,
                             started)
        return next_deadline

    def stop_reason(self, pool: Pool) -> str:
        """Why the run must stop now (a threshold, or no worker left), or ''."""
        total = self.plan.batches if self.plan is not None else None
        breach = self.accounting.breach(total, all_scheduled=self.backlog.empty)
        if breach:
            return breach
        if not pool and self.work_left(pool):
            return (f"init() failed {self.init_failures} times and no worker is left; last error:\n"
                    f"{self.last_init_error.rstrip()}")
        return ""

    # --- the run
    def run(self) -> Summary:
        started, started_ns = time.monotonic(), time.time_ns()
        config, state = self.config, self.state
        resumed = resume(config, state) if config.resume and state.plan.exists() else None
        if resumed is None:
            clear_previous_run(config, state, self.logs)
        else:
            self.plan, self.backlog = resumed.plan, resumed.backlog
        state.root.mkdir(parents=True, exist_ok=True)
        slots = SlotTable(state.slots, config.worker_count, create=True)
        pool = Pool(config, state, self.logs, slots, resumed.next_part if resumed else 0)
        lost_log = self.logs / "sys" / "job_report" / "master" / "lost_attempts.csv"
        lost_log.parent.mkdir(parents=True, exist_ok=True)
        self.lost_attempts = lost_log.open("a", encoding="utf-8")
        log.info("%d worker processes for %d emulated (%d nodes x %d), local maximum %d",
                 config.worker_count, config.emulated_processes, config.node_count,
                 config.process_count_per_node, config.max_workers)
        status, reason, code = "Completed", "", EXIT_COMPLETED
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        signal.signal(signal.SIGTERM, _raise_interrupted)
        signal.signal(signal.SIGINT, _raise_interrupted)
        try:
            if resumed is None:  # the workers start while the inputs are listed
                self.backlog = Backlog.while_planning()
                self.planner = Planner(config, state, plan_recorder(config, state, started_ns))
                self.planner.start()
            for slot in range(config.worker_count):
                pool.spawn(slot)
            reason = self.loop(pool)
            if reason:
                status, code = "Failed", EXIT_FAILED
        except Interrupted as exc:
            status, reason, code = "Interrupted", f"stopped by {exc.signal_name}", exc.exit_code
        except BaseException:  # a planning error (e.g. an unreadable tabular file) or a bug
            status = "Error"
            raise
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if self.planner is not None:
                self.planner.stop()
            pool.release(graceful=status == "Completed")
            if status == "Error":
                pool.join()
            if self.records_fd >= 0:
                os.close(self.records_fd)
            slots.close()
            self.lost_attempts.close()
        try:  # the workers' shutdown() runs while the output is merged: every row is on disk already
            return summarize(config, state, self.logs, (status, reason, code), self.accounting,
                             time.monotonic() - started)
        finally:
            pool.join()

    def loop(self, pool: Pool) -> str:
        progress = Progress(self.config.progress_interval)
        try:
            while True:
                self.poll_planner()
                if self.records_fd < 0 and self.state.batches.exists():  # the planner has begun
                    self.records_fd = os.open(self.state.batches, os.O_RDWR)
                if not self.work_left(pool):
                    return ""
                self.dispatch(pool)
                timeout = self.enforce_timeouts(pool)
                if self.planner is not None:
                    timeout = min(timeout, PLANNING_POLL_SECONDS)
                waitables = pool.waitables()
                for ready in wait(list(waitables), timeout=timeout):
                    slot = waitables[ready]
                    handle = pool.workers[slot]
                    if handle is None:
                        continue
                    if ready is handle.conn:
                        self.drain(pool, handle)
                    if handle.process.poll() is not None:
                        running, started = pool.slots.read(slot)
                        code = handle.process.returncode
                        how = f"signal {signal.Signals(-code).name}" if code and code < 0 else f"code {code}"
                        if handle.ready:
                            log.warning("worker %s died (%s)", handle.name, how)
                        self.lost_worker(pool, slot, CRASH, f"worker process died ({how})", running, started)
                accounting = self.accounting
                progress.update(accounting.done_batches, len(accounting.live_failed),
                                self.plan.batches if self.plan else None)
                reason = self.stop_reason(pool)
                if reason:
                    return reason
        finally:
            progress.close()


def _raise_interrupted(signum: int, frame: Any) -> None:
    name = signal.Signals(signum).name
    raise Interrupted(name, EXIT_SIGINT if signum == signal.SIGINT else EXIT_SIGTERM)


def run_parallel(config: RunConfig) -> Summary:
    """Runs the entry script over the inputs like ParallelRunStep; see the module docstring."""
    return Scheduler(config).run()
