"""make docker-engine: what it does on each kind of machine, and a stop that stops only its own engine."""
import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import clean_env
from tools.docker_engine import Machine, next_step

RUNNING = Machine(server_version="28.2.2", has_dockerd=False, is_root=False, has_apt=False)


@pytest.mark.parametrize("machine, step", [
    (RUNNING, "use"),
    (Machine(None, has_dockerd=True, is_root=True, has_apt=True), "start"),
    (Machine(None, has_dockerd=False, is_root=True, has_apt=True), "install"),
])
def test_a_running_engine_is_used_else_one_is_started_or_installed_first(machine, step):
    assert next_step(machine) == step


@pytest.mark.parametrize("machine, reason", [
    (Machine(None, has_dockerd=True, is_root=False, has_apt=True), "starting one needs root"),
    (Machine(None, has_dockerd=False, is_root=True, has_apt=False), "there is no apt to install Debian's"),
])
def test_a_machine_that_cannot_get_an_engine_is_told_why(machine, reason):
    assert reason in next_step(machine)


def command(tmp_path, *flags):
    return subprocess.run([sys.executable, "-m", "orchestration", "tools.docker_engine", "--state",
                           str(tmp_path), *flags], env=clean_env(), capture_output=True, text=True,
                          timeout=60)


def test_stop_stops_the_engine_it_started_and_never_another(tmp_path):
    assert command(tmp_path, "--stop").stdout.strip() == \
        "exit 0: no engine started by make docker-engine is running; nothing stopped"
    stand_in = subprocess.Popen(["sleep", "60"])  # stands for the dockerd it would have started
    try:
        (tmp_path / "dockerd.pid").write_text(f"{stand_in.pid}\n")
        stopped = command(tmp_path, "--stop")
        assert stopped.stdout.strip() == \
            f"exit 0: stopped the engine make docker-engine started (pid {stand_in.pid})"
        assert stand_in.wait(timeout=30) == -signal.SIGTERM and not (tmp_path / "dockerd.pid").exists()
    finally:
        if stand_in.poll() is None:
            os.kill(stand_in.pid, signal.SIGKILL)
