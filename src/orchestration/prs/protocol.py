"""The wire between the parent and its workers: message kinds, attempt results, and the named records
they carry. Messages are tuples whose first element is their kind, so that a pipe carries them cheaply.
"""
from __future__ import annotations

from typing import NamedTuple

# Parent -> worker: ("lease", first, count, attempt) runs mini-batches first .. first+count-1;
# ("stop",) asks for shutdown() and exit.
LEASE, STOP = "lease", "stop"
# Worker -> parent: ("ready",) after init(); ("init_failed", reason, traceback);
# ("done", first, count, [Shortfall, ...]): mini-batches first .. first+count-1 of the lease are finished,
# in full (SUCCESS) except those with a Shortfall (PARTIAL or ERROR): one small message per flush, however
# many mini-batches it covers; ("broken", reason) before it exits because it cannot write its rows or
# records (a full disk).
READY, INIT_FAILED, DONE, BROKEN = "ready", "init_failed", "done", "broken"

# The result of one attempt, as in processed_mini-batches.csv.
SUCCESS, PARTIAL, ERROR, TIMEOUT, CRASH = "SUCCESS", "PARTIAL", "ERROR", "TIMEOUT", "CRASH"
RESULTS = (SUCCESS, PARTIAL, ERROR, TIMEOUT, CRASH)
ATTEMPT_COLUMNS = "mini_batch,attempt,items,succeeded,failed,result,node,process,elapsed_s,error"


def lease(first: int, count: int, attempt: int) -> tuple[str, int, int, int]:
    return (LEASE, first, count, attempt)


class Shortfall(NamedTuple):
    """What a worker tells the parent about an attempt of a mini-batch that did not return in full."""
    batch: int
    result: str  # PARTIAL or ERROR (TIMEOUT and CRASH are the parent's findings)
    items: int
    succeeded: int
    reason: str  # why it failed; '' for a short return (PARTIAL)


class Attempt(NamedTuple):
    """One line of processed_mini-batches.csv: an attempt of a mini-batch, by whom, how it ended."""
    batch: int
    attempt: int
    items: int
    succeeded: int
    result: str
    node: int
    agent: str
    elapsed: float
    error: str

    def csv_row(self) -> str:
        return attempt_line(*self)


def attempt_line(batch: int, attempt: int, items: int, succeeded: int, result: str, node: int, agent: str,
                 elapsed: float, error: str) -> str:
    """An attempt's line, in ATTEMPT_COLUMNS order (a function: workers write one per mini-batch)."""
    failed = items - succeeded if items > succeeded else 0
    return (f"{batch},{attempt},{items},{succeeded},{failed},{result},{node},{agent},{elapsed:.6f},"
            f'"{error.replace(chr(34), chr(39))}"\n')


def flattened(text: str, limit: int = 300) -> str:
    """A reason fit for a CSV cell or a summary line."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit - 3] + "..."


def exception_reason(exc: BaseException) -> str:
    return flattened(f"{type(exc).__name__}: {exc}")
