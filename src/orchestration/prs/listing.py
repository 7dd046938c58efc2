"""An input folder's files in sorted path order, by an external sort: runs of SORT_CHUNK names are
sorted and spilled to disk, then merged, so the parent's memory does not grow with the number of files.
Hidden files are skipped; an unreadable folder or a broken link is refused by name.
"""
from __future__ import annotations

import os
import sys
import tempfile
from bisect import bisect_right
from collections.abc import Iterator
from contextlib import AbstractContextManager
from itertools import islice
from pathlib import Path

from orchestration.errors import UsageError
from orchestration.prs.mltable import FILE_NAME as MLTABLE_FILE_NAME

SORT_CHUNK = 2**17  # most names held in memory at once while listing (about 13 MB)
MERGE_BYTES = 1 << 20  # what the merge reads of the spilled runs at once, all runs together
# Spilled names are written and read back as os.fsencode/os.fsdecode would (each name alone costs more).
_FS_CODEC = (sys.getfilesystemencoding(), sys.getfilesystemencodeerrors())


def _scan(root: Path, block: int = 4096) -> Iterator[list[str]]:
    """Paths of the non-hidden files below root, in unsorted blocks (no stat calls; symlinked folders
    are not followed, as in os.walk). An `MLTable` file at the root describes the folder: not an item."""
    if root.is_file():
        yield [str(root.resolve())]
        return
    top = str(root.resolve())
    stack = [top]
    while stack:
        folder = stack.pop()
        with _open_folder(folder) as entries:
            while chunk := list(islice(entries, block)):
                visible = [e for e in chunk if not e.name.startswith(".")
                           and not (e.name == MLTABLE_FILE_NAME and folder == top)]
                stack.extend(e.path for e in visible if e.is_dir(follow_symlinks=False))
                yield [e.path for e in visible if _is_input_file(e)]


def _open_folder(path: str) -> AbstractContextManager[Iterator[os.DirEntry[str]]]:
    """An input folder's entries; an unreadable one (no permission, a path longer than the system's
    PATH_MAX) is refused by name: the files in it are inputs the run could not reach."""
    try:
        return os.scandir(path)
    except OSError as exc:
        shown = path if len(path) <= 200 else f"{path[:100]}…{path[-60:]} ({len(path)} characters)"
        raise UsageError(f"input folder {shown}: {exc.strerror}; fix or move it") from None


def _is_input_file(entry: os.DirEntry[str]) -> bool:
    """A file, or a symbolic link to one. A link that leads nowhere (dangling, a loop, too long a path)
    is refused by name rather than skipped: it was meant to be an input."""
    try:
        if entry.is_file():
            return True
    except OSError as exc:
        raise UsageError(f"input {entry.path}: {exc.strerror}; fix or remove it") from None
    if entry.is_symlink() and not entry.is_dir():
        raise UsageError(f"input {entry.path} is a broken symbolic link; fix or remove it")
    return False


def _read_run(path: Path, block: int) -> Iterator[list[str]]:
    """The NUL-separated names of a spilled run, a list per `block` bytes read (cut after a NUL, which
    no multi-byte character of a file-system encoding contains)."""
    with path.open("rb") as handle:
        carry = b""
        while data := handle.read(block):
            data = carry + data
            cut = data.rfind(b"\0") + 1
            carry = data[cut:]
            if cut:
                yield data[:cut - 1].decode(*_FS_CODEC).split("\0")


def sorted_listing(root: Path, chunk: int = SORT_CHUNK,
                   merge_bytes: int = MERGE_BYTES) -> Iterator[list[str]]:
    """Every file below root in path order, in blocks. Past `chunk` names, each `chunk` names or so (the
    scan's blocks are not cut) are sorted and spilled to disk as a run, and the runs are merged,
    `merge_bytes` of them read at once: the memory held is that of `chunk` names, however many files."""
    with tempfile.TemporaryDirectory(prefix="prs-listing-") as spill_dir:
        runs: list[Path] = []
        buffer: list[str] = []
        for names in _scan(root):
            buffer += names
            if len(buffer) >= chunk:
                runs.append(_spill(buffer, Path(spill_dir, f"{len(runs)}.run")))
                buffer = []
        if not runs:
            buffer.sort()
            yield buffer
            return
        if buffer:
            runs.append(_spill(buffer, Path(spill_dir, f"{len(runs)}.run")))
            buffer = []  # not held through the merge
        share = max(merge_bytes // len(runs), 1)
        yield from merge_runs([_read_run(run, share) for run in runs])


def _spill(names: list[str], path: Path, piece: int = 8192) -> Path:
    """Sorts `names` and writes them to `path`, NUL-terminated, a piece at a time (not a copy of them
    all at once)."""
    names.sort()
    with path.open("wb") as handle:
        for start in range(0, len(names), piece):
            handle.write("\0".join(names[start:start + piece]).encode(*_FS_CODEC) + b"\0")
    return path


def merge_runs(runs: list[Iterator[list[str]]]) -> Iterator[list[str]]:
    """Sorted runs, each read as a series of sorted lists, merged a round at a time: every name up to the
    least of the runs' last loaded names goes out, sorted in C (the sort merges the runs' sorted pieces),
    so that a name costs a fraction of a Python-level heap merge's step."""
    loaded: list[list[str]] = [[] for _ in runs]
    live = list(range(len(runs)))
    while True:
        for at in live:
            while not loaded[at]:
                block = next(runs[at], None)
                if block is None:
                    break
                loaded[at] = block
        live = [at for at in live if loaded[at]]  # the others are read to the end
        if not live:
            return
        fence = min(loaded[at][-1] for at in live)  # no run has a name below it still unread
        out: list[str] = []
        for at in live:
            cut = bisect_right(loaded[at], fence)
            out += loaded[at][:cut]
            del loaded[at][:cut]
        out.sort()
        yield out
