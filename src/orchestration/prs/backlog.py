"""The parent's view of the work still to hand out, and the planner thread that feeds it.

A fresh run plans in a background thread: mini-batches become available as soon as they are on disk,
so the workers start while the inputs are still being listed. A resumed run takes the mini-batches
whose records are still pending. Work goes out in leases of consecutive mini-batches, large while much
remains and single near the end (guided scheduling), so the parent's cost per mini-batch is a few
microseconds; retries and mini-batches lost with a dead worker go out first, one per lease.
"""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from orchestration.prs.config import RunConfig
from orchestration.prs.planning import Plan, write_plan
from orchestration.prs.state import PENDING, RECORD_SIZE, StatePaths

UNBOUNDED = 2**62
MAX_LEASE = 256


@dataclass
class Lease:
    """Consecutive mini-batches handed to one worker, and how far its reports have come."""
    first: int
    count: int
    attempt: int
    next_batch: int  # first mini-batch not reported yet; reports come in order

    @property
    def end(self) -> int:
        return self.first + self.count

    def lost(self, running: int) -> tuple[int | None, list[int]]:
        """Its worker died: the mini-batch charged with a failed attempt (the one running, else the next
        unreported), and the others not reported yet, which were no attempt (finished or not started)."""
        unreported = range(self.next_batch, self.end)
        charged = running if running >= 0 else self.next_batch
        if charged not in unreported:
            return None, list(unreported)
        return charged, [batch for batch in unreported if batch != charged]


def guided_lease_size(remaining: int, workers: int) -> int:
    """Large leases while much remains, down to one at the end, so that no worker idles at the end."""
    return max(1, min(MAX_LEASE, remaining // (4 * workers)))


class Backlog:
    """Pending mini-batches in order, as ranges; `published` bounds what the planner has written."""

    def __init__(self, ranges: deque[range], published: int):
        self.ranges = ranges
        self.published = published
        self.planning_done = published == UNBOUNDED
        self.known_left = sum(len(r) for r in ranges) if self.planning_done else 0

    @classmethod
    def while_planning(cls) -> "Backlog":
        return cls(deque([range(0, UNBOUNDED)]), 0)

    @classmethod
    def pending_in(cls, records: Path, chunk: int = 65536) -> "Backlog":
        """The pending mini-batches of a finished plan, read from the status byte of each record."""
        ranges: deque[range] = deque()
        start, batch = -1, 0
        with records.open("rb") as handle:
            while data := handle.read(RECORD_SIZE * chunk):
                for status in data[::RECORD_SIZE]:
                    if status == PENDING and start < 0:
                        start = batch
                    elif status != PENDING and start >= 0:
                        ranges.append(range(start, batch))
                        start = -1
                    batch += 1
        if start >= 0:
            ranges.append(range(start, batch))
        return cls(ranges, UNBOUNDED)

    def finish_planning(self, total: int) -> None:
        """The planner is done: the open range ends at `total`."""
        if self.ranges:
            last = self.ranges.pop()
            if last.start < total:
                self.ranges.append(range(last.start, total))
        self.published = UNBOUNDED
        self.planning_done = True
        self.known_left = sum(len(r) for r in self.ranges)

    @property
    def left(self) -> int:
        """Mini-batches not handed out yet, as far as planned."""
        if self.planning_done:
            return self.known_left
        return max(self.published - self.ranges[0].start, 0) if self.ranges else 0

    @property
    def empty(self) -> bool:
        return self.planning_done and not self.ranges

    def take(self, size: int) -> tuple[int, int] | None:
        """Up to `size` consecutive pending mini-batches as (first, count); None if none is ready."""
        while self.ranges:
            head = self.ranges[0]
            stop = min(head.stop, self.published)
            if head.start >= head.stop:
                self.ranges.popleft()
                continue
            if head.start >= stop:
                return None  # the planner has not written the next one yet
            count = min(size, stop - head.start)
            if head.start + count < head.stop:
                self.ranges[0] = range(head.start + count, head.stop)
            else:
                self.ranges.popleft()
            if self.planning_done:
                self.known_left -= count
            return head.start, count
        return None


class PlanningStopped(Exception):
    """The run stopped before planning finished."""


class Planner(threading.Thread):
    """Writes the plan in the background and publishes how many mini-batches are on disk."""

    def __init__(self, config: RunConfig, state: StatePaths, on_done: Callable[[Plan], None]):
        super().__init__(name="planner", daemon=True)
        self.config, self.state, self.on_done = config, state, on_done
        self.published = 0
        self.result: Plan | None = None
        self.error: BaseException | None = None
        self.stopping = False

    def publish(self, batches: int) -> None:
        if self.stopping:
            raise PlanningStopped()
        self.published = batches

    def run(self) -> None:
        try:
            plan = write_plan(self.config, self.state, self.publish)
            self.on_done(plan)
            self.result = plan
        except PlanningStopped:
            pass
        except BaseException as exc:  # handed to the main thread, which reports it
            self.error = exc

    def stop(self) -> None:
        self.stopping = True
        self.join()


class WorkQueue:
    """Everything still to hand out: retries first, singly, then the backlog as the planner fills it."""

    def __init__(self, backlog: Backlog, planner: Planner | None = None, plan: Plan | None = None):
        self.backlog, self.planner, self.plan = backlog, planner, plan
        self.retry: deque[tuple[int, int]] = deque()  # (mini-batch, attempt)

    @classmethod
    def planned_by(cls, config: RunConfig, state: StatePaths, on_done: Callable[[Plan], None]) -> "WorkQueue":
        """Work that the planner thread will publish once `start()` is called."""
        return cls(Backlog.while_planning(), Planner(config, state, on_done))

    def start(self) -> None:
        if self.planner is not None:
            self.planner.start()

    @property
    def total(self) -> int | None:
        """The number of mini-batches, once planning is done."""
        return self.plan.batches if self.plan is not None else None

    @property
    def all_scheduled(self) -> bool:
        return self.backlog.empty

    def poll(self) -> None:
        """Takes in what the planner has published; re-raises its errors here, in the parent's loop."""
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

    def pending(self) -> bool:
        """Whether anything is left to hand out (a running lease aside)."""
        return bool(self.retry) or not self.backlog.empty

    def next_lease(self, live_workers: int) -> Lease | None:
        if self.retry:
            batch, attempt = self.retry.popleft()
            return Lease(batch, 1, attempt, batch)
        taken = self.backlog.take(guided_lease_size(self.backlog.left, max(live_workers, 1)))
        return Lease(taken[0], taken[1], 1, taken[0]) if taken else None

    def retry_next(self, batch: int, attempt: int) -> None:
        """A failed attempt's mini-batch, after what is already waiting."""
        self.retry.append((batch, attempt))

    def requeue_first(self, batches: Iterable[int], attempt: int) -> None:
        """Mini-batches a lost worker never reported (not attempts): first in line, in order."""
        self.retry.extendleft((batch, attempt) for batch in reversed(list(batches)))

    def stop(self) -> None:
        if self.planner is not None and self.planner.is_alive():
            self.planner.stop()
