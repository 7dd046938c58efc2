"""make bench, in process, on 30 files: every contender writes the serial loop's rows (speed is not
asserted)."""
import json

from tests.conftest import run_module
from tools import bench_peers
from tools.make_data import load_bundled, write_files


def test_every_contender_gives_the_rows_of_the_serial_loop(tmp_path):
    write_files(load_bundled()[:30], tmp_path / "data", count=30)
    result = run_module("tools.bench", "--data", "data", "--repeat", "1", "--json", "b.json", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every contender's rows identical to the serial loop's" in result.stdout.splitlines()[-1]
    figures = json.loads((tmp_path / "b.json").read_text())
    peers = 2 if bench_peers.available() else 0  # Dask and Ray, where the bench extra is installed
    assert figures["files"] == 30 and len(figures["seconds"]) == 7 + peers
