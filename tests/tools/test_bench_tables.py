"""make bench-tables, on a 1 MB table: every contender writes the same rows (speed is not asserted)."""
import json

from tests.conftest import run_module
from tools import bench_peers


def test_every_contender_gives_the_rows_of_the_serial_loops(tmp_path):
    result = run_module("tools.bench_tables", "--megabytes", "1", "--repeat", "1", "--json", "t.json",
                        cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "the runner's rows identical to the loops'" in result.stdout
    figures = json.loads((tmp_path / "t.json").read_text())
    peers = 4 if bench_peers.available() else 0  # Dask and Ray, where the bench extra is installed
    assert figures["rows"] == 20640 and len(figures["seconds"]) == 6 + peers
