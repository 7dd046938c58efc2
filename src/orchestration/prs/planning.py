"""Turns the inputs into mini-batches, written to the state folder as they are found.

File inputs: every file below each input folder, in sorted path order, MINI_BATCH_SIZE files per
mini-batch; inputs are split separately and never mixed. Tabular inputs (.csv, .jsonl, .parquet): each
file is cut into slices of about MINI_BATCH_SIZE bytes on row boundaries (parquet: whole row groups), never
crossing a file. CSV and JSON-lines rows must not span lines. Listing is an external sort in chunks, so
the parent's memory does not grow with the number of files.
"""
from __future__ import annotations

import hashlib
import heapq
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from orchestration.cli import UsageError
from orchestration.prs.config import TABULAR_SUFFIXES, RunConfig
from orchestration.prs.state import BatchRecord, StatePaths, pack_offset

SORT_CHUNK = 50_000  # names held in memory at once while listing


@dataclass(frozen=True)
class Plan:
    batches: int
    items: int
    listing_sha256: str  # names, sizes and modification times of every input file, in order


def _scan(root: Path) -> Iterator[str]:
    """`path\\0size\\0mtime` for every non-hidden regular file below root (unsorted, streaming)."""
    if root.is_file():
        stat = root.stat()
        yield f"{root.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}"
        return
    stack = [str(root.resolve())]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir():
                    stack.append(entry.path)
                elif entry.is_file():
                    if "\n" in entry.path:
                        raise UsageError(f"input file names must not contain a newline: {entry.path!r}")
                    stat = entry.stat()
                    yield f"{entry.path}\0{stat.st_size}\0{stat.st_mtime_ns}"


def sorted_listing(root: Path, chunk: int = SORT_CHUNK) -> Iterator[tuple[str, int, int]]:
    """(path, size, mtime_ns) of every file below root in path order, sorting in spilled chunks."""
    with tempfile.TemporaryDirectory(prefix="prs-listing-") as spill_dir, ExitStack() as stack:
        runs: list[Iterable[str]] = []
        buffer: list[str] = []

        def spill() -> None:
            buffer.sort()
            spill_path = Path(spill_dir, f"{len(runs)}.txt")
            spill_path.write_text("".join(line + "\n" for line in buffer), encoding="utf-8",
                                  errors="surrogateescape")
            handle = stack.enter_context(spill_path.open(encoding="utf-8", errors="surrogateescape"))
            runs.append(line.rstrip("\n") for line in handle)
            buffer.clear()

        for line in _scan(root):
            buffer.append(line)
            if len(buffer) >= chunk:
                spill()
        buffer.sort()
        runs.append(iter(buffer))
        for line in heapq.merge(*runs):
            path, size, mtime = line.split("\0")
            yield path, int(size), int(mtime)


def _csv_slices(path: str, size_bytes: int, header: bool) -> Iterator[tuple[int, int, int]]:
    """(start, stop, rows) byte slices of a line-oriented file, cut after a newline."""
    with open(path, "rb") as handle:
        start = len(handle.readline()) if header else 0
        handle.seek(start)
        while True:
            chunk = handle.read(size_bytes)
            if not chunk:
                return
            if not chunk.endswith(b"\n"):
                chunk += handle.readline()
            rows = chunk.count(b"\n") + (0 if chunk.endswith(b"\n") else 1)
            if chunk.strip():
                yield start, start + len(chunk), rows
            start += len(chunk)


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


def _tabular_tasks(path: str, size_bytes: int) -> Iterator[tuple[list[object], int]]:
    suffix = Path(path).suffix.lower()
    if suffix == ".parquet":
        slices = _parquet_slices(path, size_bytes)
    elif suffix in (".csv", ".jsonl"):
        slices = _csv_slices(path, size_bytes, header=suffix == ".csv")
    else:
        raise UsageError(f"tabular input {path}: expected one of {', '.join(TABULAR_SUFFIXES)} files")
    for start, stop, rows in slices:
        yield [path, suffix.lstrip("."), start, stop], rows


def _tasks(config: RunConfig, digest: "hashlib._Hash") -> Iterator[tuple[object, int]]:
    """(task description, items) for every mini-batch, inputs one after another."""
    for root in config.inputs:
        batch: list[str] = []
        for path, size, mtime in sorted_listing(root):
            digest.update(f"{path}\0{size}\0{mtime}\n".encode("utf-8", "surrogateescape"))
            if config.input_type == "tabular":
                yield from _tabular_tasks(path, config.mini_batch_size)
                continue
            batch.append(path)
            if len(batch) == config.mini_batch_size:
                yield batch, len(batch)
                batch = []
        if batch:
            yield batch, len(batch)


def write_plan(config: RunConfig, paths: StatePaths) -> Plan:
    """Lists the inputs and writes tasks.jsonl, tasks.idx and a pending batches.bin."""
    paths.root.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    batches = items = offset = 0
    with paths.tasks.open("wb") as tasks, paths.tasks_index.open("wb") as index, \
            paths.batches.open("wb") as records:
        for task, count in _tasks(config, digest):
            line = json.dumps(task, ensure_ascii=False).encode("utf-8", "surrogateescape") + b"\n"
            index.write(pack_offset(offset))
            tasks.write(line)
            records.write(BatchRecord(items=count).pack())
            offset += len(line)
            batches += 1
            items += count
        index.write(pack_offset(offset))
    return Plan(batches=batches, items=items, listing_sha256=digest.hexdigest())
