"""The scheduler's rules, with its workers scripted in-process (scripted.py): ordering, retries,
thresholds, timeouts, lost workers, init failures and resume, each in milliseconds. test_faults.py and
test_resume.py run the same behaviours through worker processes, a few cases each."""
import csv

from orchestration.prs.backlog import guided_lease_size
from orchestration.prs.scheduler import run_parallel
from tests.orchestration.prs.conftest import config, make_inputs, output_rows
from tests.orchestration.prs.scripted import CLOCK_START, ScriptedExecutor

KINDS = ["ok", "ok", "raise", "ok", "short", "ok", "hang", "ok", "exit", "ok", "flaky", "ok", "ok", "segv"]


def run(tmp_path, made=None, failing_inits=0, **values):
    """A run whose workers are scripted; the executor is appended to `made`, for what it saw."""
    def executor(*args):
        made_one = ScriptedExecutor(*args, failing_inits=failing_inits)
        if made is not None:
            made.append(made_one)
        return made_one
    return run_parallel(config(tmp_path, tmp_path, **values), executor=executor)


def attempts(tmp_path):
    with (tmp_path / "out" / "logs" / "sys" / "job_report" / "processed_mini-batches.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_every_failure_is_retried_to_its_limit_and_every_other_row_arrives_once_in_order(tmp_path):
    names = make_inputs(tmp_path / "in", KINDS)
    summary = run(tmp_path, run_invocation_timeout=1, run_max_try=2)

    assert summary.status == "Completed" and summary.exit_code == 0
    lost = {2, 3, 6, 7, 8, 9, 12, 13}  # mini-batches of 2 with raise, hang, exit, segv: twice each
    assert output_rows(tmp_path) == [n for i, n in enumerate(names) if i not in lost and KINDS[i] != "short"]
    assert (summary.items.total, summary.items.succeeded, summary.items.failed) == (14, 5, 9)
    assert (summary.mini_batches.succeeded, summary.mini_batches.failed) == (2, 5)
    assert {f["mini_batch"]: f["reason"] for f in summary.failures} == {
        1: "ValueError: cannot handle f02.txt", 2: "run() returned 1 of 2 items",
        3: "TIMEOUT: run() exceeded RUN_INVOCATION_TIMEOUT=1s", 4: "CRASH: worker process died (code 3)",
        6: "CRASH: worker process died (signal SIGSEGV)"}
    results = [(int(row["mini_batch"]), row["attempt"], row["result"]) for row in attempts(tmp_path)]
    assert sorted(results) == [
        (0, "1", "SUCCESS"), (1, "1", "ERROR"), (1, "2", "ERROR"), (2, "1", "PARTIAL"),
        (3, "1", "TIMEOUT"), (3, "2", "TIMEOUT"), (4, "1", "CRASH"), (4, "2", "CRASH"),
        (5, "1", "ERROR"), (5, "2", "SUCCESS"), (6, "1", "CRASH"), (6, "2", "CRASH")]


def test_leases_shrink_to_single_mini_batches_at_the_end_and_a_retry_goes_out_next_alone(tmp_path):
    kinds = ["ok"] * 200
    kinds[150] = "flaky"
    names = make_inputs(tmp_path / "in", kinds)
    made = []
    summary = run(tmp_path, made, mini_batch_size=1)

    assert summary.exit_code == 0 and output_rows(tmp_path) == sorted(names)
    leases = made[0].leases
    first_attempts = [(first, count) for first, count, attempt in leases if attempt == 1]
    given = sorted(batch for first, count in first_attempts for batch in range(first, first + count))
    assert given == list(range(200))
    assert first_attempts[0] == (0, guided_lease_size(200, 2))  # large while much remains ...
    assert [count for _, count, _ in leases[-4:]] == [1, 1, 1, 1]  # ... single at the end
    flaky = sorted(names).index("f150.txt")  # the listing's order is the names' order
    retry = leases.index((flaky, 1, 2))  # its second attempt, alone, before any new lease
    assert all(first > flaky for first, _, attempt in leases[retry + 1:] if attempt == 1)
    assert made[0].ran.count(flaky) == 2 and len(made[0].ran) == 201


def test_the_error_threshold_stops_the_run_at_once_without_waiting_on_hangs(tmp_path):
    make_inputs(tmp_path / "in", ["raise", "raise"] + ["ok"] * 40 + ["hang"] * 4)
    made = []
    summary = run(tmp_path, made, error_threshold=1, run_max_try=1, mini_batch_size=1)

    assert summary.status == "Failed" and summary.exit_code == 42
    assert summary.reason == "ERROR_THRESHOLD=1 exceeded: 2 items failed"
    assert made[0].clock - CLOCK_START < 30  # RUN_INVOCATION_TIMEOUT never passed on the run's clock
    items = summary.items
    assert items.succeeded + items.failed + items.not_processed == items.total == 46
    assert not (tmp_path / "out" / "parallel_run_step.txt").exists()


def test_allowed_failed_count_counts_mini_batches_and_a_percent_waits_until_all_are_scheduled(tmp_path):
    make_inputs(tmp_path / "in", ["short", "ok", "short", "ok", "ok", "ok"])
    summary = run(tmp_path, allowed_failed_count=1)
    assert summary.reason == "ALLOWED_FAILED_COUNT=1 exceeded: 2 mini-batches failed"

    make_inputs(tmp_path / "in", ["short", "ok"] + ["ok"] * 6)
    assert run(tmp_path, allowed_failed_percent=30).exit_code == 0  # 1 of 4 = 25 %
    summary = run(tmp_path, allowed_failed_percent=20)
    assert summary.reason == "ALLOWED_FAILED_PERCENT=20 exceeded: 25.0% of mini-batches failed"


def test_a_timeout_charges_only_the_running_mini_batch_and_a_new_worker_takes_the_rest(tmp_path):
    names = make_inputs(tmp_path / "in", ["ok", "hang", "ok", "ok", "ok", "ok"])
    made = []
    summary = run(tmp_path, made, mini_batch_size=1, max_workers=1, process_count_per_node=1, run_max_try=1,
                  run_invocation_timeout=7)

    assert summary.exit_code == 0 and output_rows(tmp_path) == [n for n in names if n != "f01.txt"]
    assert (summary.items.succeeded, summary.items.failed) == (5, 1)
    rows = attempts(tmp_path)
    timed_out = [row for row in rows if row["result"] == "TIMEOUT"]
    assert [(row["mini_batch"], row["process"]) for row in timed_out] == [("1", "process000")]
    assert float(timed_out[0]["elapsed_s"]) >= 7  # on the run's clock
    assert {row["process"] for row in rows if int(row["mini_batch"]) > 1} == {"process001"}  # its replacement
    assert sorted(made[0].ran) == list(range(6))  # the rest of the lease was no attempt: each ran once


def test_a_worker_that_dies_mid_lease_is_charged_one_mini_batch_and_the_rest_run_once(tmp_path):
    names = make_inputs(tmp_path / "in", ["ok", "ok", "exit", "ok", "ok", "ok"])
    made = []
    summary = run(tmp_path, made, mini_batch_size=1, max_workers=1, process_count_per_node=1, run_max_try=1)

    assert output_rows(tmp_path) == [n for n in names if n != "f02.txt"]
    assert [f["reason"] for f in summary.failures] == ["CRASH: worker process died (code 3)"]
    assert sorted(made[0].ran) == list(range(6))


def test_failed_inits_replace_workers_until_a_node_has_failed_three_times_per_process_in_a_row(tmp_path):
    make_inputs(tmp_path / "in", ["ok"] * 4)
    made = []
    summary = run(tmp_path, made, failing_inits=5)  # 1 node x 2 processes: it gives up at 6 in a row
    assert summary.exit_code == 0 and made[0].launched == 7  # each failure was replaced: 2 + 5

    made = []
    summary = run(tmp_path, made, failing_inits=100)
    # The fifth failure started a seventh worker; none started after the sixth, and the seventh failed.
    assert summary.exit_code == 42 and made[0].launched == 7
    assert summary.reason == ("init() failed 7 times and no worker is left; last error:\n"
                              "Traceback: init exploded")
    assert summary.items.not_processed == 4


def test_resume_runs_only_what_the_stopped_run_left_and_equals_a_clean_run(tmp_path):
    make_inputs(tmp_path / "in", ["ok"] * 4 + ["raise"] + ["ok"] * 5)
    made = []
    first = run(tmp_path, made, mini_batch_size=1, error_threshold=0, run_max_try=1, max_workers=1,
                process_count_per_node=1)
    assert first.exit_code == 42
    done_first = set(made[0].ran) - {4}

    resumed = run(tmp_path, made, mini_batch_size=1, error_threshold=-1, run_max_try=1, resume=True)
    assert resumed.status == "Completed" and (resumed.items.succeeded, resumed.items.failed) == (9, 1)
    assert sorted(made[1].ran) == sorted(set(range(10)) - done_first)  # nothing run twice
    resumed_rows = output_rows(tmp_path)
    run(tmp_path, mini_batch_size=1, error_threshold=-1, run_max_try=1)
    assert resumed_rows == output_rows(tmp_path)
