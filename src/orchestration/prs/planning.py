"""Turns the inputs into mini-batches, written to the state folder as they are found.

File inputs: every file below each input folder, in sorted path order, MINI_BATCH_SIZE files per
mini-batch; inputs are split separately and never mixed. Tabular inputs (.csv, .jsonl, .parquet): each
file is cut into slices of about MINI_BATCH_SIZE bytes on row boundaries (parquet: whole row groups), never
crossing a file. A CSV row may span lines inside a quoted field ("a\nb"): the cut is never inside quotes,
as MLTable's support_multi_line reads them; JSON-lines rows are one line each. The files come from
`listing` (an external sort), so the parent's memory does not grow with the number of files.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from orchestration.errors import UsageError
from orchestration.prs.config import TABULAR_SUFFIXES, RunConfig
from orchestration.prs.listing import sorted_listing
from orchestration.prs.state import StatePaths, encode_file_task, pack_offset, pending_record
from orchestration.prs.tables import partition_values

NEWLINE = ord("\n")
_NOT_BLANK = re.compile(rb"\S")  # what bytes.strip() would keep
READ_BLOCK = 1 << 24  # the most of a tabular file the planner holds at once


@dataclass(frozen=True)
class Plan:
    batches: int
    items: int
    listing_sha256: str  # of every mini-batch's task line: the input files' paths (or tabular slices)


def row_ends(data: bytes | bytearray, end: int, quoted: bool, in_quote: bool) -> tuple[int, bool]:
    """(the newlines that end a row in data[:end], whether data[:end] ends inside a quoted field), the
    data starting inside one when `in_quote`. With `quoted` (CSV), a newline after an odd number of
    double quotes is inside a field (an escaped quote, "", keeps the parity). Data with no quote is
    counted as before; with quotes, vectorized: 16 MB in about 75 ms here, 17 times a Python loop's."""
    if not quoted or (not in_quote and data.find(b'"', 0, end) == -1):
        return data.count(b"\n", 0, end), in_quote
    import numpy as np

    array = np.frombuffer(data, dtype=np.uint8, count=end)
    quotes = np.flatnonzero(array == ord('"'))
    quotes_before = np.searchsorted(quotes, np.flatnonzero(array == NEWLINE)) + in_quote
    return int(np.count_nonzero(quotes_before % 2 == 0)), bool((len(quotes) + in_quote) % 2)


def _csv_slices(path: str, size_bytes: int, header: bool, quoted: bool = False,
                block: int = READ_BLOCK) -> Iterator[tuple[int, int, int]]:
    """(start, stop, rows) byte slices of a line-oriented file, cut after a newline that ends a row
    (`quoted`: not one inside a quoted CSV field). The file is read a block at a time into one reused
    buffer, no larger than the file: a fresh object per slice cost more (its page faults, a copy to
    append the cut line, another to check for blank space) than counting the rows, and a huge
    MINI_BATCH_SIZE must not become a huge allocation."""
    with open(path, "rb") as handle:
        start = len(handle.readline()) if header else 0
        handle.seek(start)
        buffer = bytearray(max(1, min(size_bytes, block, os.fstat(handle.fileno()).st_size - start)))
        view = memoryview(buffer)
        in_quote = False
        while True:
            length = rows = 0
            blank, ends_row = True, True
            while length < size_bytes and (got := handle.readinto(view[:size_bytes - length])):
                found, in_quote = row_ends(buffer, got, quoted, in_quote)
                rows += found
                blank = blank and not _NOT_BLANK.search(buffer, 0, got)
                ends_row = buffer[got - 1] == NEWLINE and not in_quote
                length += got
            if not length:
                return
            while not ends_row:  # the rest of the cut row
                cut = handle.readline()
                if not cut:
                    break
                found, in_quote = row_ends(cut, len(cut), quoted, in_quote)
                rows += found
                blank = blank and not cut.strip()
                ends_row = cut.endswith(b"\n") and not in_quote
                length += len(cut)
            if not ends_row:  # the file's last row, without a newline (or with a quote never closed)
                rows += 1
            if not blank:
                yield start, start + length, rows
            start += length


def _parquet_slices(path: str, size_bytes: int) -> Iterator[tuple[int, int, int]]:
    """(first row group, stop row group, rows): consecutive row groups up to about size_bytes."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    first, rows, size = 0, 0, 0
    for group in range(meta.num_row_groups):
        rows += meta.row_group(group).num_rows
        size += meta.row_group(group).total_byte_size
        if size >= size_bytes:
            yield first, group + 1, rows
            first, rows, size = group + 1, 0, 0
    if first < meta.num_row_groups:
        yield first, meta.num_row_groups, rows


def _tabular_tasks(path: str, size_bytes: int, kind: str | None = None,
                   header: bool = True) -> Iterator[tuple[list[object], int]]:
    """Slices of one file: `kind` (csv, jsonl, parquet) from an MLTable's reader, else from the suffix."""
    kind = kind or Path(path).suffix.lower().lstrip(".")
    if kind == "parquet":
        slices = _parquet_slices(path, size_bytes)
    elif kind in ("csv", "jsonl"):
        slices = _csv_slices(path, size_bytes, header=header and kind == "csv", quoted=kind == "csv")
    else:
        raise UsageError(f"tabular input {path}: expected one of {', '.join(TABULAR_SUFFIXES)} files")
    for start, stop, rows in slices:
        yield [path, kind, start, stop], rows


TABLE_KINDS = {"delimited": "csv", "json_lines": "jsonl", "parquet": "parquet"}
WHOLE_FILE = 1 << 62


def _encode_json(task: object) -> bytes:
    # ASCII with escapes: a file name that is no UTF-8 (a surrogate escape) reads back as the same name
    return json.dumps(task).encode("ascii")


def _table_tasks(config: RunConfig) -> Iterator[tuple[bytes, int]]:
    """The mini-batches of an MLTable input: by partition when partition_keys are set, else by size
    (tabular) or by file count (files)."""
    table = config.table
    assert table is not None
    tabular = config.input_type == "tabular"
    kind = TABLE_KINDS.get(table["reader"] or "")
    if tabular and kind is None:
        raise UsageError(f"MLTable {table['root']}: a tabular (direct) input needs a read_delimited, "
                         "read_parquet or read_json_lines transformation")
    header = (table["options"].get("header") or "all_files_same_headers") != "no_header"
    if not config.partition_keys:
        if tabular:
            for path in table["files"]:
                for task, rows in _tabular_tasks(path, config.mini_batch_size, kind, header):
                    yield _encode_json(task), rows
            return
        files, size = table["files"], config.mini_batch_size
        for start in range(0, len(files), size):
            batch = files[start:start + size]
            yield encode_file_task(batch), len(batch)
        return
    groups: dict[tuple[str, ...], list[str]] = {}
    for path in table["files"]:
        values = partition_values(table["partition_format"] or "", str(Path(path).relative_to(table["root"])))
        key = tuple(values.get(name, "") for name in config.partition_keys)
        if not all(key):
            raise UsageError(f"partition_keys: {path} does not match the partition format "
                             f"{table['partition_format']!r}")
        groups.setdefault(key, []).append(path)
    for key in sorted(groups):
        partition = dict(zip(config.partition_keys, key))
        if not tabular:
            yield _encode_json({"partition": partition, "files": groups[key]}), len(groups[key])
            continue
        slices, rows = [], 0
        for path in groups[key]:
            task, count = _whole_file(path, kind, header)
            slices.append(task)
            rows += count
        yield _encode_json({"partition": partition, "slices": slices}), rows


def _whole_file(path: str, kind: str, header: bool, block: int = 1 << 20) -> tuple[list[object], int]:
    """A whole file as one slice and its rows, counted a block at a time (parquet: from its footer)."""
    if kind == "parquet":
        found = list(_tabular_tasks(path, WHOLE_FILE, kind))  # one slice: every row group
        return found[0] if found else ([path, kind, 0, 0], 0)
    with open(path, "rb") as handle:
        start = len(handle.readline()) if header and kind == "csv" else 0
        handle.seek(start)
        rows, last, in_quote = 0, b"\n", False
        while data := handle.read(block):
            found, in_quote = row_ends(data, len(data), kind == "csv", in_quote)
            rows += found
            last = data[-1:]
        stop = handle.tell()
    return [path, kind, start, stop], rows + (last != b"\n" or in_quote)


def _tasks(config: RunConfig) -> Iterator[tuple[bytes, int]]:
    """(encoded task, items) for every mini-batch, inputs one after another."""
    if config.table is not None:
        yield from _table_tasks(config)
        return
    size = config.mini_batch_size
    for root in config.inputs:
        carry: list[str] = []
        for names in sorted_listing(root):
            if config.input_type == "tabular":
                for path in names:
                    for task, rows in _tabular_tasks(path, size):
                        yield _encode_json(task), rows
                continue
            names = carry + names if carry else names
            whole = len(names) - len(names) % size
            for start in range(0, whole, size):
                yield encode_file_task(names[start:start + size]), size
            carry = names[whole:]
        if carry:
            yield encode_file_task(carry), len(carry)


def write_plan(config: RunConfig, paths: StatePaths,
               on_progress: Callable[[int], None] | None = None, every: int = 256) -> Plan:
    """Lists the inputs and writes the tasks, their index and a pending record per mini-batch.

    `on_progress(n)` is called whenever the first n mini-batches are on disk, so that work can start
    while the rest is still being planned.
    """
    paths.root.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    batches = items = offset = 0
    with paths.tasks.open("wb") as tasks, paths.tasks_index.open("wb") as index, \
            paths.batches.open("wb") as records:
        index.write(pack_offset(0))
        for task, count in _tasks(config):
            line = task + b"\n"
            digest.update(line)
            tasks.write(line)
            offset += len(line)
            index.write(pack_offset(offset))
            records.write(pending_record(count))
            batches += 1
            items += count
            if on_progress and batches % every == 0:
                for handle in (tasks, index, records):
                    handle.flush()
                on_progress(batches)
    if on_progress:
        on_progress(batches)
    return Plan(batches=batches, items=items, listing_sha256=digest.hexdigest())
