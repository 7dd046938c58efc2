"""A short, deterministic slice of `make soak`: faulty runs and their resumes lose no row."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from orchestration.errors import Stopped
from tests.conftest import clean_env, run_module
from tools import soak
from tools.soak import children


def test_a_seeded_slice_of_the_soak_loses_no_row(tmp_path):
    # seed 1: SIGINT, SIGTERM and a full disk (or no fault where no tmpfs can be mounted), in seconds
    result = run_module("tools.soak", "--runs", "3", "--seed", "1", "--seconds", "300", "--json",
                        "soak.json", cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads((tmp_path / "soak.json").read_text())
    assert figures["runs"] == 3 and figures["rows_lost"] == 0
    assert sum(figures["faults"].values()) == 3 and figures["seed"] == 1
    assert result.stdout.startswith("exit 0: soak (seed 1): 3 runs, faults")


def test_a_signal_to_the_soak_alone_stops_it_after_the_run_it_waits_for_and_leaves_no_process(tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    soak = subprocess.Popen([sys.executable, "-m", "tools.soak", "--runs", "50", "--seed", "1"],
                            cwd=tmp_path, env=clean_env(TMPDIR=str(scratch)), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not children(soak.pid) and time.monotonic() < deadline:  # its first run has started
        time.sleep(0.01)
    assert children(soak.pid), "the soak started no run"
    soak.send_signal(signal.SIGINT)
    _, stderr = soak.communicate(timeout=120)
    assert soak.returncode == 130, stderr
    assert stderr.splitlines()[-1] == "exit 130: stopped by SIGINT"
    assert not list(scratch.iterdir())  # its runs' folders are removed
    assert not [pid for pid in Path("/proc").glob("[0-9]*") if str(scratch) in command_line(pid)]


def command_line(pid: Path) -> str:
    try:
        return (pid / "cmdline").read_bytes().decode(errors="replace")
    except OSError:  # it exited meanwhile
        return ""


def test_a_signal_between_runs_stops_the_soak_before_its_next_run_and_removes_its_folders(
        monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    calls = []

    def first_run_then_ctrl_c(*args):
        calls.append(args)
        os.kill(os.getpid(), signal.SIGINT)  # noted by the soak, not raised here
        return 0

    monkeypatch.setattr(soak, "one_run", first_run_then_ctrl_c)
    with pytest.raises(Stopped):
        soak.main(["--runs", "3", "--seed", "1"])
    assert len(calls) == 1 and not list(tmp_path.iterdir())


def test_a_signal_while_the_soak_removes_its_folders_neither_kills_it_nor_leaves_them(tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    script = tmp_path / "soak_then_sigterm.py"
    script.write_text(
        "import os, signal\n"
        "import tools.soak as soak\n"
        "from orchestration.commands import run_command\n"
        "real = soak.shutil.rmtree\n"
        "def rmtree(path, **options):\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    real(path, **options)\n"
        "soak.shutil.rmtree = rmtree\n"
        "soak.one_run = lambda *args: 0\n"
        "run_command(lambda: soak.main(['--runs', '2', '--seed', '1']))\n")
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=clean_env(TMPDIR=str(scratch)),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("exit 0: soak (seed 1): 2 runs")
    assert not list(scratch.iterdir())
