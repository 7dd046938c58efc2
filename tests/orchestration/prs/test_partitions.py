"""SDK v1's partition keys on a folder input: PARTITION_KEYS name keys of the input's PARTITION_FORMAT
(`Dataset.File.from_files(path, partition_format=)`), one mini-batch per combination of their values,
as MachineLearningNotebooks' file-dataset partition example runs them."""
import json

import pytest

from tests.conftest import invoke

ENTRY = """\
import json, sys


def run(mini_batch, mini_batch_context):
    keys = json.loads(sys.argv[sys.argv.index("--partition_keys") + 1])  # the driver's flag, as on Azure
    values = mini_batch_context.partition_key_value
    return [json.dumps({"index": mini_batch_context.minibatch_index, "keys": keys, "values": values,
                        "file": path.split("/data/")[1]}) for path in mini_batch]
"""


@pytest.fixture
def folder(tmp_path):
    """data/<store>/<brand>/<n>.csv: 2 stores x 2 brands, 1 to 3 files each."""
    for store, brand, count in (("north", "acme", 2), ("north", "zeta", 1), ("south", "acme", 3),
                                ("south", "zeta", 1)):
        for number in range(count):
            path = tmp_path / "data" / store / brand / f"{number}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{store},{brand},{number}\n")
    (tmp_path / "data" / ".hidden").mkdir()
    (tmp_path / "data" / ".hidden" / "x.csv").write_text("hidden")
    (tmp_path / "entry.py").write_text(ENTRY)
    return tmp_path


def extract(folder, *flags, **env):
    return invoke("orchestration.prs.cli", "--entry_script", "entry.py", "--input", "data", "--output", "out",
                  *flags, cwd=folder, **env)


def test_one_mini_batch_per_partition_with_its_context_and_the_drivers_flag(folder):
    result = extract(folder, "--partition_keys", "store,brand", "--partition_format",
                     "{store}/{brand}/{file_name}.csv", "--mini_batch_size", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [json.loads(line) for line in (folder / "out" / "extraction_output.txt").read_text().splitlines()]
    batches = {}
    for row in rows:
        batches.setdefault(row["index"], []).append(row)
    assert [sorted(r["file"] for r in batches[i]) for i in sorted(batches)] == [
        ["north/acme/0.csv", "north/acme/1.csv"], ["north/zeta/0.csv"],
        ["south/acme/0.csv", "south/acme/1.csv", "south/acme/2.csv"], ["south/zeta/0.csv"]]
    assert [batches[i][0]["values"] for i in sorted(batches)] == [
        {"store": "north", "brand": "acme"}, {"store": "north", "brand": "zeta"},
        {"store": "south", "brand": "acme"}, {"store": "south", "brand": "zeta"}]
    assert all(row["keys"] == ["store", "brand"] for row in rows)
    assert "items: 7 succeeded, 0 failed, 0 not processed of 7" in result.stdout  # MINI_BATCH_SIZE unused


def test_the_settings_give_them_as_the_flags_do(folder):
    result = extract(folder, PARTITION_KEYS="store", PARTITION_FORMAT="/{store}/{brand}/{file_name}.csv")
    assert result.returncode == 0, result.stderr
    assert "mini-batches: 2 succeeded, 0 failed, 0 not processed of 2" in result.stdout


@pytest.mark.parametrize("flags, message", [
    (("--partition_keys", "store"), "PARTITION_KEYS: needs the input's PARTITION_FORMAT"),
    (("--partition_keys", "region", "--partition_format", "{store}/{brand}/{file_name}.csv"),
     "'region' is not a key of PARTITION_FORMAT"),
    (("--partition_keys", "store", "--partition_format", "{store}/{brand}/{file_name}.parquet"),
     "north/acme/0.csv does not match it"),
    (("--partition_keys", "store", "--partition_format", "{store}/{store}/{file_name}.csv"),
     "expected distinct {names}"),
    (("--partition_keys", "store", "--partition_format", "{store}/{1brand}/{file_name}.csv"),
     "not starting with a digit (got {1brand})"),
    (("--partition_keys", "store,store"), "PARTITION_KEYS: expected distinct names"),
    (("--partition_keys", "store", "--partition_format", "{store}/{brand}/{file_name}.csv",
      "--input_type", "tabular"), "expected one --input folder of files"),
])
def test_what_cannot_partition_is_one_line_exit_2(folder, flags, message):
    result = extract(folder, *flags)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert message in result.stderr, result.stderr


def test_a_refused_rerun_keeps_the_previous_runs_output_and_links_are_followed_as_a_plain_run_does(folder):
    flags = ("--partition_keys", "store,brand", "--partition_format", "{store}/{brand}/{file_name}.csv")
    (folder / "data" / "north" / "zeta" / "7.csv").symlink_to("../../south/acme/0.csv")
    assert extract(folder, *flags).returncode == 0
    rows = [json.loads(line) for line in (folder / "out" / "extraction_output.txt").read_text().splitlines()]
    assert sorted(r["file"] for r in rows if r["values"] == {"store": "north", "brand": "zeta"}) == [
        "north/zeta/0.csv", "north/zeta/7.csv"]  # the link as given, in its own partition
    before = (folder / "out" / "extraction_output.txt").read_bytes()

    (folder / "data" / "README.md").write_text("not a partition")
    refused = extract(folder, *flags)
    assert refused.returncode == 2 and "README.md does not match it" in refused.stderr
    assert (folder / "out" / "extraction_output.txt").read_bytes() == before  # nothing cleared
    (folder / "data" / "README.md").unlink()
    (folder / "data" / "north" / "acme" / "broken.csv").symlink_to("nowhere.csv")
    broken = extract(folder, *flags)
    assert broken.returncode == 2 and "broken.csv" in broken.stderr and "Traceback" not in broken.stderr


def test_a_file_name_that_is_no_utf8_is_a_partition_item_like_any(folder):
    name = b"\xff.csv".decode("utf-8", "surrogateescape")
    (folder / "data" / "north" / "acme" / name).write_text("x")
    result = extract(folder, "--partition_keys", "store", "--partition_format",
                     "{store}/{brand}/{file_name}.csv")
    assert result.returncode == 0, result.stderr
    assert "items: 8 succeeded, 0 failed, 0 not processed of 8" in result.stdout
