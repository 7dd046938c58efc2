import gzip

import joblib
import numpy as np
import pytest

from orchestration.commands import UsageError
from steps.extract import FIELDS, parse_records
from tools import make_data
from tools.make_data import (
    MARKER, RAW_FILE, DataSourceError, file_slices, load_bundled, load_sklearn, write_files,
)
from tests.conftest import invoke, run_module


@pytest.fixture(scope="module")
def table():
    return load_bundled()


def read_all(folder):
    records = []
    for path in sorted(folder.glob("*.txt")):
        records += parse_records(path.read_text())
    return records


def test_bundled_data_matches_the_reference_values(table):
    assert table.shape == (20640, 9)
    expected = [8.3252, 41, 6.984127, 1.023810, 322, 2.555556, 37.88, -122.23, 4.526]
    assert table[0] == pytest.approx(expected, abs=5e-7)


def test_records_are_spread_over_count_files_with_source_values(tmp_path, table):
    assert write_files(table, tmp_path / "d", count=7) == 7
    files = sorted(p.name for p in (tmp_path / "d").glob("*.txt"))
    assert files == [f"housing-{i}.txt" for i in range(7)]
    records = read_all(tmp_path / "d")
    assert [r["id"] for r in records] == list(range(20640))
    values = np.array([[r[k] for k in FIELDS[1:]] for r in records])
    assert np.array_equal(values, table)  # exact: repr round-trips every float


def test_scale_repeats_the_data_with_unique_ids(tmp_path, table):
    write_files(table[:10], tmp_path / "d", count=5, scale=3)
    records = read_all(tmp_path / "d")
    assert len(list((tmp_path / "d").glob("*.txt"))) == 15
    assert sorted(r["id"] for r in records) == list(range(30))
    assert records[10]["MedInc"] == records[0]["MedInc"]


def test_one_record_per_file_at_count_equal_rows(tmp_path, table):
    write_files(table[:12], tmp_path / "d", count=12)
    assert all(len(parse_records(p.read_text())) == 1 for p in (tmp_path / "d").glob("*.txt"))


def test_rerun_replaces_previous_files_and_is_deterministic(tmp_path, table):
    write_files(table[:20], tmp_path / "d", count=10)
    first = (tmp_path / "d" / "housing-0.txt").read_bytes()
    write_files(table[:20], tmp_path / "d", count=4)
    assert len(list((tmp_path / "d").glob("*.txt"))) == 4
    write_files(table[:20], tmp_path / "d", count=10)
    assert (tmp_path / "d" / "housing-0.txt").read_bytes() == first
    assert (tmp_path / "d" / MARKER).exists()


def test_refuses_to_replace_a_folder_it_did_not_write(tmp_path, table):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "precious.txt").write_text("keep me")
    with pytest.raises(UsageError, match="did not write"):
        write_files(table[:5], tmp_path / "d", count=1)
    assert (tmp_path / "d" / "precious.txt").read_text() == "keep me"


def test_bad_count_is_refused(tmp_path, table):
    with pytest.raises(UsageError, match="COUNT"):
        write_files(table[:5], tmp_path / "d", count=6)


def test_file_slices_differ_by_at_most_one():
    sizes = [b - a for a, b in file_slices(20640, 100)]
    assert sum(sizes) == 20640 and max(sizes) - min(sizes) <= 1


def test_checksum_mismatch_is_refused(tmp_path):
    tampered = tmp_path / "raw.gz"
    tampered.write_bytes(gzip.compress(gzip.decompress(RAW_FILE.read_bytes()) + b"\n"))
    with pytest.raises(DataSourceError, match="sha256"):
        load_bundled(tampered)


def test_sklearn_source_gives_identical_records(tmp_path, table):
    """Seeds scikit-learn's cache the way fetch_california_housing writes it, then loads through it."""
    raw = np.loadtxt(gzip.decompress(RAW_FILE.read_bytes()).decode().splitlines(), delimiter=",")
    joblib.dump(raw[:, [8, 7, 2, 3, 4, 5, 6, 1, 0]], tmp_path / "cal_housing_py3.pkz", compress=6)
    assert np.array_equal(load_sklearn(str(tmp_path)), table)


@pytest.mark.filterwarnings("ignore:Retry downloading:UserWarning")  # scikit-learn's, before it gives up
def test_sklearn_source_offline_names_the_bundled_source(tmp_path, monkeypatch):
    # An unreachable proxy makes the download fail at once, as on a machine without internet.
    for name, value in (("SCIKIT_LEARN_DATA", str(tmp_path / "empty")), ("HTTPS_PROXY", "http://127.0.0.1:9"),
                        ("https_proxy", "http://127.0.0.1:9")):
        monkeypatch.setenv(name, value)
    result = invoke("tools.make_data", "--out", str(tmp_path / "d"), "--source", "sklearn", cwd=tmp_path)
    assert result.returncode == 2
    assert "SOURCE=bundled" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "d").exists()


def test_make_data_command_reports_what_it_wrote(tmp_path):
    result = run_module("tools.make_data", "--out", str(tmp_path / "d"), "--count", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"exit 0: wrote 20640 records in 3 files to {tmp_path / 'd'}"
    assert make_data.RAW_ROWS == 20640


def test_two_runs_at_once_take_turns_and_leave_one_folder_of_their_own(tmp_path):
    import subprocess
    import sys

    from tests.conftest import clean_env

    command = [sys.executable, "-m", "tools.make_data", "--out", "data/raw", "--count", "300"]
    runs = [subprocess.Popen(command, cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for run in runs:
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
        assert out.startswith("exit 0: wrote 20640 records in 300 files")
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["raw"]  # no staging left
    assert (tmp_path / "data" / "raw" / MARKER).exists()
    assert len(list((tmp_path / "data" / "raw").glob("*.txt"))) == 300
    assert len(read_all(tmp_path / "data" / "raw")) == 20640
