"""The parent of a local run: starts workers, hands out leases, enforces timeouts, retries and thresholds.

Work goes out in leases of consecutive mini-batches, large while much work remains and single near the
end (guided scheduling), so the per-mini-batch cost in the parent is a few microseconds. Retries and
mini-batches lost with a dead worker go out first, one per lease. A mini-batch's attempt fails when
run() raises, exceeds RUN_INVOCATION_TIMEOUT (its worker is killed) or its worker dies; it is retried
until RUN_MAX_TRY attempts. A worker that dies or is killed is replaced and runs init() again.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from orchestration.cli import UsageError
from orchestration.prs.config import RunConfig
from orchestration.prs.backlog import Backlog, Planner
from orchestration.prs.planning import Plan, write_plan
from orchestration.prs.report import (
    Summary, count_batches, describe_failures, merge_output, write_logs,
)
from orchestration.prs.state import (
    FAILED, BatchRecord, SlotTable, StatePaths, decode_task, iter_records, read_record, read_task_lines,
    task_files, write_record,
)
from orchestration.prs.worker import (
    CRASH, DONE, ERROR, INIT_FAILED, PARTIAL, READY, SUCCESS, TIMEOUT, WorkerSpec, attempt_row,
)

log = logging.getLogger(__name__)

SRC_DIR = str(Path(__file__).resolve().parents[2])

EXIT_COMPLETED, EXIT_FAILED, EXIT_SIGINT, EXIT_SIGTERM = 0, 42, 130, 143
MAX_LEASE = 256
PLANNING_POLL_SECONDS = 0.005  # how often the loop looks for newly planned mini-batches
STOP_GRACE_SECONDS = 5.0
PLAN_FILE_VERSION = 1


class Interrupted(Exception):
    def __init__(self, signal_name: str, exit_code: int):
        super().__init__(signal_name)
        self.signal_name, self.exit_code = signal_name, exit_code


class ResumeRefused(UsageError):
    """RESUME=1 on an output folder whose run had other inputs or settings."""


@dataclass
class Lease:
    first: int
    count: int
    attempt: int
    next_batch: int  # first mini-batch not reported yet; reports come in order

    @property
    def end(self) -> int:
        return self.first + self.count


@dataclass
class WorkerHandle:
    spec: WorkerSpec
    process: subprocess.Popen
    conn: Connection
    sentinel: int  # a pidfd: readable once the process has exited
    ready: bool = False
    init_failed: bool = False
    lease: Lease | None = None


@dataclass
class Tally:
    """Live counts that the thresholds are checked against."""

    done_batches: int = 0
    failed_items: int = 0  # final: short returns and mini-batches out of attempts
    live_failed: set[int] = field(default_factory=set)  # failed now, including those awaiting a retry
    attempts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys((SUCCESS, PARTIAL, ERROR, TIMEOUT, CRASH), 0)
    )
    reasons: dict[int, str] = field(default_factory=dict)


def guided_lease_size(remaining: int, workers: int) -> int:
    """Large leases while much remains, down to one at the end, so that no worker idles at the end."""
    return max(1, min(MAX_LEASE, remaining // (4 * workers)))


class Scheduler:
    def __init__(self, config: RunConfig):
        # Workers run in folders of their own, so every path they get is absolute.
        config = dataclasses.replace(
            config, entry_script=config.entry_script.resolve(), output=config.output.resolve(),
            inputs=tuple(p.resolve() for p in config.inputs),
        )
        self.config = config
        self.state = StatePaths.of(config.output)
        self.logs = config.output / "logs"
        self.workers: list[WorkerHandle | None] = [None] * config.worker_count
        self.slot_table: SlotTable  # opened by run()
        self.master_log: TextIO  # attempts lost with their worker, opened by run()
        self.retry: deque[tuple[int, int]] = deque()  # (mini-batch, attempt) to send first, singly
        self.tally = Tally()
        self.agent_numbers = [0] * config.node_count
        self.node_init_failures = [0] * config.node_count
        self.init_failures = 0
        self.last_init_error = ""
        self.next_part = 0
        self.plan: Plan | None = None  # known once planning is done
        self.backlog = Backlog(deque(), 0)
        self.planner: Planner | None = None
        self.records_fd = -1

    # --- planning and resume
    def clear_previous_run(self) -> None:
        """A fresh run starts from nothing: the previous state, logs and output file go."""
        if self.config.resume:
            log.info("nothing to resume in %s: starting a fresh run", self.config.output)
        for stale in (self.state.root, self.logs):
            shutil.rmtree(stale, ignore_errors=True)
        self.config.output_file.unlink(missing_ok=True)

    def start_planning(self, started_ns: int) -> None:
        """Plans in the background; plan.json (what a resume must match) is written when it is done."""
        def done(plan: Plan) -> None:
            self.state.plan.write_text(json.dumps({
                "version": PLAN_FILE_VERSION, "fingerprint": self.config.result_fingerprint(),
                "listing_sha256": plan.listing_sha256, "started_ns": started_ns,
                "batches": plan.batches, "items": plan.items,
            }, indent=2))

        self.backlog = Backlog.while_planning()
        self.planner = Planner(self.config, self.state, done)
        self.planner.start()

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

    def check_resume(self) -> None:
        """Refuses a resume whose settings, file list or files differ; re-opens failed mini-batches."""
        config, state = self.config, self.state
        previous = json.loads(state.plan.read_text())
        refuse = f"RESUME refused for {config.output}: {{}}; run without RESUME to start afresh"
        if previous.get("fingerprint") != config.result_fingerprint():
            raise ResumeRefused(refuse.format(
                "the entry script, inputs, MINI_BATCH_SIZE, OUTPUT_ACTION, APPEND_ROW_FILE_NAME, "
                "arguments or environment variables differ from that run"
            ))
        scratch = StatePaths(state.root / "replan")
        shutil.rmtree(scratch.root, ignore_errors=True)
        try:
            self.plan = write_plan(config, scratch)
        finally:
            shutil.rmtree(scratch.root, ignore_errors=True)
        if previous.get("listing_sha256") != self.plan.listing_sha256:
            raise ResumeRefused(refuse.format("input files were added, removed or renamed since that run"))
        changed = first_changed_file(
            state, self.plan.batches, config.input_type == "tabular", previous["started_ns"]
        )
        if changed:
            raise ResumeRefused(refuse.format(f"{changed} changed after that run started"))
        with open(state.batches, "r+b") as records:  # failed mini-batches get a new chance
            for batch, record in iter_records(state.batches):
                if record.status == FAILED:
                    write_record(records.fileno(), batch, BatchRecord(items=record.items))
        existing = [int(p.stem) for p in state.parts.glob("*.rows")]
        self.next_part = max(existing, default=-1) + 1
        self.backlog = Backlog.pending_in(state.batches)
        log.info("resuming the run in %s: %d mini-batches to do", config.output, self.backlog.left)

    # --- workers
    def spawn(self, slot: int) -> None:
        config = self.config
        node = slot % config.node_count
        if self.node_init_failures[node] >= 3 * config.process_count_per_node:
            self.workers[slot] = None  # this node gave up on init(), as ParallelRunStep does
            return
        agent = f"process{self.agent_numbers[node]:03d}"
        self.agent_numbers[node] += 1
        spec = WorkerSpec(config, self.state, self.logs, node, agent, self.next_part, slot)
        self.next_part += 1
        parent_conn, child_conn = multiprocessing.Pipe()
        self.slot_table.reset(slot)
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [SRC_DIR, environment.get("PYTHONPATH")]))
        # A fresh interpreter per worker, as on Azure ML: nothing of the parent leaks into the entry script.
        process = subprocess.Popen(
            [sys.executable, "-m", "orchestration.prs.worker", str(child_conn.fileno())],
            pass_fds=(child_conn.fileno(),), env=environment, stdin=subprocess.DEVNULL,
        )
        child_conn.close()
        parent_conn.send(spec)
        self.workers[slot] = WorkerHandle(spec, process, parent_conn, os.pidfd_open(process.pid))

    def next_lease(self) -> Lease | None:
        if self.retry:
            batch, attempt = self.retry.popleft()
            return Lease(batch, 1, attempt, batch)
        live = sum(1 for w in self.workers if w is not None)
        taken = self.backlog.take(guided_lease_size(self.backlog.left, max(live, 1)))
        return Lease(taken[0], taken[1], 1, taken[0]) if taken else None

    def dispatch(self) -> None:
        for handle in self.workers:
            if handle is not None and handle.ready and handle.lease is None:
                lease = self.next_lease()
                if lease is None:
                    return
                handle.lease = lease
                handle.conn.send(("lease", lease.first, lease.count, lease.attempt))

    # --- outcomes
    def attempt_failed(self, batch: int, attempt: int, result: str, reason: str,
                       lost: WorkerHandle | None = None, elapsed: float = 0.0) -> None:
        """Counts a failed attempt; retries it, or marks the mini-batch failed when out of attempts.

        `lost` is the worker that was killed or died during the attempt: the parent logs that attempt,
        as the worker could not.
        """
        tally = self.tally
        record = read_record(self.records_fd, batch)
        if lost is not None:
            self.master_log.write(attempt_row(
                batch, attempt, record.items, 0, result, lost.spec.node, lost.spec.agent_name, elapsed, reason
            ))
            self.master_log.flush()
        tally.attempts[result] += 1
        tally.reasons[batch] = f"{result}: {reason}" if result != ERROR else reason
        tally.live_failed.add(batch)
        if attempt < self.config.run_max_try:
            self.retry.append((batch, attempt + 1))
            return
        write_record(self.records_fd, batch, BatchRecord(FAILED, attempt, record.items))
        tally.failed_items += record.items
        tally.done_batches += 1

    def on_reports(self, handle: WorkerHandle, reports: list[tuple[Any, ...]]) -> None:
        tally, lease = self.tally, handle.lease
        assert lease is not None
        for batch, result, items, succeeded, reason in reports:
            lease.next_batch = batch + 1
            if result == ERROR:
                self.attempt_failed(batch, lease.attempt, ERROR, reason)
                continue
            tally.attempts[result] += 1
            tally.done_batches += 1
            if succeeded < items:
                tally.failed_items += items - succeeded
                tally.live_failed.add(batch)
                tally.reasons[batch] = f"run() returned {succeeded} of {items} items"
            else:
                tally.live_failed.discard(batch)
                tally.reasons.pop(batch, None)
        if lease.next_batch >= lease.end:
            handle.lease = None

    def on_message(self, handle: WorkerHandle, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == DONE:
            self.on_reports(handle, message[1])
        elif kind == READY:
            handle.ready = True
            self.node_init_failures[handle.spec.node] = 0
        elif kind == INIT_FAILED:
            handle.init_failed = True
            self.init_failures += 1
            self.node_init_failures[handle.spec.node] += 1
            self.last_init_error = message[2]
            log.warning("init() failed in %s/%s: %s", handle.spec.node, handle.spec.agent_name, message[1])

    def drain(self, handle: WorkerHandle) -> None:
        """Handles every message the worker has sent so far."""
        try:
            while handle.conn.poll():
                self.on_message(handle, handle.conn.recv())
        except (EOFError, OSError):
            pass

    def lost_worker(self, slot: int, result: str, reason: str, running: int, started: float) -> None:
        """A worker died or was killed: charge its running mini-batch, requeue the rest, replace it."""
        handle = self.workers[slot]
        assert handle is not None
        self.drain(handle)
        handle.process.wait()
        lease = handle.lease
        if lease is not None:
            charged = running if running >= 0 else lease.next_batch
            for batch in reversed(range(lease.next_batch, lease.end)):
                if batch == charged:
                    elapsed = time.monotonic() - started if started else 0.0
                    self.attempt_failed(batch, lease.attempt, result, reason, handle, elapsed)
                else:  # finished but unreported, or not started: not an attempt
                    self.retry.appendleft((batch, lease.attempt))
        elif not handle.ready and not handle.init_failed:  # died in init() without a word
            self.init_failures += 1
            self.node_init_failures[handle.spec.node] += 1
            self.last_init_error = reason
        handle.conn.close()
        os.close(handle.sentinel)
        self.workers[slot] = None
        if self.work_left():
            self.spawn(slot)

    def check_timeouts(self) -> float:
        """Kills workers whose run() exceeded the timeout; returns seconds to the next deadline."""
        now, limit = time.monotonic(), self.config.run_invocation_timeout
        next_deadline = 1.0
        for slot, handle in enumerate(self.workers):
            if handle is None:
                continue
            batch, started = self.slot_table.read(slot)
            if batch < 0:
                continue
            if now - started >= limit:
                handle.process.kill()
                log.warning("mini-batch %d: run() exceeded %ss, worker %s/%s killed", batch, limit,
                            handle.spec.node, handle.spec.agent_name)
                reason = f"run() exceeded RUN_INVOCATION_TIMEOUT={limit}s"
                self.lost_worker(slot, TIMEOUT, reason, batch, started)
            else:
                next_deadline = min(next_deadline, started + limit - now)
        return max(next_deadline, 0.01)

    def work_left(self) -> bool:
        return bool(self.retry) or not self.backlog.empty or any(
            w is not None and w.lease is not None for w in self.workers
        )

    def check_thresholds(self) -> str:
        """The reason to stop now, naming the threshold, or ''."""
        config, tally = self.config, self.tally
        if config.error_threshold != -1 and tally.failed_items > config.error_threshold:
            return (f"ERROR_THRESHOLD={config.error_threshold} exceeded: {tally.failed_items} items failed")
        if config.allowed_failed_count != -1 and len(tally.live_failed) > config.allowed_failed_count:
            return (f"ALLOWED_FAILED_COUNT={config.allowed_failed_count} exceeded: "
                    f"{len(tally.live_failed)} mini-batches failed")
        if config.allowed_failed_percent < 100 and self.plan is not None and self.backlog.empty:
            percent = 100.0 * len(tally.live_failed) / max(self.plan.batches, 1)  # all scheduled
            if percent > config.allowed_failed_percent:
                return (f"ALLOWED_FAILED_PERCENT={config.allowed_failed_percent:g} exceeded: "
                        f"{percent:.1f}% of mini-batches failed")
        if not any(self.workers) and self.work_left():
            return (f"init() failed {self.init_failures} times and no worker is left; last error:\n"
                    f"{self.last_init_error.rstrip()}")
        return ""

    # --- the run
    def run(self) -> Summary:
        started, started_ns = time.monotonic(), time.time_ns()
        config, state = self.config, self.state
        resume = config.resume and state.plan.exists()
        if resume:
            self.check_resume()
        else:
            self.clear_previous_run()
        state.root.mkdir(parents=True, exist_ok=True)
        self.slot_table = SlotTable(state.slots, len(self.workers), create=True)
        master_log = self.logs / "sys" / "job_report" / "master" / "lost_attempts.csv"
        master_log.parent.mkdir(parents=True, exist_ok=True)
        self.master_log = master_log.open("a", encoding="utf-8")
        log.info("%d worker processes for %d emulated (%d nodes x %d), local maximum %d",
                 config.worker_count, config.emulated_processes, config.node_count,
                 config.process_count_per_node, config.max_workers)
        status, reason, code = "Completed", "", EXIT_COMPLETED
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        signal.signal(signal.SIGTERM, _raise_interrupted)
        signal.signal(signal.SIGINT, _raise_interrupted)
        try:
            if not resume:
                self.start_planning(started_ns)  # the workers start while the inputs are listed
            for slot in range(len(self.workers)):
                self.spawn(slot)
            reason = self.loop()
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
            self.release_workers(graceful=status == "Completed")
            if status == "Error":
                self.join_workers()
            if self.records_fd >= 0:
                os.close(self.records_fd)
            self.slot_table.close()
            self.master_log.close()
        try:  # the workers' shutdown() runs while the output is merged: every row is on disk already
            return self.finish(status, reason, code, started)
        finally:
            self.join_workers()

    def loop(self) -> str:
        progress = Progress(self.config.progress_interval)
        try:
            while True:
                self.poll_planner()
                if self.records_fd < 0 and self.state.batches.exists():  # the planner has begun
                    self.records_fd = os.open(self.state.batches, os.O_RDWR)
                if not self.work_left():
                    return ""
                self.dispatch()
                timeout = self.check_timeouts()
                if self.planner is not None:
                    timeout = min(timeout, PLANNING_POLL_SECONDS)
                handles = {}
                for slot, handle in enumerate(self.workers):
                    if handle is not None:
                        handles[handle.conn] = slot
                        handles[handle.sentinel] = slot
                for ready in wait(list(handles), timeout=timeout):
                    slot = handles[ready]
                    handle = self.workers[slot]
                    if handle is None:
                        continue
                    if ready is handle.conn:
                        self.drain(handle)
                    if handle.process.poll() is not None:
                        running, started = self.slot_table.read(slot)
                        code = handle.process.returncode
                        how = f"signal {signal.Signals(-code).name}" if code and code < 0 else f"code {code}"
                        if handle.ready:
                            log.warning("worker %s/%s died (%s)",
                                        handle.spec.node, handle.spec.agent_name, how)
                        self.lost_worker(slot, CRASH, f"worker process died ({how})", running, started)
                progress.update(self.tally, self.plan.batches if self.plan else None)
                reason = self.check_thresholds()
                if reason:
                    return reason
        finally:
            progress.close()

    def release_workers(self, graceful: bool) -> None:
        """Asks the workers to run shutdown() and exit, or kills them at once (errors, signals)."""
        for handle in self.workers:
            if handle is None:
                continue
            if graceful:
                try:
                    handle.conn.send(("stop",))
                except OSError:
                    pass
            else:
                handle.process.kill()

    def join_workers(self) -> None:
        """Waits for every worker to exit (killing those past STOP_GRACE_SECONDS): no orphan is left."""
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for handle in [w for w in self.workers if w is not None]:
            try:
                handle.process.wait(max(deadline - time.monotonic(), 0))
            except subprocess.TimeoutExpired:
                handle.process.kill()
                handle.process.wait()
            handle.conn.close()
            os.close(handle.sentinel)
        self.workers = [None] * len(self.workers)

    def finish(self, status: str, reason: str, code: int, started: float) -> Summary:
        """Merges the output (a completed append_row run only), counts every item and writes the logs."""
        config = self.config
        items, batches, failed = count_batches(self.state)
        rows, output_file = None, None
        if status == "Completed" and config.output_action == "append_row":
            rows = merge_output(config, self.state)
            output_file = str(config.output_file)
        summary = Summary(
            status=status, reason=reason, exit_code=code, items=items, mini_batches=batches,
            rows_written=rows, output_file=output_file, workers=config.worker_count,
            emulated_processes=config.emulated_processes, max_workers=config.max_workers,
            elapsed_s=round(time.monotonic() - started, 3), parent_peak_rss_mb=round(peak_rss_mb(), 1),
            attempts=dict(self.tally.attempts),
            failures=describe_failures(
                self.state, failed, self.tally.reasons, config.input_type == "tabular"
            ),
            config=config.describe(),
        )
        write_logs(self.logs, summary)
        return summary


class Progress:
    """A tqdm bar on a terminal; otherwise a plain log line every few seconds (CI logs)."""

    def __init__(self, interval: float):
        self.interval = interval
        self.started = self.last = time.monotonic()
        self.shown = 0
        on_terminal = sys.stderr.isatty()
        self.bar = tqdm(unit="mini-batch", desc="extract", dynamic_ncols=True) if on_terminal else None

    def update(self, tally: Tally, total: int | None) -> None:
        done, now = tally.done_batches, time.monotonic()
        if self.bar is not None:
            if total is not None and self.bar.total != total:
                self.bar.total = total
            if done != self.shown:
                self.bar.update(done - self.shown)
                self.bar.set_postfix(failed=len(tally.live_failed), refresh=False)
                self.shown = done
        elif now - self.last >= self.interval:
            rate = done / max(now - self.started, 1e-9)
            if total is None:
                eta = "planning"
            else:
                eta = f"ETA {(total - done) / rate:.0f}s" if rate else "ETA unknown"
            log.info("progress: %d/%s mini-batches, %d failed, %.0f mini-batches/s, %s",
                     done, total if total is not None else "?", len(tally.live_failed), rate, eta)
            self.last = now

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _raise_interrupted(signum: int, frame: Any) -> None:
    name = signal.Signals(signum).name
    raise Interrupted(name, EXIT_SIGINT if signum == signal.SIGINT else EXIT_SIGTERM)


def peak_rss_mb() -> float:
    """This (parent) process's peak resident memory; workers are not included."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def first_changed_file(state: StatePaths, batches: int, tabular: bool, since_ns: int,
                       chunk: int = 4096) -> str:
    """The first file of the plan changed (status change time) after `since_ns`, or ''.

    ctime moves on every write, rename or replacement and cannot be set back, so this catches what a
    size/mtime comparison would miss, at the cost of one stat per file, paid on resume only.
    """
    checked = ""
    with open(state.tasks, "rb") as tasks, open(state.tasks_index, "rb") as index:
        for first in range(0, batches, chunk):
            for line in read_task_lines(tasks.fileno(), index.fileno(), first, min(chunk, batches - first)):
                for path in task_files(decode_task(line, tabular), tabular):
                    if path == checked:  # the slices of one tabular file
                        continue
                    checked = path
                    try:
                        if os.stat(path).st_ctime_ns > since_ns:
                            return path
                    except OSError:
                        return path
    return ""


def run_parallel(config: RunConfig) -> Summary:
    """Runs the entry script over the inputs like ParallelRunStep; see the module docstring."""
    return Scheduler(config).run()
