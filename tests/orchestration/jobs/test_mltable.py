"""MLTable inputs of a parallel component: a table split by size, by partition keys, and a uri_folder
whose MLTable file is not an item. Each is checked against a serial pandas pass over the same data."""
import json
import textwrap

import pytest

from tests.conftest import invoke

COMPONENT = """\
$schema: https://azuremlschemas.azureedge.net/latest/parallelComponent.schema.json
type: parallel
name: score_table
version: "1"
inputs:
  data:
    type: mltable
    mode: {mode}
  models:
    type: uri_folder
outputs:
  scored:
    type: uri_file
input_data: ${{{{inputs.data}}}}
{batching}
resources:
  instance_count: 1
max_concurrency_per_instance: 2
error_threshold: -1
mini_batch_error_threshold: 0
retry_settings:
  max_retries: 0
  timeout: 60
task:
  type: run_function
  code: ./src
  entry_script: entry.py
  environment: azureml:AzureML-sklearn-1.0@latest
  program_arguments: --models ${{{{inputs.models}}}}
  append_row_to: ${{{{outputs.scored}}}}
"""

# Per row: a real computation; per partition: one "model" file, and an empty return, as many-models
# training does (v2 with error_threshold -1 counts that as done).
ENTRY = """\
import argparse, json, pathlib

def init():
    global models
    parser = argparse.ArgumentParser()
    parser.add_argument("--models")
    models = pathlib.Path(parser.parse_known_args()[0].models)

def run(frame, context):
    if context.partition_key_value:
        name = "-".join(context.partition_key_value.values())
        (models / f"{name}.json").write_text(json.dumps({
            "keys": context.partition_key_value, "rows": len(frame), "columns": sorted(frame.columns),
            "total": float(frame["qty"].sum()), "index": context.minibatch_index}))
        return []
    return [f"{row.id} {row.qty * row.price:.2f} {row.Path}" for row in frame.itertuples()]
"""


def write_component(root, mode="direct", batching='mini_batch_size: "200"'):
    (root / "src").mkdir(parents=True)
    (root / "src" / "entry.py").write_text(ENTRY)
    (root / "component.yml").write_text(COMPONENT.format(mode=mode, batching=batching))
    return root / "component.yml"


def run_component(tmp_path, component, table):
    models = tmp_path / "models"
    models.mkdir()
    return invoke("orchestration.jobs.cli", "--job", str(component), "--output", "out", "--set",
                  f"inputs.data={table}", "--set", f"inputs.models={models}", cwd=tmp_path)


def sales(store: str, brand: str, rows: int, start: int):
    """A DataFrame of sales rows (pandas imported at use: every pytest-xdist worker collects this module)."""
    import pandas as pd

    return pd.DataFrame({"id": range(start, start + rows), "qty": [i % 7 + 1 for i in range(rows)],
                         "price": [1.25 + i % 3 for i in range(rows)], "Store": store, "Brand": brand})


READERS = {
    "csv": ("read_delimited:\n      delimiter: \";\"\n      header: all_files_same_headers\n"
            "      encoding: utf8\n      include_path_column: true",
            lambda frame, path: frame.to_csv(path, sep=";", index=False)),
    "parquet": ("read_parquet:\n      include_path_column: true",
                lambda frame, path: frame.to_parquet(path, index=False, row_group_size=10)),
    "jsonl": ("read_json_lines:\n      encoding: utf8\n      include_path_column: true",
              lambda frame, path: frame.to_json(path, orient="records", lines=True)),
}


@pytest.mark.parametrize("kind", READERS)
def test_a_tabular_mltable_is_split_by_size_and_read_with_its_options(tmp_path, kind):
    import pandas as pd

    reader, write = READERS[kind]
    table = tmp_path / "table"
    table.mkdir()
    first, second = sales("a", "x", 30, 0), sales("b", "y", 25, 30)
    write(first.drop(columns=["Store", "Brand"]), table / f"one.{kind}")
    write(second.drop(columns=["Store", "Brand"]), table / f"two.{kind}")
    (table / "notes.txt").write_text("not matched by the pattern")
    (table / "MLTable").write_text(
        f"type: mltable\npaths:\n  - pattern: ./*.{kind}\ntransformations:\n  - {reader}\n"
        "  - drop_columns: [unused]\n")
    result = run_component(tmp_path, write_component(tmp_path / "job"), table)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = (tmp_path / "out" / "score_table" / "scored").read_text().splitlines()
    serial = pd.concat([first.assign(Path=f"one.{kind}"), second.assign(Path=f"two.{kind}")])
    assert rows == [f"{r.id} {r.qty * r.price:.2f} {r.Path}" for r in serial.itertuples()]
    assert "items: 55 succeeded, 0 failed, 0 not processed of 55" in result.stdout
    # about 200 bytes a mini-batch (parquet: whole row groups of 10 rows): files are cut, never crossed
    batches = {"csv": 4, "parquet": 6, "jsonl": 9}[kind]
    assert f"mini-batches: {batches} succeeded, 0 failed, 0 not processed of {batches}" in result.stdout


def test_partition_keys_give_one_mini_batch_per_key_combination_with_its_context(tmp_path):
    table = tmp_path / "partitioned"
    frames = {("1000", "dominicks"): sales("1000", "dominicks", 12, 0),
              ("1000", "tropicana"): sales("1000", "tropicana", 8, 12),
              ("2000", "dominicks"): sales("2000", "dominicks", 5, 20)}
    for (store, brand), frame in frames.items():
        (table / store / brand).mkdir(parents=True)
        frame.drop(columns=["Store", "Brand"]).to_csv(table / store / brand / "part.csv", index=False)
    (table / "MLTable").write_text(textwrap.dedent("""\
        type: mltable
        paths:
          - pattern: ./**/*.csv
        transformations:
          - read_delimited:
              delimiter: ","
              encoding: ascii
              header: all_files_same_headers
              empty_as_string: false
              include_path_column: true
          - extract_columns_from_partition_format:
              partition_format: "{Store}/{Brand}/{file_name}.{extension}"
          - drop_columns: [Path, file_name, extension]
        """))
    component = write_component(tmp_path / "job", batching="partition_keys: [Store, Brand]")
    result = run_component(tmp_path, component, table)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "mini-batches: 3 succeeded, 0 failed, 0 not processed of 3" in result.stdout
    models = {p.stem: json.loads(p.read_text()) for p in (tmp_path / "models").iterdir()}
    assert sorted(models) == ["1000-dominicks", "1000-tropicana", "2000-dominicks"]
    for (store, brand), frame in frames.items():
        model = models[f"{store}-{brand}"]
        assert model["keys"] == {"Store": store, "Brand": brand} and model["rows"] == len(frame)
        assert model["total"] == float(frame["qty"].sum())
        assert model["columns"] == ["Brand", "Store", "id", "price", "qty"]
    assert [models[k]["index"] for k in sorted(models)] == [0, 1, 2]


def test_an_mltable_below_a_hidden_folder_still_finds_its_files(tmp_path):
    table = tmp_path / ".cache" / "table"
    table.mkdir(parents=True)
    sales("a", "x", 3, 0).to_csv(table / "one.csv", index=False)
    (table / ".hidden.csv").write_text("id,qty,price\n9,9,9\n")
    (table / "MLTable").write_text("type: mltable\npaths:\n  - folder: .\n")
    from orchestration.prs.mltable import load_mltable

    assert load_mltable(table)["files"] == [str((table / "one.csv").resolve())]


def test_a_folder_input_with_an_mltable_file_counts_only_its_data_files(tmp_path):
    folder = tmp_path / "files"
    folder.mkdir()
    for name in ("a.csv", "b.csv", "c.csv"):
        sales("s", "b", 2, 0).to_csv(folder / name, index=False)
    (folder / "MLTable").write_text("type: mltable\npaths:\n  - pattern: ./*.csv\n")
    pipeline = tmp_path / "pipeline.yml"
    pipeline.write_text(textwrap.dedent("""\
        type: pipeline
        jobs:
          count:
            type: parallel
            inputs:
              data:
                type: uri_folder
                path: ./files
            input_data: ${{inputs.data}}
            mini_batch_size: "2"
            task:
              type: run_function
              code: ./src
              entry_script: names.py
              environment: azureml:AzureML-sklearn-1.0@latest
        """))
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "names.py").write_text("def run(batch):\n    return batch\n")
    result = invoke("orchestration.jobs.cli", "--job", str(pipeline), "--output", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "items: 3 succeeded, 0 failed, 0 not processed of 3" in result.stdout


@pytest.mark.parametrize("mltable, batching, message", [
    ("type: mltable\npaths:\n  - pattern: ./*.csv\ntransformations:\n  - read_delimited: {}\n"
     "  - filter: col('qty') > 1\n", 'mini_batch_size: "1kb"',
     "the transformation 'filter' is not supported locally"),
    ("type: mltable\npaths:\n  - pattern: ./*.csv\ntransformations:\n  - read_delimited: {}\n",
     "partition_keys: [Store]", "jobs.score_table.partition_keys: 'Store' is not a column that the input's "
     "MLTable extracts with extract_columns_from_partition_format (it extracts: none)"),
    ("type: mltable\npaths:\n  - folder: azureml://datastores/x/paths/y\n", 'mini_batch_size: "1kb"',
     "is a cloud path; only local paths can be read here"),
])
def test_what_an_mltable_cannot_do_locally_is_named(tmp_path, mltable, batching, message):
    table = tmp_path / "table"
    table.mkdir()
    sales("a", "x", 3, 0).to_csv(table / "one.csv", index=False)
    (table / "MLTable").write_text(mltable)
    result = run_component(tmp_path, write_component(tmp_path / "job", batching=batching), table)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert message in result.stderr, result.stderr


def test_a_pattern_over_a_link_loop_lists_each_file_once_and_ends(tmp_path):
    from orchestration.prs.mltable import load_mltable

    for relative in ("d/a.csv", "d/x/b.csv", "d/x/y/c.txt", "top.csv"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("a\n1\n")
    for link in ("d/x/loop", "d/x/y/up", "d/back"):  # d/x/loop/x/y/up/... : paths without end
        (tmp_path / link).symlink_to(".." if link != "d/back" else ".")
    (tmp_path / "MLTable").write_text("paths:\n  - pattern: ./d/**/*.csv\n  - pattern: ./*.csv\n"
                                      "  - pattern: ./d/x/[!l]*/c.t?t\n")
    files = load_mltable(tmp_path)["files"]
    assert files == [str(tmp_path / p) for p in ("d/a.csv", "d/x/b.csv", "d/x/y/c.txt", "top.csv")]
    (tmp_path / "MLTable").write_text("paths:\n  - folder: ./d\n")
    folder = load_mltable(tmp_path)["files"]
    assert folder == [str(tmp_path / p) for p in ("d/a.csv", "d/x/b.csv", "d/x/y/c.txt")]


@pytest.mark.parametrize("text, message", [
    (b"- paths\n", "expected a mapping with `paths:`"),
    (b"# caf\xe9\npaths:\n  - file: ./a.csv\n", "cannot be read"),
    (b"paths:\n  - file: ./a.csv\ntransformations:\n  read_delimited: {delimiter: ';'}\n",
     "transformations: expected a list"),
    (b"paths:\n  - file: ./a.csv\ntransformations:\n  - drop_columns: 5\n",
     "drop_columns: expected a column"),
    (b"paths:\n  - file: ./a.csv\ntransformations:\n  - read_delimited: [a]\n",
     "read_delimited: expected a mapping of options"),
    (b"paths:\n  - file: ./a.csv\ntransformations:\n  - extract_columns_from_partition_format: 5\n",
     "expected a partition format"),
])
def test_a_malformed_mltable_is_named_not_a_traceback(tmp_path, text, message):
    from orchestration.errors import UsageError
    from orchestration.prs.mltable import load_mltable

    (tmp_path / "a.csv").write_text("a\n1\n")
    (tmp_path / "MLTable").write_bytes(text)
    with pytest.raises(UsageError, match=message):
        load_mltable(tmp_path)


def test_a_file_entry_naming_a_folder_is_one_item_as_the_mltable_package_gives_it(tmp_path):
    """The MLTable of azureml-examples' mnist-batch-identification-using-parallel: `- file: ./mnist`, a
    folder of PNGs. mltable 1.7 loads it as one row whose Path is the folder; a read_* step fails on it."""
    from orchestration.errors import UsageError
    from orchestration.prs.mltable import load_mltable

    table = tmp_path / "mnist_mltable"
    (table / "mnist").mkdir(parents=True)
    for digit in range(3):
        (table / "mnist" / f"{digit}.png").write_bytes(b"\x89PNG")
    (table / "MLTable").write_text("type: mltable\npaths:\n  - file: ./mnist\n")
    assert load_mltable(table)["files"] == [str((table / "mnist").resolve())]

    (table / "MLTable").write_text("type: mltable\npaths:\n  - file: ./mnist\n"
                                   "transformations:\n  - read_delimited: {}\n")
    with pytest.raises(UsageError, match=r"is a folder named by `- file:`.*read_delimited fails on it"):
        load_mltable(table)
    (table / "MLTable").write_text("type: mltable\npaths:\n  - file: ./mnist/9.png\n")
    with pytest.raises(UsageError, match="file ./mnist/9.png does not exist"):
        load_mltable(table)
