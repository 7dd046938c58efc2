"""--container: the `docker run` a worker or a command node gets, and a clear refusal before anything runs.
(Runs in the image itself: tests/docker/built/test_container_runs.py, under `make docker-test`.)"""
import os
from pathlib import Path

from orchestration.paths import SRC
from orchestration.prs.config import RunConfig
from orchestration.errors import EXIT_RUN_FAILED
from orchestration.prs.container import LABEL, Containers, argument_paths, docker_run, mounts_of
from tests.conftest import invoke


def test_a_path_both_read_and_written_is_mounted_once_and_writable(tmp_path):
    (tmp_path / "out").mkdir()
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "out")
    assert mounts_of([tmp_path / "in", link], [tmp_path / "out"]) == {tmp_path / "in": False,
                                                                      tmp_path / "out": True}


def test_the_container_runs_as_the_caller_with_each_path_where_it_is_here_and_no_host_environment():
    argv = docker_run("img:1", "toolkit-x-1", "x", {Path("/data/in"): False, Path("/data/a:b,c"): True},
                      Path("/data/in"), ["GREETING"], ["python", "-c", "pass"])
    assert argv[:4] == ["docker", "run", "--rm", "--init"]
    assert f"--user={os.getuid()}:{os.getgid()}" in argv and f"--label={LABEL}=x" in argv
    assert "--mount=type=bind,source=/data/in,target=/data/in,readonly" in argv
    # a colon is fine in --mount; a comma is quoted as the CSV field it is
    assert '--mount=type=bind,"source=/data/a:b,c","target=/data/a:b,c"' in argv
    # by name only: the value comes from the client's environment and never shows in a process list
    assert [a for a in argv if a.startswith("--env=")] == ["--env=HOME=/tmp", "--env=GREETING"]
    assert argv[-4:] == ["img:1", "python", "-c", "pass"]


def test_existing_absolute_paths_among_the_arguments_are_mounted_but_never_a_top_folder(tmp_path):
    (tmp_path / "model.pkl").write_text("m")
    arguments = ("--model", str(tmp_path / "model.pkl"), f"--out={tmp_path}", "--missing", "/no/such/path",
                 "--root", "/", "--usr", "/usr", "--count", "3")
    assert argument_paths(arguments) == [tmp_path / "model.pkl", tmp_path]


def test_a_runs_workers_get_the_toolkit_the_script_and_inputs_read_only_and_the_output_writable(tmp_path):
    (tmp_path / "model").mkdir()
    config = RunConfig(entry_script=tmp_path / "code" / "entry.py", inputs=(tmp_path / "in",),
                       output=tmp_path / "out", mini_batch_size=1, append_row_to=tmp_path / "rows" / "r.txt",
                       arguments=("--model", str(tmp_path / "model")), container="img:1")
    containers = Containers.for_run(config)
    assert containers.mounts == {SRC: False, tmp_path / "code": False, tmp_path / "in": False,
                                 tmp_path / "out": True, tmp_path / "rows": True, tmp_path / "model": True}
    argv = containers.command("toolkit-x-1", tmp_path / "1.sock") if containers.sockets else None
    assert argv is None  # the sockets' folder is made with the first worker, not before
    containers.sockets = tmp_path / "sockets"
    argv = containers.command("toolkit-x-1", containers.sockets / "1.sock")
    assert f"--mount=type=bind,source={containers.sockets},target={containers.sockets}" in argv
    assert "--env=PYTHONPATH" in argv and argv[-1] == str(containers.sockets / "1.sock")


def test_a_missing_image_or_engine_is_one_line_and_exit_2_before_anything_runs(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("x")
    result = invoke("orchestration.prs.cli", "--entry_script", str(SRC / "steps" / "extract_entry.py"),
                    "--input", "in", "--output", "out", "--container", "no-such-image:never",
                    cwd=tmp_path)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("exit 2: --container no-such-image:never: ") and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_python_and_container_together_are_refused(tmp_path):
    (tmp_path / "in").mkdir()
    result = invoke("orchestration.prs.cli", "--entry_script", str(SRC / "steps" / "extract_entry.py"),
                    "--input", "in", "--output", "out", "--container", "img", "--python", "python3",
                    cwd=tmp_path)
    assert result.returncode == 2 and "give one; the container runs its own python" in result.stderr


FAILING_DOCKER = """\
#!/bin/sh
# docker as it answers when the engine accepts the image but cannot start a worker's container
case "$1 $2 $3" in
  "image inspect"*) echo sha256:0; exit 0 ;;
  "run --rm --init") echo "docker: Error response from daemon: invalid mount config" >&2; exit 125 ;;
  "run --rm"*) exit 0 ;;  # the image check
  *) exit 0 ;;  # ps, rm
esac
"""


def test_a_worker_container_that_never_starts_is_a_counted_failure_not_a_crash(tmp_path):
    bin_folder = tmp_path / "bin"
    bin_folder.mkdir()
    (bin_folder / "docker").write_text(FAILING_DOCKER)
    (bin_folder / "docker").chmod(0o755)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("x")
    result = invoke("orchestration.prs.cli", "--entry_script", str(SRC / "steps" / "extract_entry.py"),
                    "--input", "in", "--output", "out", "--container", "img:1", "--node_count", "1",
                    "--process_count_per_node", "1", cwd=tmp_path,
                    PATH=f"{bin_folder}{os.pathsep}{os.environ['PATH']}")
    assert "Traceback" not in result.stderr
    assert result.returncode == EXIT_RUN_FAILED, result.stderr  # its node gave up on init(), as on Azure ML
    assert "did not connect (docker run exited 125)" in result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith(f"exit {EXIT_RUN_FAILED}: ")


def test_a_local_python_setting_does_not_stand_in_the_way_of_a_container(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / ".env").write_text("LOCAL_PYTHON=python3\n")
    result = invoke("orchestration.prs.cli", "--entry_script", str(SRC / "steps" / "extract_entry.py"),
                    "--input", "in", "--output", "out", "--container", "no-such-image:never",
                    cwd=tmp_path)
    assert result.returncode == 2 and "give one" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("exit 2: --container no-such-image:never: ")
