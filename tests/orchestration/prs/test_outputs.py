"""append_row and summary_only outputs, tabular inputs, the logs layout and progress lines."""
import dataclasses
import json
import logging

import pytest

from orchestration.errors import Stopped, UsageError
from orchestration.prs.accounting import Accounting, Limits
from orchestration.prs.outputs import summarize
from orchestration.prs.state import StatePaths
from orchestration.settings import SettingsError, load_settings
from tests.conftest import run_module
from tests.orchestration.prs.conftest import (
    FAULTY, SCRIPTS, config, make_inputs, output_rows, run,
)


def test_summary_only_counts_rows_but_writes_no_file(tmp_path, markers):
    make_inputs(tmp_path / "in", ["ok", "short", "ok"])
    summary = run(tmp_path, markers, output_action="summary_only")
    assert summary.items.succeeded == 2 and summary.items.failed == 1
    assert summary.output_file is None and not (tmp_path / "out" / "parallel_run_step.txt").exists()


def test_logs_mirror_parallel_run_step(tmp_path, markers):
    make_inputs(tmp_path / "in", ["ok", "raise", "ok", "ok"])
    run(tmp_path, markers, run_max_try=1, process_count_per_node=1, max_workers=1)
    logs = tmp_path / "out" / "logs"
    assert (logs / "job_result.txt").read_text() == "Completed\n"
    assert "2 mini-batches created; 1 succeeded, 1 failed, 0 not processed." in \
        (logs / "job_progress_overview.txt").read_text()
    report = (logs / "sys" / "job_report" / "processed_mini-batches.csv").read_text().splitlines()
    assert report[0] == "mini_batch,attempt,items,succeeded,failed,result,node,process,elapsed_s,error"
    assert sorted(line.split(",")[5] for line in report[1:]) == ["ERROR", "SUCCESS"]
    error_log = logs / "user" / "error" / "0" / "process000.txt"
    assert "ValueError: cannot handle f01.txt" in error_log.read_text()
    assert "pid" in (logs / "sys" / "node" / "0" / "process000.txt").read_text()
    summary = json.loads((logs / "summary.json").read_text())
    assert summary["failures"][0]["reason"] == "ValueError: cannot handle f01.txt"


def test_no_partial_output_file_is_left_behind(tmp_path, markers):
    make_inputs(tmp_path / "in", ["ok"] * 3)
    run(tmp_path, markers)
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == [".prs-lock", ".prs-state", "logs", "parallel_run_step.txt"]


def test_tabular_csv_slices_never_cross_files_and_rows_are_space_separated(tmp_path, markers):
    import pandas as pd  # at use: every pytest-xdist worker collects this module

    folder = tmp_path / "in"
    folder.mkdir()
    frame = pd.DataFrame({"a": range(100), "b": [f"v{i}" for i in range(100)]})
    frame.to_csv(folder / "one.csv", index=False)
    pd.DataFrame({"a": range(100, 103), "b": ["x", "y", "z"]}).to_csv(folder / "two.csv", index=False)
    summary = run(tmp_path, markers, entry_script=SCRIPTS / "frame_entry.py", arguments=(),
                  input_type="tabular",
                  mini_batch_size=200)
    assert summary.items.total == 103 and summary.items.succeeded == 103
    rows = output_rows(tmp_path)
    assert rows[0].split(" ")[:2] == ["0", "v0"] and rows[-1] == "102 z 3"
    assert [r.split(" ")[0] for r in rows] == [str(i) for i in range(103)]
    batch_sizes = {int(r.split(" ")[2]) for r in rows}
    assert 3 in batch_sizes and max(batch_sizes) < 100  # one.csv was cut; two.csv is a slice of its own


def test_a_csv_row_with_a_line_break_in_a_quoted_field_is_one_row_in_one_mini_batch(tmp_path, markers):
    import pandas as pd  # at use: every pytest-xdist worker collects this module

    folder = tmp_path / "in"
    folder.mkdir()
    notes = ["two\nlines" if i % 3 == 0 else "one" for i in range(60)]
    pd.DataFrame({"a": range(60), "note": notes}).to_csv(folder / "quoted.csv", index=False)
    for _ in range(2):  # the same plan twice
        summary = run(tmp_path, markers, entry_script=SCRIPTS / "frame_entry.py", arguments=(),
                      input_type="tabular", mini_batch_size=7, output_action="summary_only")
        assert summary.items.total == 60 and summary.items.succeeded == 60
        assert summary.mini_batches.failed == 0 and summary.mini_batches.total > 20


def test_tabular_parquet_and_jsonl(tmp_path, markers):
    import pandas as pd  # at use: every pytest-xdist worker collects this module

    folder = tmp_path / "in"
    folder.mkdir()
    pd.DataFrame({"a": range(50)}).to_parquet(folder / "p.parquet", row_group_size=10)
    (folder / "q.jsonl").write_text("".join(json.dumps({"a": i}) + "\n" for i in range(50, 55)))
    summary = run(tmp_path, markers, entry_script=SCRIPTS / "frame_entry.py", arguments=(),
                  input_type="tabular",
                  mini_batch_size=1)
    assert summary.mini_batches.total == 10  # 5 parquet row groups + 5 one-line JSON-lines slices
    assert [int(r.split(" ")[0]) for r in output_rows(tmp_path)] == list(range(55))


def test_tabular_mini_batch_size_takes_the_sdk_syntax():
    assert load_settings(MINI_BATCH_SIZE="1024KB").mini_batch_size_value == 1048576
    with pytest.raises(SettingsError):
        load_settings(MINI_BATCH_SIZE="1.5MB")


def test_plain_progress_lines_when_not_on_a_terminal(tmp_path, markers, caplog):
    make_inputs(tmp_path / "in", ["ok"] * 6)
    with caplog.at_level(logging.INFO, logger="orchestration.prs.progress"):
        run(tmp_path, markers, progress_interval=0.0)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("progress:")]
    assert lines and lines[-1].startswith("progress: 3/3 mini-batches, 0 failed")


def test_a_progress_bar_on_a_terminal(monkeypatch):
    import io
    import sys

    from orchestration.prs.progress import Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    progress = Progress(interval=5.0)
    progress.update(done=3, failed=1, total=10)
    progress.close()
    shown = terminal.getvalue()
    assert "extract" in shown and "3/10" in shown and "failed=1" in shown and "mini-batch/s" in shown


def test_a_bad_tabular_file_stops_the_run_with_a_usage_error_and_no_orphans(tmp_path, markers):
    import os

    from orchestration.commands import UsageError

    def children() -> set[str]:  # this process's children, zombies included
        found = set()
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                stat = open(f"/proc/{pid}/stat").read()
            except OSError:
                continue
            if stat.rsplit(")", 1)[1].split()[1] == str(os.getpid()):
                found.add(pid)
        return found

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.csv").write_text("x\n1\n")
    (folder / "b.xlsx").write_bytes(b"not a table")
    before = children()  # e.g. the Azurite emulator started by other tests
    with pytest.raises(UsageError, match=r"b\.xlsx: expected one of \.csv, \.parquet, \.jsonl"):
        run(tmp_path, markers, entry_script=SCRIPTS / "frame_entry.py", arguments=(), input_type="tabular")
    assert children() - before == set()


def test_an_empty_input_completes_with_a_warning(tmp_path, markers, caplog):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / ".hidden").write_text("ok\n")
    with caplog.at_level(logging.WARNING):
        summary = run(tmp_path, markers)
    assert summary.status == "Completed" and summary.items.total == 0
    assert "no input items in" in caplog.text and "nothing was run" in caplog.text


def test_the_last_line_says_what_happened_the_exit_code_and_what_next(tmp_path, markers):
    from orchestration.prs.outputs import format_summary

    make_inputs(tmp_path / "in", ["ok", "raise"])
    completed = run(tmp_path, markers, mini_batch_size=1)
    assert format_summary(completed).splitlines()[-1] == (
        f"exit 0: completed with 1 failed items (see {tmp_path / 'out' / 'logs'}/summary.json)")
    failed = run(tmp_path, markers, mini_batch_size=1, error_threshold=0)
    last = format_summary(failed).splitlines()[-1]
    assert last.startswith("exit 42: failed; see ") and "--resume" in last
    interrupted = dataclasses.replace(failed, status="Interrupted", exit_code=130, planning_complete=False)
    lines = format_summary(interrupted).splitlines()
    assert lines[-1].startswith("exit 130: stopped; run again with --resume")
    assert "planned so far (stopped while listing the inputs)" in lines[1]


def test_a_huge_node_count_only_emulates_the_nodes_that_get_a_worker(tmp_path, markers):
    """NODE_COUNT has no upper bound in the settings; nothing is sized by it (a 40-digit count used to
    fail with OverflowError, a billion would have allocated gigabytes)."""
    make_inputs(tmp_path / "in", ["ok"] * 4)
    summary = run(tmp_path, markers, node_count=10**40, process_count_per_node=1, max_workers=2,
                  mini_batch_size=1)
    assert (summary.exit_code, summary.items.succeeded) == (0, 4)
    assert sorted(p.name for p in (tmp_path / "out" / "logs" / "sys" / "node").iterdir()) == ["0", "1"]


def test_a_stop_during_the_merge_leaves_no_output_logs_an_interrupted_run_and_a_resume_writes_it(
        tmp_path, markers):
    make_inputs(tmp_path / "in", ["ok"] * 6)
    assert run(tmp_path, markers).exit_code == 0
    finished = config(tmp_path, markers)
    finished = dataclasses.replace(finished, output=finished.output.resolve())
    out = finished.output
    (out / "parallel_run_step.txt").unlink()

    def stop() -> None:  # what the run's StopLatch does once SIGTERM has arrived
        raise Stopped("SIGTERM")

    summary = summarize(finished, StatePaths.of(out), out / "logs", ("Completed", "", 0),
                        Accounting(Limits()), 1.0, stop=stop)
    assert (summary.status, summary.exit_code, summary.output_file) == ("Interrupted", 143, None)
    assert "while the output was merged" in summary.reason and "--resume" in summary.reason
    assert (out / "logs" / "job_result.txt").read_text().startswith("Interrupted: stopped by SIGTERM")
    assert [p.name for p in out.iterdir() if "parallel_run_step" in p.name] == []  # no partial file
    assert run(tmp_path, markers, resume=True).exit_code == 0
    assert len(output_rows(tmp_path)) == 6


def test_the_parent_peak_memory_is_the_runners_own_not_that_of_the_process_that_started_it(tmp_path):
    make_inputs(tmp_path / "in", ["ok", "ok"])
    ballast = bytearray(400 * 2**20)  # this process's memory, which getrusage would count in the runner's
    ballast[::4096] = b"x" * len(ballast[::4096])  # touched: resident
    (tmp_path / "markers").mkdir()
    result = run_module("orchestration.prs", "--entry_script", str(FAULTY), "--input", "in",
                        "--output", "out", "--", "--marker_dir", str(tmp_path / "markers"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "out" / "logs" / "summary.json").read_text())
    assert 10 < summary["parent_peak_rss_mb"] < 300
    del ballast


def test_environment_variable_credentials_are_never_written_to_the_output(tmp_path, markers):
    make_inputs(tmp_path / "in", ["ok"] * 2)
    variables = {"STORAGE": "DefaultEndpointsProtocol=https;AccountKey=KEY-sentinel;EndpointSuffix=x",
                 "API_TOKEN": "TOKEN-sentinel", "DB_PASS": "PASS-sentinel",
                 "DATABASE_URL": "postgresql://etl:URL-sentinel@db/prod", "MODE": "fast"}
    arguments = ("--marker_dir", str(markers), "--api-key", "ARG-sentinel", "--conn",
                 "AccountName=a;AccountKey=ARGKEY-sentinel", "--password=EQ-sentinel")
    run(tmp_path, markers, environment_variables=variables, arguments=arguments)
    sentinels = [b"KEY-sentinel", b"TOKEN-sentinel", b"PASS-sentinel", b"URL-sentinel", b"ARG-sentinel",
                 b"EQ-sentinel"]
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file():
            text = path.read_bytes()
            assert not [s for s in sentinels if s in text], path
    written = json.loads((tmp_path / "out" / "logs" / "summary.json").read_text())["config"]
    assert written["environment_variables"] == {
        "STORAGE": "DefaultEndpointsProtocol=https;AccountKey=<hidden>;EndpointSuffix=x",
        "API_TOKEN": "<hidden>", "DB_PASS": "<hidden>", "DATABASE_URL": "postgresql://etl:<hidden>@db/prod",
        "MODE": "fast"}
    assert written["arguments"] == ["--marker_dir", str(markers), "--api-key", "<hidden>", "--conn",
                                    "AccountName=a;AccountKey=<hidden>", "--password=<hidden>"]
    with pytest.raises(UsageError, match="RESUME refused .*: --environment_variables differs"):
        run(tmp_path, markers, resume=True, environment_variables={**variables, "API_TOKEN": "new"},
            arguments=arguments)
