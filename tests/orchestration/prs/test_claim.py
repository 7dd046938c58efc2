"""The output folder: one run at a time, never overlapping the inputs, a clear word when unusable."""
import os
import signal
import subprocess
import sys
import time

import pytest

from orchestration.errors import UsageError
from orchestration.prs.claim import OutputUnusable, claim
from tests.conftest import clean_env
from tests.orchestration.prs.conftest import FAULTY, make_inputs, run


def cli(tmp_path, markers, output="out"):
    return [sys.executable, "-m", "orchestration.prs", "--entry_script", str(FAULTY), "--input",
            str(tmp_path / "in"), "--output", str(tmp_path / output), "--mini_batch_size", "1",
            "--local_max_workers", "1", "--node_count", "1", "--process_count_per_node", "1",
            "--", "--marker_dir", str(markers)]


def test_a_second_run_on_a_busy_output_is_refused_naming_the_holder(tmp_path, markers):
    make_inputs(tmp_path / "in", ["ok"] * 3)
    with claim(tmp_path / "out", (tmp_path / "in",)):
        second = subprocess.run(cli(tmp_path, markers), env=clean_env(), capture_output=True, text=True,
                                timeout=120)
    assert second.returncode == 2 and "Traceback" not in second.stderr
    assert f"is in use by another run (pid {os.getpid()})" in second.stderr
    assert not (tmp_path / "out" / ".prs-state").exists()  # the holder's state was not touched


def test_two_real_runs_on_one_output_never_interleave(tmp_path, markers):
    make_inputs(tmp_path / "in", ["hang"])
    first = subprocess.Popen(cli(tmp_path, markers), env=clean_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not list(markers.glob("init-*")) and time.monotonic() < deadline:  # the first run's worker
            time.sleep(0.05)
        second = subprocess.run(cli(tmp_path, markers), env=clean_env(), capture_output=True, text=True,
                                timeout=120)
        assert second.returncode == 2
        assert f"(pid {first.pid})" in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=30)
    assert first.returncode == 143


@pytest.mark.parametrize("output, expected", [
    ("in/out", "overlaps --input"),  # its logs would become input items
    ("in/../in", "overlaps --input"),
])
def test_an_output_overlapping_an_input_is_refused(tmp_path, markers, output, expected):
    make_inputs(tmp_path / "in", ["ok"] * 2)
    with pytest.raises(OutputUnusable, match=expected):
        run(tmp_path, markers, output=tmp_path / output)
    assert not (tmp_path / "in" / "out").exists()


def test_an_input_inside_the_output_is_refused(tmp_path, markers):
    make_inputs(tmp_path / "out" / "in", ["ok"])
    with pytest.raises(OutputUnusable, match="overlaps --input"):
        run(tmp_path, markers, inputs=(tmp_path / "out" / "in",))


@pytest.mark.parametrize("make_obstacle, expected", [
    (lambda root: (root / "out").write_text("a file"), "a file is in the way"),
    (lambda root: (root / "parent").write_text("a file"), "cannot create or write it"),
])
def test_an_unusable_output_path_is_one_clear_message(tmp_path, markers, make_obstacle, expected):
    make_inputs(tmp_path / "in", ["ok"])
    make_obstacle(tmp_path)
    target = "out" if "way" in expected else "parent/out"
    result = subprocess.run(cli(tmp_path, markers, output=target), env=clean_env(), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert expected in result.stderr


@pytest.mark.parametrize("foreign", ["logs/notes.txt", "parallel_run_step.txt"])
def test_the_runner_never_deletes_what_it_did_not_write(tmp_path, markers, foreign):
    make_inputs(tmp_path / "in", ["ok"] * 2)
    mine = tmp_path / "out" / foreign
    mine.parent.mkdir(parents=True)
    mine.write_text("the user's own file\n")
    with pytest.raises(UsageError, match="which no run of this runner wrote"):
        run(tmp_path, markers)
    assert mine.read_text() == "the user's own file\n"


def test_a_previous_runs_logs_and_output_are_replaced(tmp_path, markers):
    make_inputs(tmp_path / "in", ["ok"] * 2)
    assert run(tmp_path, markers).exit_code == 0
    stale = tmp_path / "out" / "logs" / "stale.txt"
    stale.write_text("from the first run's time\n")
    assert run(tmp_path, markers).exit_code == 0  # a fresh run in its own earlier folder
    assert not stale.exists() and (tmp_path / "out" / "parallel_run_step.txt").exists()


def test_another_output_file_name_after_a_run_never_overwrites_a_file_no_run_wrote(tmp_path, markers):
    make_inputs(tmp_path / "in", ["ok"] * 2)
    report = tmp_path / "out" / "report.csv"
    report.parent.mkdir(parents=True)
    report.write_text("hand-written\n")
    first = run(tmp_path, markers)
    assert first.exit_code == 0 and (tmp_path / "out" / "parallel_run_step.txt").exists()
    with pytest.raises(UsageError, match="report.csv already there, which no run of this runner wrote"):
        run(tmp_path, markers, append_row_file_name="report.csv")
    assert report.read_text() == "hand-written\n"
    again = run(tmp_path, markers, append_row_file_name="rows.txt")  # the first run's file is replaced
    assert again.exit_code == 0 and not (tmp_path / "out" / "parallel_run_step.txt").exists()


def test_a_logs_folder_replaced_by_a_link_is_refused_and_its_target_kept(tmp_path, markers):
    make_inputs(tmp_path / "in", ["ok"] * 2)
    assert run(tmp_path, markers).exit_code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("mine")
    logs = tmp_path / "out" / "logs"
    import shutil

    shutil.rmtree(logs)
    logs.symlink_to(elsewhere)
    with pytest.raises(UsageError, match="logs already there, which no run of this runner wrote"):
        run(tmp_path, markers)
    assert (elsewhere / "keep.txt").read_text() == "mine"


def test_a_copied_output_folder_never_deletes_the_original_runs_file(tmp_path, markers):
    import shutil

    make_inputs(tmp_path / "in", ["ok"] * 2)
    assert run(tmp_path, markers, output=tmp_path / "A").exit_code == 0
    shutil.copytree(tmp_path / "A", tmp_path / "B")
    assert run(tmp_path, markers, output=tmp_path / "B", append_row_file_name="other.txt").exit_code == 0
    assert (tmp_path / "A" / "parallel_run_step.txt").exists()  # A's own: B's copied marker names B's
    assert run(tmp_path, markers, output=tmp_path / "B").exit_code == 0  # B's copy of it was B's run's
