"""--container: the `docker run` a worker or a command node gets, and a clear refusal before anything runs.
(Runs in the image itself: tests/docker/built/test_container_runs.py, under `make docker-test`.)"""
import os
from pathlib import Path

from orchestration.paths import SRC
from orchestration.prs.config import RunConfig
from orchestration.prs.container import LABEL, Containers, docker_run, mounts_of
from tests.conftest import run_module


def test_a_path_both_read_and_written_is_mounted_once_and_writable(tmp_path):
    (tmp_path / "out").mkdir()
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "out")
    assert mounts_of([tmp_path / "in", link], [tmp_path / "out"]) == {tmp_path / "in": False,
                                                                      tmp_path / "out": True}


def test_the_container_runs_as_the_caller_with_each_path_where_it_is_here_and_no_host_environment():
    argv = docker_run("img:1", "toolkit-x-1", "x", {Path("/data/in"): False, Path("/data/out"): True},
                      Path("/data/out"), {"GREETING": "hi"}, ["python", "-c", "pass"])
    assert argv[:4] == ["docker", "run", "--rm", "--init"]
    assert f"--user={os.getuid()}:{os.getgid()}" in argv and f"--label={LABEL}=x" in argv
    assert "--volume=/data/in:/data/in:ro" in argv and "--volume=/data/out:/data/out:rw" in argv
    assert [a for a in argv if a.startswith("--env=")] == ["--env=HOME=/tmp", "--env=GREETING=hi"]
    assert argv[-4:] == ["img:1", "python", "-c", "pass"]


def test_a_runs_workers_get_the_toolkit_the_script_and_inputs_read_only_and_the_output_writable(tmp_path):
    config = RunConfig(entry_script=tmp_path / "code" / "entry.py", inputs=(tmp_path / "in",),
                       output=tmp_path / "out", mini_batch_size=1, append_row_to=tmp_path / "rows" / "r.txt",
                       container="img:1")
    containers = Containers.for_run(config)
    try:
        assert containers.mounts == {SRC: False, tmp_path / "code": False, tmp_path / "in": False,
                                     tmp_path / "out": True, tmp_path / "rows": True}
        argv = containers.command("toolkit-x-1", containers.sockets / "1.sock")
        assert f"--volume={containers.sockets}:{containers.sockets}:rw" in argv
        assert f"--env=PYTHONPATH={SRC}" in argv
    finally:
        containers.close()
    assert not containers.sockets.exists()


def test_a_missing_image_or_engine_is_one_line_and_exit_2_before_anything_runs(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("x")
    result = run_module("orchestration.prs", "--entry_script", str(SRC / "steps" / "extract_entry.py"),
                        "--input", "in", "--output", "out", "--container", "no-such-image:never",
                        cwd=tmp_path)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("exit 2: --container no-such-image:never: ") and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_python_and_container_together_are_refused(tmp_path):
    (tmp_path / "in").mkdir()
    result = run_module("orchestration.prs", "--entry_script", str(SRC / "steps" / "extract_entry.py"),
                        "--input", "in", "--output", "out", "--container", "img", "--python", "python3",
                        cwd=tmp_path)
    assert result.returncode == 2 and "give one; the container runs its own python" in result.stderr
