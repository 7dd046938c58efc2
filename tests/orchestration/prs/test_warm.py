"""Workers started ahead of the runner's imports: the prediction, and their adoption by real runs."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from orchestration.paths import SRC
from orchestration.prs import warm
from orchestration.prs.warm import WarmWorkers, predicted_workers, read_dotenv, start_worker
from orchestration.settings import Settings, load_settings
from tests.orchestration.prs.conftest import make_inputs, output_rows, run

REGULAR = ["--entry_script", "e.py", "--input", "in", "--output", "out"]


@pytest.mark.parametrize("argv, environ, dotenv, expected", [
    (REGULAR, {}, {}, 2),  # the settings' defaults: 2 nodes x 2 processes, capped by 2 CPUs
    (REGULAR + ["--process_count_per_node", "1", "--node_count", "1"], {}, {}, 1),
    (REGULAR + ["--process_count_per_node=3", "--node_count=1", "--local_max_workers=8"], {}, {}, 2),  # CPUs
    (REGULAR + ["--process_count_per_node", "99999", "--local_max_workers", "99999"], {}, {}, 2),
    (REGULAR + ["--node_count", "²"], {}, {}, 2),  # a digit to str.isdigit, not to int()
    (REGULAR, {"NODE_COUNT": "1", "PROCESS_COUNT_PER_NODE": "1"}, {"NODE_COUNT": "2"}, 1),  # env wins
    (REGULAR, {"LOCAL_MAX_WORKERS": "1"}, {}, 1),
    (REGULAR, {}, {"NODE_COUNT": "1", "PROCESS_COUNT_PER_NODE": "1"}, 1),
    (REGULAR + ["--node_count", "x"], {}, {}, 2),  # not a number: the settings will say so; guess the default
    (REGULAR + ["--", "--node_count", "1"], {}, {}, 2),  # the entry script's argument, not the runner's
    (REGULAR + ["--help"], {}, {}, 0),
    (["--job", "job.yml", "--output", "out"], {}, {}, 0),
    (["--input", "in", "--output", "out"], {}, {}, 0),  # a usage error is coming
    (REGULAR + ["--python", "python3.8"], {}, {}, 0),  # only the toolkit's own interpreter is warmed
    (REGULAR, {"LOCAL_PYTHON": "python3.8"}, {}, 0),
    (REGULAR + ["--container", "img:1"], {}, {}, 0),  # its workers are containers of the image
])
def test_the_prediction_follows_flags_then_environment_then_dotenv(argv, environ, dotenv, expected):
    assert predicted_workers(argv, environ, dotenv, cpu_count=2) == expected


def test_the_predicted_defaults_are_the_settings_defaults():
    assert warm.DEFAULT_COUNTS == {name: Settings.model_fields[name].default for name in warm.DEFAULT_COUNTS}
    assert set(warm.DEFAULT_COUNTS) == {"node_count", "process_count_per_node", "local_max_workers"}


def test_dotenv_lines_are_read_as_the_settings_read_them(tmp_path: Path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("# compute\nnode_count=3\nexport PROCESS_COUNT_PER_NODE = '4'  # per node\n"
                      "LOCAL_MAX_WORKERS\n")
    assert read_dotenv(dotenv) == {"NODE_COUNT": "3", "PROCESS_COUNT_PER_NODE": "4"}
    settings = load_settings(dotenv)  # python-dotenv's reading, through the settings
    assert (settings.node_count, settings.process_count_per_node) == (3, 4)
    assert read_dotenv(tmp_path / "missing") == {}


def test_a_foreign_interpreter_adopts_no_warm_worker():
    workers = WarmWorkers(waiting=[start_worker(None)])
    assert workers.adopt(Path("/usr/bin/python3.8")) is None
    assert len(workers.waiting) == 1
    workers.reap()
    assert workers.waiting == [] and workers.discarded == []


def test_a_warm_worker_killed_while_it_waited_is_not_adopted():
    dead, alive = start_worker(None), start_worker(None)
    dead[0].kill()
    dead[0].wait()
    workers = WarmWorkers(waiting=[dead, alive])
    assert workers.adopt(Path(sys.executable).absolute()) == alive
    assert workers.adopt(None) is None
    alive[1].close()
    assert alive[0].wait(timeout=10) == 0  # end-of-file where its spec would have been: a quiet exit


@pytest.mark.parametrize("text", ["9" * 5000, "²", "①", "+2", "3.0", ""])
def test_no_value_crashes_the_prediction(text):
    environ, dotenv = {"NODE_COUNT": text}, {"PROCESS_COUNT_PER_NODE": text}
    assert predicted_workers(REGULAR, environ, dotenv, cpu_count=2) == 2


def test_only_a_regular_dotenv_file_is_read(tmp_path: Path):
    fifo = tmp_path / ".env"
    os.mkfifo(fifo)  # reading it would block until a writer came
    assert read_dotenv(fifo) == {}


def test_the_workers_nobody_adopted_end_with_the_command(tmp_path: Path):
    """An early exit (a bad setting, a signal while starting) leaves no worker running and no zombie."""
    script = tmp_path / "starts_and_fails.py"
    script.write_text(
        "import sys\nfrom orchestration.prs import warm\n"
        "warm.start(['--entry_script', 'e.py', '--node_count', '1', '--process_count_per_node', '2'])\n"
        "print(' '.join(str(process.pid) for process, _ in warm.started().waiting))\nsys.exit(2)\n")
    pids = tmp_path / "pids"
    with pids.open("w") as out:  # not a pipe: waiting for its end would wait for the workers
        done = subprocess.run([sys.executable, str(script)], stdout=out, stderr=subprocess.DEVNULL,
                              env={**os.environ, "PYTHONPATH": str(SRC)}, timeout=60)
    assert done.returncode == 2
    started = [int(pid) for pid in pids.read_text().split()]
    assert len(started) == 2
    for pid in started:
        with pytest.raises(ProcessLookupError):  # a zombie would still be there
            os.kill(pid, 0)


@pytest.fixture
def started_ahead():
    """The workers this test process starts ahead, as the command line does; none may be left over."""
    workers = warm.started()
    assert workers.waiting == [] and workers.discarded == []
    yield workers
    leftover = workers.waiting + [(p, None) for p in workers.discarded]
    workers.reap()
    assert leftover == [], "the run left warm workers behind"


def worker_pids(tmp_path: Path) -> list[int]:
    logs = sorted((tmp_path / "out" / "logs" / "sys" / "node").rglob("*.txt"))
    return [int(pid) for log in logs for pid in re.findall(r"pid (\d+) started", log.read_text())]


def test_a_run_adopts_the_workers_started_ahead(tmp_path: Path, markers: Path, started_ahead, capfd):
    make_inputs(tmp_path / "in", ["ok"] * 6)
    warm.start(REGULAR + ["--node_count", "1", "--process_count_per_node", "2", "--local_max_workers", "2"])
    pids = [process.pid for process, _ in started_ahead.waiting]
    assert len(pids) == 2

    summary = run(tmp_path, markers, node_count=1, process_count_per_node=2, max_workers=2)

    assert summary.exit_code == 0 and len(output_rows(tmp_path)) == 6
    assert sorted(worker_pids(tmp_path)) == sorted(pids)
    assert "Traceback" not in capfd.readouterr().err


def test_workers_started_ahead_but_not_needed_exit_quietly(tmp_path: Path, markers: Path, started_ahead,
                                                           capfd):
    make_inputs(tmp_path / "in", ["ok"] * 3)
    warm.start(REGULAR + ["--node_count", "1", "--process_count_per_node", "2", "--local_max_workers", "2"])
    first, second = (process for process, _ in started_ahead.waiting)

    summary = run(tmp_path, markers, process_count_per_node=1, max_workers=1)

    assert summary.exit_code == 0 and len(output_rows(tmp_path)) == 3
    assert worker_pids(tmp_path) == [first.pid]
    assert second.wait(timeout=10) == 0  # read end-of-file where its spec would have been, and exited
    assert "Traceback" not in capfd.readouterr().err


def test_a_bad_setting_after_the_workers_started_ends_in_one_line(tmp_path: Path):
    """The runner's command line starts its workers first; a settings error lets them go, no traceback."""
    make_inputs(tmp_path / "in", ["ok"])
    environment = {**os.environ, "PYTHONPATH": str(SRC), "MINI_BATCH_SIZE": "lots"}
    done = subprocess.run(
        [sys.executable, "-m", "orchestration.prs", "--entry_script", str(SRC / "steps" / "extract_entry.py"),
         "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=60,
    )  # returns once every holder of its stderr, the workers started ahead included, has exited
    assert done.returncode == 2
    assert "MINI_BATCH_SIZE" in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1].startswith("exit 2: 1 invalid setting")
