"""A short, deterministic slice of `make soak`: faulty runs and their resumes lose no row."""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import clean_env, run_module
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
