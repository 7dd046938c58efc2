"""Rows of a tabular mini-batch, read in a worker: a slice of a .csv, .jsonl or .parquet file, or the
files of one partition, with an MLTable's read options and column transformations applied.

Imported by workers: the standard library at import time, pandas and pyarrow only when reading.
"""
from __future__ import annotations

import io
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

PATH_COLUMN = "Path"


def read_rows(slices: list[list[Any]], table: dict[str, Any] | None) -> Any:
    """The DataFrame of one mini-batch: its slices ([path, kind, start, stop]) one after another."""
    import pandas as pd

    frames = [read_slice(task, table) for task in slices]
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    if table:
        frame = frame.drop(columns=[c for c in table["drop"] if c in frame.columns])
        if table["keep"] is not None:
            frame = frame[[c for c in table["keep"] if c in frame.columns]]
    return frame


def read_slice(task: list[Any], table: dict[str, Any] | None) -> Any:
    import pandas as pd

    path, kind, start, stop = task
    options = (table or {}).get("options") or {}
    if kind == "parquet":
        import pyarrow.parquet as pq

        frame = pq.ParquetFile(path).read_row_groups(list(range(start, stop))).to_pandas()
    else:
        header_mode = options.get("header", "all_files_same_headers")
        has_header = kind == "csv" and header_mode != "no_header"
        with open(path, "rb") as handle:
            header = handle.readline() if has_header else b""
            handle.seek(start)
            data = handle.read(stop - start)
        encoding = options.get("encoding", "utf-8")
        if kind == "csv":
            empty_as_string = options.get("empty_as_string", False)
            frame = pd.read_csv(io.BytesIO(header + data), sep=options.get("delimiter", ","),
                                encoding=encoding, header=0 if has_header else None,
                                keep_default_na=not empty_as_string, na_filter=not empty_as_string)
            if not has_header:
                frame.columns = [f"Column{i + 1}" for i in range(frame.shape[1])]
        else:
            frame = pd.read_json(io.BytesIO(data.decode(encoding).encode("utf-8")), lines=True)
    if table:
        relative = str(Path(path).relative_to(table["root"]))
        if table.get("partition_format"):
            for name, value in partition_values(table["partition_format"], relative).items():
                frame[name] = value
        if table.get("include_path_column"):
            frame[PATH_COLUMN] = relative
    return frame


@lru_cache(maxsize=16)
def _pattern(partition_format: str) -> re.Pattern[str]:
    """`{a}/{b}/{file_name}.{extension}` as a regular expression matched at the end of a relative path."""
    parts = re.split(r"(\{[^{}]+\}|\*\*|\*)", partition_format.lstrip("/"))
    regex = ""
    for part in parts:
        if part.startswith("{"):
            regex += f"(?P<{part[1:-1]}>[^/]+?)"
        elif part == "**":
            regex += ".*"
        elif part == "*":
            regex += "[^/]*"
        else:
            regex += re.escape(part)
    return re.compile(f"(?:^|/){regex}$")


def partition_values(partition_format: str, relative_path: str) -> dict[str, str]:
    """The values a partition format extracts from a path relative to the MLTable's folder; {} when the
    path does not match it."""
    match = _pattern(partition_format).search(relative_path)
    return match.groupdict() if match else {}
