"""Fault injection through worker processes: the runner keeps going, accounts for every item and loses or
duplicates nothing. test_scheduler.py checks the same rules in-process, with more cases (the percent
threshold only there: it is arithmetic on counts these tests already check)."""
import csv
import json
import os
import re
import subprocess
import sys
import time

from tests.conftest import clean_env
from tests.orchestration.prs.conftest import FAULTY, make_inputs, output_rows, run

KINDS = ["ok", "ok", "raise", "ok", "short", "ok", "hang", "ok", "exit", "ok", "flaky", "ok", "ok", "segv"]


def attempts(tmp_path):
    with (tmp_path / "out" / "logs" / "sys" / "job_report" / "processed_mini-batches.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_mixed_failures_complete_with_threshold_off(tmp_path, markers):
    names = make_inputs(tmp_path / "in", KINDS)
    summary = run(tmp_path, markers, run_invocation_timeout=1, run_max_try=2)

    assert summary.status == "Completed" and summary.exit_code == 0
    # Mini-batches of 2: [0,1] ok, [2,3] raises twice, [4,5] short, [6,7] hangs twice, [8,9] exits twice,
    # [10,11] flaky then fine, [12,13] segfaults twice.
    lost = {2, 3, 6, 7, 8, 9, 12, 13}
    expected = [n for i, n in enumerate(names) if i not in lost and KINDS[i] != "short"]
    assert output_rows(tmp_path) == expected  # every other row exactly once, in mini-batch order
    assert (summary.items.total, summary.items.succeeded, summary.items.failed) == (14, 5, 9)
    assert summary.items.not_processed == 0
    assert (summary.mini_batches.succeeded, summary.mini_batches.failed) == (2, 5)
    reasons = {f["mini_batch"]: f["reason"] for f in summary.failures}
    assert reasons[1] == "ValueError: cannot handle f02.txt"
    assert reasons[2] == "run() returned 1 of 2 items"
    assert reasons[3] == "TIMEOUT: run() exceeded RUN_INVOCATION_TIMEOUT=1s"
    assert reasons[4] == "CRASH: worker process died (code 3)"
    assert reasons[6] == "CRASH: worker process died (signal SIGSEGV)"
    assert 5 not in reasons  # flaky: the second attempt succeeded
    assert [f["items"] for f in summary.failures][0][0].endswith("f02.txt")

    rows = attempts(tmp_path)
    by_result = {}
    for row in rows:
        by_result.setdefault(row["result"], set()).add(int(row["mini_batch"]))
    assert by_result["TIMEOUT"] == {3} and by_result["CRASH"] == {4, 6} and by_result["PARTIAL"] == {2}
    assert sum(1 for r in rows if r["mini_batch"] == "3") == 2  # RUN_MAX_TRY attempts, no more
    assert {r["mini_batch"] for r in rows if r["result"] == "ERROR"} == {"1", "5"}
    saved = json.loads((tmp_path / "out" / "logs" / "summary.json").read_text())
    assert saved["items"] == {"total": 14, "succeeded": 5, "failed": 9, "not_processed": 0}
    errors = (tmp_path / "out" / "logs" / "user" / "error").rglob("*.txt")
    assert "Traceback" in "".join(p.read_text() for p in errors)


def test_small_error_threshold_fails_fast_naming_it(tmp_path, markers):
    make_inputs(tmp_path / "in", ["raise", "raise"] + ["ok"] * 40 + ["hang"] * 4)
    started = time.monotonic()
    summary = run(tmp_path, markers, error_threshold=1, run_max_try=1, mini_batch_size=1)

    assert time.monotonic() - started < 20  # the hanging files (600 s) are never waited for
    assert summary.status == "Failed" and summary.exit_code == 42
    assert summary.reason == "ERROR_THRESHOLD=1 exceeded: 2 items failed"
    assert not (tmp_path / "out" / "parallel_run_step.txt").exists()  # a failed job has no output
    items = summary.items
    assert items.succeeded + items.failed + items.not_processed == items.total == 46
    result = (tmp_path / "out" / "logs" / "job_result.txt").read_text()
    assert result.startswith("Failed: ERROR_THRESHOLD=1 exceeded")


def test_allowed_failed_count_counts_mini_batches(tmp_path, markers):
    make_inputs(tmp_path / "in", ["short", "ok", "short", "ok", "ok", "ok"])
    summary = run(tmp_path, markers, allowed_failed_count=1)
    assert summary.exit_code == 42
    assert summary.reason == "ALLOWED_FAILED_COUNT=1 exceeded: 2 mini-batches failed"


def test_init_failures_replace_workers_then_fail_with_the_traceback(tmp_path, markers):
    make_inputs(tmp_path / "in", ["ok"] * 4)
    summary = run(tmp_path, markers, environment_variables={"FAIL_INIT": "1"})
    assert summary.exit_code == 42
    # No worker starts after 3 x 2 consecutive failures; the other process may already be in its own
    # init() then, and fail too: 6 or 7 failures, depending on which of the two fails first.
    failures = int(re.match(r"init\(\) failed (\d+) times and no worker is left", summary.reason).group(1))
    assert failures in (6, 7)
    assert "RuntimeError: init exploded on purpose" in summary.reason
    assert summary.items.not_processed == 4


def test_odd_returns_are_written_as_str(tmp_path, markers):
    make_inputs(tmp_path / "in", ["unpicklable", "huge", "ok"])
    summary = run(tmp_path, markers)
    rows = output_rows(tmp_path)
    assert summary.items.succeeded == 3
    assert rows[0].startswith("<function run.<locals>.<lambda>") and len(rows[1]) == 8 * 1024 * 1024
    assert rows[2] == "f02.txt"


def test_a_base_exception_in_run_is_charged_to_its_own_mini_batch(tmp_path, markers):
    names = make_inputs(tmp_path / "in", ["ok", "ok", "ok", "interrupt", "ok", "ok"])
    summary = run(tmp_path, markers, mini_batch_size=1, run_max_try=1, process_count_per_node=1,
                  max_workers=1)
    assert output_rows(tmp_path) == [n for n in names if n != "f03.txt"]  # no good row lost
    (failure,) = summary.failures
    assert failure["mini_batch"] == 3 and failure["reason"] == "KeyboardInterrupt: interrupted at f03.txt"


def test_an_error_naming_a_file_whose_name_is_no_utf8_is_reported_as_raised(tmp_path, markers):
    folder = tmp_path / "in"
    folder.mkdir()
    with open(os.path.join(os.fsencode(folder), b"bad\xff.txt"), "w") as handle:
        handle.write("raise\n")
    (folder / "ok.txt").write_text("ok\n")
    result = subprocess.run(
        [sys.executable, "-m", "orchestration.prs", "--entry_script", str(FAULTY), "--input", str(folder),
         "--output", str(tmp_path / "out"), "--mini_batch_size", "1", "--run_max_try", "1",
         "--error_threshold", "-1", "--", "--marker_dir", str(markers)],
        env=clean_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "failed mini-batch 0: ValueError: cannot handle bad\\udcff.txt" in result.stdout
    assert "CRASH" not in result.stdout + result.stderr
    assert len(list(markers.glob("init-*"))) <= 2  # no worker died, so none was replaced
    errors = "".join(p.read_text() for p in (tmp_path / "out" / "logs" / "user" / "error").rglob("*.txt"))
    assert "ValueError: cannot handle bad\\udcff.txt" in errors
