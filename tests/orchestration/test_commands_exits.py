"""Every command's start and end: a signal at any moment, or a bad setting, ends it in one `exit N:` line."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import clean_env, invoke, run_module

# A command module whose import waits for a "release" file, then whose main() waits: a marker file says
# which stage it is in.
SLOW_COMMAND = '''
import pathlib, time
pathlib.Path("importing").touch()
while not pathlib.Path("release").exists():
    try:  # a library's bare except, which would swallow a KeyboardInterrupt raised during the import
        time.sleep(0.01)
    except:  # noqa: E722
        pass

def main():
    pathlib.Path("running").touch()
    time.sleep(60)
    return 0
'''


def wait_for(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.01)


@pytest.mark.parametrize("stage", ["importing", "running"])
@pytest.mark.parametrize("signal_number, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_importing_or_running_ends_the_command_in_one_line(
        tmp_path, stage, signal_number, code):
    (tmp_path / "slow_command.py").write_text(SLOW_COMMAND)
    if stage == "running":
        (tmp_path / "release").touch()
    env = clean_env(PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    process = subprocess.Popen([sys.executable, "-m", "orchestration", "slow_command"], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(tmp_path / stage)
        process.send_signal(signal_number)
        (tmp_path / "release").touch()
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    name = signal.Signals(signal_number).name
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.strip().splitlines()[-1] == f"exit {code}: stopped by {name}"
    assert process.returncode == code
    # noted while importing: the import finished (its bare except never saw the signal), main() never ran
    assert (tmp_path / "running").exists() == (stage == "running")


# A launcher whose `first` step (where the runner starts its workers) waits for the same "release" file.
SLOW_FIRST_STEP = '''
import pathlib, time
from orchestration.commands import launch

def first(arguments):
    pathlib.Path("starting").touch()
    while not pathlib.Path("release").exists():
        time.sleep(0.01)

launch("slow_command", first=first)
'''


@pytest.mark.parametrize("signal_number, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_before_the_imports_ends_the_command_in_one_line(tmp_path, signal_number, code):
    (tmp_path / "slow_command.py").write_text(SLOW_COMMAND)
    (tmp_path / "start_slow.py").write_text(SLOW_FIRST_STEP)
    env = clean_env(PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    process = subprocess.Popen([sys.executable, "start_slow.py"], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(tmp_path / "starting")
        process.send_signal(signal_number)
        (tmp_path / "release").touch()
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.strip().splitlines()[-1] == f"exit {code}: stopped by {signal.Signals(signal_number).name}"
    assert process.returncode == code and not (tmp_path / "running").exists()


def test_a_bad_setting_names_the_variable_and_ends_with_exit_2(tmp_path):
    result = run_module("orchestration.cloud", "publish", "--dry-run", cwd=tmp_path, NODE_COUNT="many")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert lines[-2].startswith("error: NODE_COUNT")
    assert lines[-1] == "exit 2: 1 invalid setting; set it in .env or the environment (see .env.example)"


def test_a_bad_argument_ends_with_exit_2_naming_it(tmp_path):
    result = run_module("orchestration", "tools.make_data", "--out", "d", "--count", "0", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == \
        "exit 2: COUNT: expected a whole number from 1 to 20640 (got 0)"


@pytest.mark.parametrize("module, flag", [
    ("orchestration.local_pipeline", "--data-dir"), ("orchestration.cloud.cli", "--sdk"),
    ("tools.make_data", "--count"), ("tools.bench", "--repeat"), ("tools.bench_processes", "--repeat"),
    ("tools.bench_tables", "--repeat"), ("tools.advise", "--repeat"), ("tools.soak", "--runs"),
    ("tools.docker_engine", "--nonsense"), ("tools.docker_base", "--nonsense"),
    ("tools.docker_test", "--nonsense"),
])
def test_every_command_ends_a_mistyped_argument_in_one_exit_2_line(tmp_path, module, flag):
    result = invoke(module, flag, "0" if flag in ("--repeat", "--count") else "", cwd=tmp_path)
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 2 and last.startswith("exit 2: ") and "Traceback" not in result.stderr, \
        result.stderr


@pytest.mark.parametrize("entry_point", sorted((Path(__file__).parents[2] / "src").rglob("__main__.py")),
                         ids=lambda path: path.parent.name)
def test_every_entry_point_notes_signals_before_its_other_imports(entry_point):
    """A Ctrl-C during the imports of `orchestration.commands` or the runner's warm start (30-40 ms) printed a
    KeyboardInterrupt traceback: the entry point's first step is now interrupts.note_signals()."""
    import ast

    (main_block,) = [node for node in ast.parse(entry_point.read_text()).body if isinstance(node, ast.If)]
    steps = [ast.unparse(node) for node in main_block.body]
    first_call = next(i for i, step in enumerate(steps) if "note_signals()" in step)
    assert steps[first_call] == "noted = note_signals()"
    assert all(step in ("import sys", "from orchestration.interrupts import note_signals")
               for step in steps[:first_call])
    assert "noted=noted" in steps[-1]


# A command stopped by Ctrl-C whose exit then gets a SIGTERM (a second signal, during the exit).
SECOND_SIGNAL_COMMAND = '''
import atexit, os, signal, time

def again():
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.2)

atexit.register(again)

def main():
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(30)
    return 0
'''


def run_command_module(folder: Path, source: str) -> subprocess.CompletedProcess:
    """`python -m orchestration command`, `command.py` holding `source`, run from `folder`."""
    (folder / "command.py").write_text(source)
    env = clean_env(PYTHONPATH=os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "orchestration", "command"], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=30)


def test_a_second_signal_after_the_command_has_ended_changes_nothing(tmp_path):
    result = run_command_module(tmp_path, SECOND_SIGNAL_COMMAND)
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "exit 130: stopped by SIGINT"
    assert result.returncode == 130


# A command that ends well, and gets SIGTERM while the interpreter tears its modules down, after Python
# has put the default handlers back.
LATE_SIGNAL_COMMAND = '''
import os, signal

class SignalsOnTeardown:
    def __del__(self, kill=os.kill, pid=os.getpid(), number=signal.SIGTERM):
        kill(pid, number)

keeper = SignalsOnTeardown()

def main():
    return 0
'''


def test_a_signal_during_the_interpreters_teardown_does_not_change_the_exit_code(tmp_path):
    result = run_command_module(tmp_path, LATE_SIGNAL_COMMAND)
    assert result.returncode == 0, result.stderr  # was -15: killed by its own SIGTERM
