"""The on-disk record of a run, so that the parent's memory stays flat and a run can resume.

Under `<output>/.prs-state/`:
- `tasks.lines` — line k describes mini-batch k (its file paths, or a tabular slice);
- `tasks.idx` — uint64 offsets: 0, then the end of each line, for random access;
- `batches.bin` — one fixed-size BatchRecord per mini-batch: status, items, where its rows are;
- `parts/NNNN.rows` — append-only row files, one per worker process; rows are found by offset/length;
- `plan.json` — the fingerprint a resume must match;
- `slots.bin` — what each worker's run() is doing now (SlotTable), for the timeouts.
Workers write their own records (each mini-batch has a distinct slot), so the parent never touches rows.
"""
from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

PENDING, SUCCEEDED, FAILED = 0, 1, 2
# status, attempts, spare, items, succeeded, part, offset and length of its rows, lines in them
_RECORD = struct.Struct("<BBHIIIQII")
RECORD_SIZE = _RECORD.size
_OFFSET = struct.Struct("<Q")


STATE_FOLDER = ".prs-state"


@dataclass(frozen=True)
class StatePaths:
    root: Path

    @classmethod
    def of(cls, output: Path) -> "StatePaths":
        return cls(output / STATE_FOLDER)

    @property
    def tasks(self) -> Path:
        return self.root / "tasks.lines"

    @property
    def tasks_index(self) -> Path:
        return self.root / "tasks.idx"

    @property
    def batches(self) -> Path:
        return self.root / "batches.bin"

    @property
    def parts(self) -> Path:
        return self.root / "parts"

    @property
    def plan(self) -> Path:
        return self.root / "plan.json"

    @property
    def slots(self) -> Path:
        return self.root / "slots.bin"

    @property
    def work(self) -> Path:
        return self.root / "work"

    def part(self, number: int) -> Path:
        return self.parts / f"{number:04d}.rows"


class BatchRecord(NamedTuple):
    """The on-disk state of one mini-batch (a NamedTuple: workers build one per mini-batch)."""
    status: int = PENDING
    attempts: int = 0
    items: int = 0
    succeeded: int = 0
    part: int = 0
    offset: int = 0
    length: int = 0
    lines: int = 0

    def pack(self) -> bytes:
        """The one place that knows the record layout (the spare field, attempts capped to a byte)."""
        return _RECORD.pack(self.status, min(self.attempts, 255), 0, self.items, self.succeeded, self.part,
                            self.offset, self.length, self.lines)

    @classmethod
    def unpack(cls, data: bytes) -> "BatchRecord":
        status, attempts, _, items, succeeded, part, offset, length, lines = _RECORD.unpack(data)
        return cls(status, attempts, items, succeeded, part, offset, length, lines)


def write_record(fd: int, batch: int, record: BatchRecord) -> None:
    os.pwrite(fd, record.pack(), batch * RECORD_SIZE)


@lru_cache(maxsize=256)  # a plan's mini-batches mostly share one item count
def pending_record(items: int) -> bytes:
    return BatchRecord(items=items).pack()


def write_records(fd: int, records: list[tuple[int, BatchRecord]]) -> None:
    """Writes (mini-batch, record) pairs, one pwrite per run of consecutive mini-batches."""
    run_start, chunk = -1, bytearray()
    for batch, record in records:
        if chunk and batch != run_start + len(chunk) // RECORD_SIZE:
            os.pwrite(fd, chunk, run_start * RECORD_SIZE)
            chunk = bytearray()
        if not chunk:
            run_start = batch
        chunk += record.pack()
    if chunk:
        os.pwrite(fd, chunk, run_start * RECORD_SIZE)


def read_record(fd: int, batch: int) -> BatchRecord:
    return BatchRecord.unpack(os.pread(fd, RECORD_SIZE, batch * RECORD_SIZE))


def iter_raw_records(path: Path, chunk: int = 65536) -> Iterator[tuple[int, ...]]:
    """Every record as a plain tuple (status, attempts, spare, items, succeeded, part, offset, length,
    lines), in mini-batch order; the fast path for whole-run scans."""
    with path.open("rb") as handle:
        while data := handle.read(RECORD_SIZE * chunk):
            yield from _RECORD.iter_unpack(data)


def iter_records(path: Path, chunk: int = 4096) -> Iterator[tuple[int, BatchRecord]]:
    """Every (mini-batch, record) in order, read in chunks so memory stays flat."""
    with path.open("rb") as handle:
        batch = 0
        while data := handle.read(RECORD_SIZE * chunk):
            for start in range(0, len(data), RECORD_SIZE):
                yield batch, BatchRecord.unpack(data[start:start + RECORD_SIZE])
                batch += 1


def read_task_lines(tasks_fd: int, index_fd: int, first: int, count: int) -> list[bytes]:
    """The raw tasks.lines lines of mini-batches first .. first+count-1 (two preads)."""
    raw = os.pread(index_fd, _OFFSET.size * (count + 1), first * _OFFSET.size)
    offsets = [value for (value,) in _OFFSET.iter_unpack(raw)]
    data = os.pread(tasks_fd, offsets[-1] - offsets[0], offsets[0])
    base = offsets[0]
    return [data[a - base:b - base - 1] for a, b in zip(offsets, offsets[1:])]  # -1: the newline


def encode_file_task(paths: list[str]) -> bytes:
    """A file-input mini-batch as one line: its paths joined by NUL (which no path contains)."""
    return "\0".join(paths).encode("utf-8", "surrogateescape")


def decode_task(line: bytes, tabular: bool) -> Any:
    """The inverse of the planner's encoding: a list of paths, [path, kind, start, stop], or a partition's
    {"partition": {key: value}, "files": [...]} or {"partition": ..., "slices": [[path, kind, ...], ...]}."""
    if tabular or line[:1] == b"{":
        return json.loads(line)
    return line.decode("utf-8", "surrogateescape").split("\0")


def task_files(task: Any, tabular: bool) -> list[str]:
    """The input files a decoded task reads."""
    if isinstance(task, dict):
        return task["files"] if "files" in task else [piece[0] for piece in task["slices"]]
    return [task[0]] if tabular else task


def pack_offset(offset: int) -> bytes:
    return _OFFSET.pack(offset)


class SlotTable:
    """What each worker's run() is doing now: (mini-batch or -1, start time), in a shared mmap'd file.

    The worker writes its own slot around each run() call; the parent reads all slots to enforce
    RUN_INVOCATION_TIMEOUT. time.monotonic() is one clock for all processes on Linux. The writes are not
    atomic, so each slot carries a sequence number, odd while being written (a seqlock): a reader never
    acts on a half-written slot, e.g. a new mini-batch with the previous start time.
    """

    _SEQ = struct.Struct("<Q")
    _DATA = struct.Struct("<qd")
    _SIZE = _SEQ.size + _DATA.size

    def __init__(self, path: Path, slots: int, create: bool = False):
        import mmap

        if create:
            path.write_bytes((self._SEQ.pack(0) + self._DATA.pack(-1, 0.0)) * slots)
        with path.open("r+b") as handle:
            self._map = mmap.mmap(handle.fileno(), self._SIZE * slots)
        self._seq = [0] * slots  # the writer's own counters (each slot has one writer)

    def _write(self, slot: int, batch: int, started: float) -> None:
        offset = slot * self._SIZE
        self._seq[slot] += 1
        self._SEQ.pack_into(self._map, offset, self._seq[slot])  # odd: being written
        self._DATA.pack_into(self._map, offset + self._SEQ.size, batch, started)
        self._seq[slot] += 1
        self._SEQ.pack_into(self._map, offset, self._seq[slot])  # even: consistent

    def start(self, slot: int, batch: int, started: float) -> None:
        self._write(slot, batch, started)

    def clear(self, slot: int) -> None:
        self._write(slot, -1, 0.0)

    def reset(self, slot: int) -> None:
        """For the parent, before a new worker takes the slot: the new writer counts from zero."""
        self._SEQ.pack_into(self._map, slot * self._SIZE, 0)
        self._DATA.pack_into(self._map, slot * self._SIZE + self._SEQ.size, -1, 0.0)

    def read(self, slot: int) -> tuple[int, float]:
        """(mini-batch, start time) of a consistent state, or (-1, 0.0) if the slot is being written."""
        offset = slot * self._SIZE
        for _ in range(3):
            (before,) = self._SEQ.unpack_from(self._map, offset)
            batch, started = self._DATA.unpack_from(self._map, offset + self._SEQ.size)
            (after,) = self._SEQ.unpack_from(self._map, offset)
            if before == after and before % 2 == 0:
                return batch, started
        return -1, 0.0

    def close(self) -> None:
        self._map.close()
