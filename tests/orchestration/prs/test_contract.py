"""The entry-script contract: the same script behaves locally as under ParallelRunStep."""
from pathlib import Path

from tests.orchestration.prs.conftest import SCRIPTS, make_inputs, output_rows, run


def init_records(markers: Path) -> list[list[str]]:
    return [p.read_text().split("\n") for p in sorted(markers.glob("init-*"))]


def test_init_once_per_worker_shutdown_at_the_end_and_entry_script_members(tmp_path, markers, monkeypatch):
    for secret in ("AML_STORAGE_ACCOUNT_KEY", "AZURE_CLIENT_SECRET", "AZURE_STORAGE_CONNECTION_STRING"):
        monkeypatch.setenv(secret, "sentinel")  # the parent has them; Azure ML's nodes do not
    make_inputs(tmp_path / "in", ["ok"] * 8)
    summary = run(tmp_path, markers, node_count=2, process_count_per_node=1,
                  environment_variables={"GREETING": "hello"},
                  arguments=("--marker_dir", str(markers), "--x", "1"))
    assert summary.status == "Completed"
    inits = init_records(markers)
    assert len(inits) == 2 and len(list(markers.glob("shutdown-*"))) == 2
    out = tmp_path / "out"
    for agent, log_dir, output_dir, working_dir, cwd, argv, bi_output, greeting, secrets in inits:
        assert agent == "process000"  # one process on each of the two emulated nodes
        node = Path(log_dir).name
        assert Path(log_dir) == out / "logs" / "user" / "entry_script_log" / node
        assert output_dir == bi_output == str(out)
        assert Path(cwd) == Path(working_dir) / node / agent  # each worker works in a folder of its own
        assert "--mini_batch_size 2" in argv and "--error_threshold -1" in argv
        assert argv.endswith("--marker_dir " + str(markers) + " --x 1 --input_fds_0 input_0")
        assert greeting == "hello" and secrets == ""
    assert sorted(Path(i[1]).name for i in inits) == ["0", "1"]  # node ids in the log paths
    for node in ("0", "1"):
        log = (out / "logs" / "user" / "entry_script_log" / node / "process000.log.txt").read_text()
        assert "init done in process000" in log
    assert (summary.workers, summary.emulated_processes, summary.max_workers) == (2, 2, 2)


def test_workers_are_capped_by_the_local_maximum(tmp_path, markers):
    make_inputs(tmp_path / "in", ["ok"] * 4)
    summary = run(tmp_path, markers, node_count=3, process_count_per_node=2, max_workers=1)
    assert (summary.workers, summary.emulated_processes, summary.max_workers) == (1, 6, 1)
    assert len(init_records(markers)) == 1
    overview = (tmp_path / "out" / "logs" / "job_progress_overview.txt").read_text()
    assert "1 worker processes for 6 emulated (local maximum 1)" in overview


def test_run_gets_a_mini_batch_context_when_it_takes_two_arguments(tmp_path, markers):
    make_inputs(tmp_path / "in", ["ok"] * 5)
    run(tmp_path, markers, entry_script=SCRIPTS / "context_entry.py", arguments=())
    assert output_rows(tmp_path) == ["0:f00.txt", "0:f01.txt", "1:f02.txt", "1:f03.txt", "2:f04.txt"]


def test_inputs_are_split_separately_and_never_mixed(tmp_path, markers):
    make_inputs(tmp_path / "in", ["ok"] * 3)
    make_inputs(tmp_path / "in2", ["ok"] * 3)
    summary = run(tmp_path, markers, entry_script=SCRIPTS / "context_entry.py", arguments=(),
                  inputs=(tmp_path / "in", tmp_path / "in2"))
    assert summary.mini_batches.total == 4
    assert output_rows(tmp_path) == [
        "0:f00.txt", "0:f01.txt", "1:f02.txt", "2:f00.txt", "2:f01.txt", "3:f02.txt"
    ]
