"""The failure accounting as pure code: tallies, retries and thresholds, no process started."""
import pytest

from orchestration.prs.accounting import Accounting, Limits
from orchestration.prs.pool import Lease
from orchestration.prs.protocol import ERROR, PARTIAL, SUCCESS, TIMEOUT, Shortfall


def test_a_full_return_is_done_and_a_short_one_fails_only_its_missing_items():
    accounting = Accounting(Limits())
    accounting.finished(Shortfall(0, SUCCESS, 5, 5, ""))
    accounting.finished(Shortfall(1, PARTIAL, 5, 3, ""))
    assert (accounting.done_batches, accounting.failed_items, accounting.live_failed) == (2, 2, {1})
    assert accounting.reasons == {1: "run() returned 3 of 5 items"}
    assert accounting.attempts[SUCCESS] == accounting.attempts[PARTIAL] == 1


def test_failed_attempts_are_retried_until_run_max_try_then_fail_every_item():
    accounting = Accounting(Limits(run_max_try=3))
    assert accounting.attempt_failed(4, 1, items=5, result=ERROR, reason="ValueError: x") is True
    assert accounting.attempt_failed(4, 2, items=5, result=TIMEOUT, reason="too slow") is True
    assert (accounting.done_batches, accounting.failed_items) == (0, 0)  # still awaiting a retry
    assert accounting.attempt_failed(4, 3, items=5, result=ERROR, reason="ValueError: y") is False
    assert (accounting.done_batches, accounting.failed_items, accounting.live_failed) == (1, 5, {4})
    assert accounting.reasons[4] == "ValueError: y" and accounting.attempts[ERROR] == 2


def test_a_retry_that_succeeds_clears_the_failure():
    accounting = Accounting(Limits())
    accounting.attempt_failed(2, 1, items=5, result=TIMEOUT, reason="too slow")
    assert accounting.reasons == {2: "TIMEOUT: too slow"}
    accounting.finished(Shortfall(2, SUCCESS, 5, 5, ""))
    assert accounting.live_failed == set() and accounting.reasons == {} and accounting.failed_items == 0


def test_a_batched_report_counts_its_full_returns_and_clears_the_retries_it_covers():
    """One worker message covers mini-batches 10..19: 9 returned in full, 15 is reported singly."""
    accounting = Accounting(Limits())
    for batch in (12, 15, 30):
        accounting.attempt_failed(batch, 1, items=5, result=TIMEOUT, reason="too slow")
    accounting.succeeded(range(10, 20), 9)
    accounting.finished(Shortfall(15, PARTIAL, 5, 4, ""))
    assert (accounting.done_batches, accounting.attempts[SUCCESS], accounting.attempts[PARTIAL]) == (10, 9, 1)
    assert accounting.live_failed == {15, 30} and accounting.failed_items == 1
    assert accounting.reasons == {15: "run() returned 4 of 5 items", 30: "TIMEOUT: too slow"}


@pytest.mark.parametrize("limits, expected", [
    (Limits(error_threshold=6), "ERROR_THRESHOLD=6 exceeded: 7 items failed"),
    (Limits(error_threshold=7), ""),
    (Limits(error_threshold=-1, allowed_failed_count=1),
     "ALLOWED_FAILED_COUNT=1 exceeded: 2 mini-batches failed"),
    (Limits(error_threshold=-1, allowed_failed_percent=10),
     "ALLOWED_FAILED_PERCENT=10 exceeded: 20.0% of mini-batches failed"),
    (Limits(error_threshold=-1, allowed_failed_percent=20), ""),
])
def test_each_threshold_names_itself_and_the_counts(limits, expected):
    accounting = Accounting(limits)
    accounting.finished(Shortfall(0, PARTIAL, 5, 0, ""))  # 5 items failed
    accounting.finished(Shortfall(1, PARTIAL, 5, 3, ""))  # 2 more
    assert accounting.breach(total_batches=10, all_scheduled=True) == expected


def test_the_percentage_waits_until_every_mini_batch_is_scheduled():
    accounting = Accounting(Limits(error_threshold=-1, allowed_failed_percent=10))
    accounting.finished(Shortfall(0, PARTIAL, 5, 0, ""))
    assert accounting.breach(total_batches=None, all_scheduled=False) == ""  # still planning
    assert accounting.breach(total_batches=4, all_scheduled=False) == ""
    assert accounting.breach(total_batches=4, all_scheduled=True).startswith("ALLOWED_FAILED_PERCENT")


@pytest.mark.parametrize("running, charged, unfinished", [
    (7, 7, [6, 8, 9]),  # died in run() of 7: 6 finished unreported, 8-9 not started
    (-1, 6, [7, 8, 9]),  # died between mini-batches: the next unreported one is charged
    (3, None, [6, 7, 8, 9]),  # a stale slot outside the lease charges nothing
])
def test_a_lost_lease_charges_one_mini_batch_and_requeues_the_rest(running, charged, unfinished):
    lease = Lease(first=5, count=5, attempt=1, next_batch=6)  # 5 reported
    assert lease.lost(running) == (charged, unfinished)


def test_work_hands_out_lost_mini_batches_first_then_retries_then_the_backlog():
    from collections import deque

    from orchestration.prs.backlog import UNBOUNDED, Backlog, WorkQueue

    work = WorkQueue(Backlog(deque([range(10, 40)]), UNBOUNDED))
    work.retry_next(3, attempt=2)  # a failed attempt waits behind what is queued
    work.requeue_first([7, 8], attempt=1)  # a lost worker's unreported mini-batches go first, in order
    leases = [work.next_lease(live_workers=2) for _ in range(4)]
    assert [(lease.first, lease.count, lease.attempt) for lease in leases] == [
        (7, 1, 1), (8, 1, 1), (3, 1, 2), (10, 3, 1)]  # then a guided lease: 30 // (4 x 2) = 3


def test_without_short_return_failures_an_empty_return_fails_items_but_not_its_mini_batch():
    """v2 with error_threshold -1: a run() that returns [] (a model trained per partition) is done."""
    accounting = Accounting(Limits(error_threshold=-1, allowed_failed_count=0,
                                   short_return_fails_mini_batch=False))
    accounting.finished(Shortfall(0, PARTIAL, 5, 0, ""))
    assert accounting.failed_items == 5 and not accounting.live_failed and accounting.reasons == {}
    assert accounting.breach(total_batches=1, all_scheduled=True) == ""
