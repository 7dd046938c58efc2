"""A full disk fails cleanly: a clear reason, nothing partial under the output name, resumable."""
import errno
import json
import subprocess
import uuid

import pytest

from orchestration.prs.config import RunConfig
from orchestration.prs.scheduler import run_parallel
from tests.orchestration.prs.conftest import make_inputs

ROWS = "def run(batch):\n    return [('x' * ROW) for _ in batch]\n"


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB tmpfs where mounting is allowed (root on this machine and CI); else an ordinary folder,
    and the tests simulate ENOSPC instead. Yields (folder, is_real)."""
    folder = tmp_path / f"small-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)],
                             capture_output=True).returncode == 0
    yield folder, mounted
    if mounted:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def script(tmp_path, row_bytes):
    path = tmp_path / "rows_entry.py"
    path.write_text(f"ROW = {row_bytes}\n" + ROWS)
    return path


def config(tmp_path, output, row_bytes, **values):
    return RunConfig(entry_script=script(tmp_path, row_bytes), inputs=(tmp_path / "in",), output=output,
                     mini_batch_size=1, error_threshold=-1, run_max_try=1, process_count_per_node=1,
                     max_workers=1, **values)


def test_a_merge_that_finds_the_disk_full_fails_cleanly_and_resumes(tmp_path, small_disk, monkeypatch):
    disk, real = small_disk
    make_inputs(tmp_path / "in", ["ok"] * 4)
    out = disk / "out"
    ballast = disk / "ballast.bin"
    if real:
        ballast.write_bytes(b"\0" * 1_500_000)  # 4 MB: ballast 1.5 + rows 1.6 leave too little to merge 1.6
    else:
        import orchestration.prs.outputs as report

        def full(*args):
            raise OSError(errno.ENOSPC, "No space left on device")
        monkeypatch.setattr(report, "_copy_range", full)
    summary = run_parallel(config(tmp_path, out, 400_000))
    assert (summary.status, summary.exit_code) == ("Failed", 42)
    assert summary.reason.startswith(f"cannot write {out / 'parallel_run_step.txt'}: No space left on device")
    assert "--resume" in summary.reason
    assert not (out / "parallel_run_step.txt").exists()
    assert not (out / ".parallel_run_step.txt.partial").exists()
    assert json.loads((out / "logs" / "summary.json").read_text())["status"] == "Failed"
    assert summary.items.succeeded == 4  # every row is kept in the state

    if real:
        ballast.unlink()  # the user frees some space
    else:
        monkeypatch.undo()
    resumed = run_parallel(config(tmp_path, out, 400_000, resume=True))
    assert (resumed.status, resumed.exit_code, resumed.rows_written) == ("Completed", 0, 4)
    assert (out / "parallel_run_step.txt").stat().st_size == 4 * 400_001


def test_a_worker_that_cannot_write_its_rows_says_why(tmp_path, small_disk):
    disk, real = small_disk
    make_inputs(tmp_path / "in", ["ok"] * 2)
    if not real:  # without a small file system, a row larger than the free space cannot be made
        disk = tmp_path
    summary = run_parallel(config(tmp_path, disk / "out", 6_000_000 if real else 1))
    if real:  # the first mini-batch's attempt is charged with the reason; then nothing fits, init() too
        (first, *_) = summary.failures
        assert first["mini_batch"] == 0 and "cannot write its rows or records: OSError" in first["reason"]
        assert "No space left on device" in first["reason"]
        assert summary.status == "Failed" and summary.exit_code == 42
    else:
        assert summary.items.succeeded == 2
