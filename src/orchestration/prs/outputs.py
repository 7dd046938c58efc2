"""What a finished (or stopped) run leaves behind: the merged append_row file, the summary and the logs.

`logs/` mirrors ParallelRunStep's layout in broad strokes: job_result.txt, job_progress_overview.txt,
sys/job_report/processed_mini-batches.csv, sys/node/, user/entry_script_log/, user/stdout|stderr/,
user/error/ — plus summary.json, the machine-readable account of every item.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from orchestration.commands import last_line
from orchestration.errors import EXIT_RUN_FAILED, Stopped
from orchestration.prs.accounting import Accounting
from orchestration.prs.config import RunConfig
from orchestration.prs.state import (
    FAILED, SUCCEEDED, StatePaths, decode_task, iter_raw_records, read_task_lines,
)
from orchestration.prs.protocol import ATTEMPT_COLUMNS

MAX_LISTED_FAILURES = 1000  # failed mini-batches described item by item in summary.json
log = logging.getLogger(__name__)


@dataclass
class Totals:
    total: int = 0
    succeeded: int = 0
    failed: int = 0
    not_processed: int = 0


@dataclass
class Summary:
    status: str  # Completed, Failed or Interrupted
    reason: str
    exit_code: int
    items: Totals
    mini_batches: Totals
    rows_written: int | None
    output_file: str | None
    workers: int
    emulated_processes: int
    max_workers: int
    elapsed_s: float
    parent_peak_rss_mb: float
    attempts: dict[str, int] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    planning_complete: bool = True  # False: stopped while the inputs were still being listed
    logs: str = ""


def count_batches(state: StatePaths, short_return_fails: bool = True) -> tuple[Totals, Totals, list[int]]:
    """Items and mini-batches by outcome, from the records; and the failed or partial mini-batches.

    A mini-batch that returned fewer rows than items is a failed mini-batch (unless `short_return_fails`
    is off) whose missing items failed; returning more than its items counts as all succeeded.
    """
    items, batches, failed = Totals(), Totals(), []
    for batch, (status, _, _, count, succeeded, _, _, _, _) in enumerate(iter_raw_records(state.batches)):
        items.total += count
        batches.total += 1
        if status == SUCCEEDED:
            ok = min(succeeded, count)
            items.succeeded += ok
            items.failed += count - ok
            if ok < count and short_return_fails:
                batches.failed += 1
                failed.append(batch)
            else:
                batches.succeeded += 1
        elif status == FAILED:
            items.failed += count
            batches.failed += 1
            failed.append(batch)
        else:
            items.not_processed += count
            batches.not_processed += 1
    return items, batches, failed


def describe_failures(state: StatePaths, failed: list[int], reasons: dict[int, str],
                      tabular: bool) -> list[dict[str, Any]]:
    """Each failed mini-batch with its items (paths or tabular slice) and the reason."""
    described = []
    with open(state.tasks, "rb") as tasks, open(state.tasks_index, "rb") as index:
        for batch in failed[:MAX_LISTED_FAILURES]:
            (line,) = read_task_lines(tasks.fileno(), index.fileno(), batch, 1)
            reason = reasons.get(batch, "")
            described.append({"mini_batch": batch, "items": decode_task(line, tabular), "reason": reason})
    return described


COPY_BLOCK = 1 << 26  # the most copied between two looks at a stop request


def _copy_range(source: int, target: int, offset: int, length: int, stop: Callable[[], None]) -> None:
    """Copies bytes between files in the kernel where it can (copy_file_range), else through memory;
    `stop()` is called between blocks (it raises to stop)."""
    while length:
        stop()
        try:
            copied = os.copy_file_range(source, target, min(length, COPY_BLOCK), offset)
        except OSError:
            copied = os.write(target, os.pread(source, min(length, 1 << 24), offset))
        if not copied:
            raise OSError(f"part file ended {length} bytes early")
        offset += copied
        length -= copied


def merge_output(config: RunConfig, state: StatePaths, stop: Callable[[], None] = lambda: None) -> int:
    """Writes the succeeded rows in mini-batch order to the append_row file; returns the lines written.

    Consecutive mini-batches whose rows lie back to back in one part file are copied in one go. Rows go
    to a temporary name that replaces the final one only when complete, so a crash (or `stop()` raising,
    which is called between copies) never leaves a truncated or half-merged file under that name.
    """
    target = config.output_file
    temporary = target.with_name(f".{target.name}.partial")
    lines = 0
    parts: dict[int, int] = {}
    run_part, run_start, run_end = -1, 0, 0
    try:
        with temporary.open("wb") as out:
            out_fd = out.fileno()
            for status, _, _, _, _, part, offset, length, count in iter_raw_records(state.batches):
                if status != SUCCEEDED or not length:
                    continue
                lines += count
                if part == run_part and offset == run_end:
                    run_end += length
                    continue
                if run_end > run_start:
                    _copy_range(parts[run_part], out_fd, run_start, run_end - run_start, stop)
                if part not in parts:
                    parts[part] = os.open(state.part(part), os.O_RDONLY)
                run_part, run_start, run_end = part, offset, offset + length
            if run_end > run_start:
                _copy_range(parts[run_part], out_fd, run_start, run_end - run_start, stop)
    except BaseException:  # e.g. the disk is full: nothing partial stays behind, the state allows a resume
        temporary.unlink(missing_ok=True)
        raise
    finally:
        for fd in parts.values():
            os.close(fd)
    os.replace(temporary, target)
    return lines


def merge_attempt_logs(logs: Path) -> Path:
    """Concatenates the per-process attempt logs into sys/job_report/processed_mini-batches.csv."""
    report_dir = logs / "sys" / "job_report"
    target = report_dir / "processed_mini-batches.csv"
    with target.open("w", encoding="utf-8") as out:
        out.write(ATTEMPT_COLUMNS + "\n")
        for part in sorted(report_dir.glob("*/*.csv")):
            with part.open(encoding="utf-8") as handle:
                shutil.copyfileobj(handle, out)  # in blocks: a line at a time cost 15 ms per 20,000
    return target


def write_logs(logs: Path, summary: Summary) -> None:
    """summary.json, job_result.txt and job_progress_overview.txt."""
    logs.mkdir(parents=True, exist_ok=True)
    merge_attempt_logs(logs)
    (logs / "summary.json").write_text(json.dumps(asdict(summary), indent=2) + "\n", encoding="utf-8")
    result = f"{summary.status}: {summary.reason}\n" if summary.reason else f"{summary.status}\n"
    if summary.status != "Completed":
        result += ("See logs/summary.json, logs/sys/job_report/processed_mini-batches.csv "
                   "and logs/user/error/.\n")
    (logs / "job_result.txt").write_text(result, encoding="utf-8", errors="backslashreplace")
    items, batches = summary.items, summary.mini_batches
    (logs / "job_progress_overview.txt").write_text(
        f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n"
        f"{batches.total} mini-batches created; {batches.succeeded} succeeded, {batches.failed} failed, "
        f"{batches.not_processed} not processed.\n"
        f"{items.total} items; {items.succeeded} succeeded, {items.failed} failed, "
        f"{items.not_processed} not processed.\n"
        f"{summary.workers} worker processes for {summary.emulated_processes} emulated "
        f"(local maximum {summary.max_workers}); {summary.elapsed_s:.1f} s.\n"
        f"The job result is: {summary.status}.\n",
        encoding="utf-8",
    )


def summarize(config: RunConfig, state: StatePaths, logs: Path, outcome: tuple[str, str, int],
              accounting: Accounting, elapsed_s: float, planning_complete: bool = True,
              stop: Callable[[], None] = lambda: None) -> Summary:
    """The account of a finished (or stopped) run: merges the output (a completed append_row run only),
    counts every item from the records and writes the logs. `outcome` is (status, reason, exit code);
    `stop()` raising Stopped during the merge makes the run Interrupted, its output not written."""
    status, reason, code = outcome
    items, batches, failed = count_batches(state, config.short_return_fails_mini_batch)
    rows, output_file = None, None
    if status == "Completed" and config.output_action == "append_row":
        try:
            rows = merge_output(config, state, stop)
            output_file = str(config.output_file)
        except Stopped as exc:
            status, code = "Interrupted", exc.exit_code
            reason = (f"stopped by {exc.signal_name} while the output was merged; every row is kept in the "
                      "run's state: run again with --resume to write it")
        except OSError as exc:
            status, code = "Failed", EXIT_RUN_FAILED
            reason = (f"cannot write {config.output_file}: {exc.strerror or exc}; every row is kept in "
                      "the run's state: free some space and run again with --resume")
    summary = Summary(
        status=status, reason=reason, exit_code=code, items=items, mini_batches=batches,
        rows_written=rows, output_file=output_file, workers=config.worker_count,
        emulated_processes=config.emulated_processes, max_workers=config.max_workers,
        elapsed_s=round(elapsed_s, 3), parent_peak_rss_mb=round(peak_rss_mb(), 1),
        attempts=dict(accounting.attempts),
        failures=describe_failures(state, failed, accounting.reasons, config.input_type == "tabular"),
        config=config.describe(), planning_complete=planning_complete, logs=str(logs),
    )
    try:
        write_logs(logs, summary)
    except OSError as exc:  # the summary still reaches the caller and the terminal
        log.error("cannot write the logs in %s: %s", logs, exc.strerror or exc)
    return summary


def peak_rss_mb() -> float:
    """This (parent) process's peak resident memory; workers are not included. From VmHWM: getrusage's
    ru_maxrss also counts the memory of the process that started this one, as it was at the exec (a
    runner started by a 300 MB process reports 300 MB)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError):
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def format_summary(summary: Summary, with_last_line: bool = True) -> str:
    """The short human account printed at the end of a run; `with_last_line` adds the command's last line."""
    items, batches = summary.items, summary.mini_batches
    planned = "" if summary.planning_complete else " planned so far (stopped while listing the inputs)"
    lines = [
        f"{summary.status}" + (f": {summary.reason}" if summary.reason else ""),
        f"items: {items.succeeded} succeeded, {items.failed} failed, {items.not_processed} not processed "
        f"of {items.total}{planned}",
        f"mini-batches: {batches.succeeded} succeeded, {batches.failed} failed, {batches.not_processed} "
        f"not processed of {batches.total}",
        f"workers: {summary.workers} local processes for {summary.emulated_processes} emulated "
        f"(local maximum {summary.max_workers}); {summary.elapsed_s:.2f} s",
    ]
    if summary.output_file:
        lines.append(f"output: {summary.output_file} ({summary.rows_written} rows)")
    for failure in summary.failures[:5]:
        lines.append(f"  failed mini-batch {failure['mini_batch']}: {failure['reason']}")
    if len(summary.failures) > 5:
        lines.append(f"  ... {len(summary.failures) - 5} more in logs/summary.json")
    if with_last_line:
        lines.append(last_line(summary.exit_code, run_outcome(summary)))
    return "\n".join(lines)


def run_outcome(summary: Summary) -> str:
    """What happened, for the command's last line, and what to do next."""
    if summary.status == "Completed":
        failed = f" with {summary.items.failed} failed items (see {summary.logs}/summary.json)" \
            if summary.items.failed else ""
        return f"completed{failed}"
    if summary.status == "Interrupted":
        return "stopped; run again with --resume (RESUME=1) to finish what is left"
    return (f"failed; see {summary.logs}/summary.json, then run again with --resume "
            "(RESUME=1) to redo only the failed and unfinished mini-batches")
