"""make bench, whole processes, on 40 files: every contender writes the serial loop's rows (speed is not
asserted)."""
import json

from tests.conftest import run_module
from tools.bench_processes import round_order
from tools.make_data import load_bundled, write_files


def test_every_whole_process_contender_gives_the_rows_of_the_serial_loop(tmp_path):
    write_files(load_bundled()[:40], tmp_path / "data", count=40)
    result = run_module("tools.bench_processes", "--data", "data", "--repeat", "2", "--cycle-rounds", "1",
                        "--memory-files", "1000", "--arithmetic-iterations", "200000", "--json", "f.json",
                        cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads((tmp_path / "f.json").read_text())
    assert figures["files"] == 40
    assert list(figures["wall_cpu_seconds"]) == [
        "serial loop", "runner, 1 worker", "runner, 2 workers", "two forked halves"]
    assert list(figures["machine_wall_cpu_seconds"]) == ["1 process", "2 processes"]
    assert figures["machine_two_core_scaling"] > 0
    paired = figures["runner_vs_halves_by_round"]  # each round's own ratio, the runner first in one
    assert len(paired) == 2 and figures["runner_vs_halves_median"] == sum(paired) / 2
    assert "paired by round: median" in result.stdout
    assert 0 < figures["first_batch_seconds"] < figures["hundred_files_seconds"]
    assert figures["parent_peak_rss_mb"]["1000"] > 0 and figures["seconds_per_file"]["1000"] > 0
    assert result.stdout.splitlines()[-1].startswith("exit 0: whole-process benchmark done")


def test_each_round_runs_every_contender_once_the_paired_two_side_by_side_alternating():
    names = ["serial loop", "runner, 1 worker", "runner, 2 workers", "two forked halves", "a", "b"]
    orders = [round_order(names, n) for n in range(5)]
    assert all(sorted(order) == sorted(names) for order in orders)  # none run twice, none left out
    for n, order in enumerate(orders):
        first = order.index("runner, 2 workers" if n % 2 == 0 else "two forked halves")
        assert order[first:first + 2] == (["runner, 2 workers", "two forked halves"]
                                          [::1 if n % 2 == 0 else -1])
