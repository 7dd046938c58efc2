"""A short, deterministic slice of `make soak`: faulty runs and their resumes lose no row."""
import json

from tests.conftest import run_module


def test_a_seeded_slice_of_the_soak_loses_no_row(tmp_path):
    # seed 1: SIGINT, SIGTERM and a full disk (or no fault where no tmpfs can be mounted), in seconds
    result = run_module("tools.soak", "--runs", "3", "--seed", "1", "--seconds", "300", "--json",
                        "soak.json", cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads((tmp_path / "soak.json").read_text())
    assert figures["runs"] == 3 and figures["rows_lost"] == 0
    assert sum(figures["faults"].values()) == 3 and figures["seed"] == 1
    assert result.stdout.startswith("exit 0: soak (seed 1): 3 runs, faults")
