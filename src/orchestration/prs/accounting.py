"""The run's failure accounting: tallies, retries and the three thresholds. Pure: no process, no file.

An attempt of a mini-batch fails when run() raises, exceeds the timeout or loses its process; it is
retried until RUN_MAX_TRY attempts, then the mini-batch is failed with all its items. A mini-batch whose
run() returned fewer results than items is done, with the missing items failed. The thresholds are
checked against these counts, as ParallelRunConfig documents them.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

from orchestration.prs.protocol import ERROR, RESULTS, SUCCESS, Shortfall

if TYPE_CHECKING:
    from orchestration.prs.config import RunConfig


@dataclass(frozen=True)
class Limits:
    """The settings the accounting applies: RunConfig's fields of the same names and defaults (a test
    keeps them so)."""
    run_max_try: int = 3
    error_threshold: int = 10  # failed items; -1 ignores all
    allowed_failed_count: int = -1  # failed mini-batches; -1 ignores all
    allowed_failed_percent: float = 100.0  # of all mini-batches, once all are scheduled; 100 ignores all
    short_return_fails_mini_batch: bool = True  # a short return fails it (not for v2 with -1 items)

    @classmethod
    def of(cls, config: "RunConfig") -> "Limits":
        return cls(**{limit.name: getattr(config, limit.name) for limit in fields(cls)})


@dataclass
class Accounting:
    limits: Limits
    done_batches: int = 0
    failed_items: int = 0  # final: short returns and mini-batches out of attempts
    live_failed: set[int] = field(default_factory=set)  # failed now, including those awaiting a retry
    attempts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RESULTS, 0))
    reasons: dict[int, str] = field(default_factory=dict)  # why each failed mini-batch failed

    def succeeded(self, batches: range, count: int) -> None:
        """`count` mini-batches of `batches` returned every item (the others are reported singly, after
        this call): done, and none of `batches` is failed any more (a retry that succeeded)."""
        self.attempts[SUCCESS] += count
        self.done_batches += count
        if self.live_failed:
            cleared = (batches if len(batches) < len(self.live_failed)
                       else [batch for batch in self.live_failed if batch in batches])
            for batch in cleared:
                self.live_failed.discard(batch)
                self.reasons.pop(batch, None)

    def finished(self, report: Shortfall) -> None:
        """A mini-batch whose run() returned: done, with any missing items failed."""
        self.attempts[report.result] += 1
        self.recorded(report.batch, report.items, report.succeeded)

    def recorded(self, batch: int, items: int, succeeded: int) -> None:
        """A mini-batch done with `succeeded` of `items` (by this run, or one it resumes)."""
        self.done_batches += 1
        if succeeded < items:
            self.failed_items += items - succeeded
        if succeeded < items and self.limits.short_return_fails_mini_batch:
            self.live_failed.add(batch)
            self.reasons[batch] = f"run() returned {succeeded} of {items} items"
        else:
            self.live_failed.discard(batch)
            self.reasons.pop(batch, None)

    def attempt_failed(self, batch: int, attempt: int, items: int, result: str, reason: str) -> bool:
        """Counts a failed attempt; True when the mini-batch gets another, False when it is failed."""
        self.attempts[result] += 1
        self.reasons[batch] = f"{result}: {reason}" if result != ERROR else reason
        self.live_failed.add(batch)
        if attempt < self.limits.run_max_try:
            return True
        self.failed_items += items
        self.done_batches += 1
        return False

    def breach(self, total_batches: int | None, all_scheduled: bool) -> str:
        """The threshold exceeded now, named with the counts, or ''.

        The percentage is only judged once every mini-batch is scheduled (`total_batches` known).
        """
        limits = self.limits
        if limits.error_threshold != -1 and self.failed_items > limits.error_threshold:
            return f"ERROR_THRESHOLD={limits.error_threshold} exceeded: {self.failed_items} items failed"
        if limits.allowed_failed_count != -1 and len(self.live_failed) > limits.allowed_failed_count:
            return (f"ALLOWED_FAILED_COUNT={limits.allowed_failed_count} exceeded: "
                    f"{len(self.live_failed)} mini-batches failed")
        if limits.allowed_failed_percent < 100 and total_batches is not None and all_scheduled:
            percent = 100.0 * len(self.live_failed) / max(total_batches, 1)
            if percent > limits.allowed_failed_percent:
                return (f"ALLOWED_FAILED_PERCENT={limits.allowed_failed_percent:g} exceeded: "
                        f"{percent:.1f}% of mini-batches failed")
        return ""
