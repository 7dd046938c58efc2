"""The runner's command line: flags named after ParallelRunConfig, defaults from the settings."""
import os

import pytest

from tests.conftest import invoke, run_module
from tests.orchestration.prs.conftest import FAULTY, make_inputs


def test_flags_override_settings_and_user_arguments_follow_the_double_dash(tmp_path):
    make_inputs(tmp_path / "in", ["ok", "short", "ok", "ok"])
    markers = tmp_path / "m"
    markers.mkdir()
    result = run_module(  # the whole command, as a user starts it
        "orchestration.prs", "--entry_script", str(FAULTY), "--input", "in", "--output", "out",
        "--mini_batch_size", "3", "--error_threshold", "-1", "--append_row_file_name", "rows.txt",
        "--", "--marker_dir", str(markers), cwd=tmp_path, NODE_COUNT="1", PROCESS_COUNT_PER_NODE="1",
    )
    assert result.returncode == 0, result.stderr
    assert "items: 3 succeeded, 1 failed, 0 not processed of 4" in result.stdout
    assert "mini-batches: 1 succeeded, 1 failed, 0 not processed of 2" in result.stdout
    assert (tmp_path / "out" / "rows.txt").read_text() == "f00.txt\nf02.txt\nf03.txt\n"


def test_a_failed_job_exits_42(tmp_path):
    make_inputs(tmp_path / "in", ["raise", "ok"])
    result = invoke(
        "orchestration.prs.cli", "--entry_script", str(FAULTY), "--input", "in", "--output", "out",
        "--error_threshold", "0", "--run_max_try", "1", "--", "--marker_dir", str(tmp_path), cwd=tmp_path,
    )
    assert result.returncode == 42
    assert "Failed: ERROR_THRESHOLD=0 exceeded: 2 items failed" in result.stdout


def test_reserved_arguments_and_bad_flags_exit_2(tmp_path):
    make_inputs(tmp_path / "in", ["ok"])
    reserved = invoke("orchestration.prs.cli", "--entry_script", str(FAULTY), "--input", "in", "--output",
                      "out", "--", "--mini_batch_size", "3", cwd=tmp_path)
    assert reserved.returncode == 2 and "--mini_batch_size is reserved by ParallelRunStep" in reserved.stderr
    bad = invoke("orchestration.prs.cli", "--entry_script", str(FAULTY), "--input", "in", "--output", "out",
                 "--mini_batch_size", "1.5MB", "--run_max_try", "0", cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "MINI_BATCH_SIZE" in bad.stderr and "RUN_MAX_TRY" in bad.stderr
    missing = invoke("orchestration.prs.cli", "--entry_script", "nope.py", "--input", "in", "--output", "out",
                     cwd=tmp_path)
    assert missing.returncode == 2 and "entry script nope.py does not exist" in missing.stderr


@pytest.mark.parametrize("source, expected", [
    ("def init():\n    pass\n\ndef run(batch)\n    return batch\n", "line 4: SyntaxError"),
    ("def init():\n    pass\n", "has no run() function"),
])
def test_an_entry_script_that_can_never_start_is_one_message_before_any_worker(tmp_path, source, expected):
    script = tmp_path / "entry.py"
    script.write_text(source)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("x\n")
    result = invoke("orchestration.prs.cli", "--entry_script", str(script), "--input", "in",
                    "--output", "out", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert expected in result.stderr and str(script) in result.stderr
    assert "init() failed" not in result.stderr and not (tmp_path / "out").exists()


def _symlink_loop(folder):
    (folder / "loop_a").symlink_to("loop_b")
    (folder / "loop_b").symlink_to("loop_a")
    return "loop_a: Too many levels of symbolic links; fix or remove it"


def _dangling_symlink(folder):
    (folder / "gone.txt").symlink_to("nowhere.txt")
    return "gone.txt is a broken symbolic link; fix or remove it"


def _path_beyond_path_max(folder):
    fd, length = os.open(folder, os.O_RDONLY), len(str(folder))
    while length < 4200:  # PATH_MAX is 4096: each folder is made relative to its parent's descriptor
        os.mkdir("d" * 200, dir_fd=fd)
        fd, parent, length = os.open("d" * 200, os.O_RDONLY, dir_fd=fd), fd, length + 201
        os.close(parent)
    os.close(fd)
    return "characters): File name too long; fix or move it"


@pytest.mark.parametrize("make_bad_entry", [_symlink_loop, _dangling_symlink, _path_beyond_path_max])
def test_an_input_that_cannot_be_reached_is_refused_by_name(tmp_path, make_bad_entry):
    make_inputs(tmp_path / "in", ["ok", "ok"])
    expected = make_bad_entry(tmp_path / "in")
    result = invoke("orchestration.prs.cli", "--entry_script", str(FAULTY), "--input", "in", "--output",
                    "out", "--", "--marker_dir", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"exit 2: input {'folder ' * (make_bad_entry is _path_beyond_path_max)}"
                           f"{tmp_path / 'in'}") and last.endswith(expected)
