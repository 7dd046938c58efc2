"""The output folder of a run: one run at a time, never inside its inputs, and a clear word when unusable.

A run holds an exclusive lock on `<output>/.prs-lock` from start to end (flock: released by the kernel
when the process dies, so a killed run never leaves a stale lock). A second run on the same folder is
refused, naming the holder, instead of interleaving its rows with the first one's.
"""
from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from orchestration.errors import UsageError
from orchestration.prs.state import STATE_FOLDER

LOCK_FILE = ".prs-lock"
RUNNER_ENTRIES = ("logs", STATE_FOLDER, LOCK_FILE)  # what a run keeps in its output folder


class OutputUnusable(UsageError):
    """The output folder is busy, overlaps an input, or cannot be created."""


def check_separate(inputs: tuple[Path, ...], output: Path) -> None:
    """Refuses an output folder inside an input (its logs would become input items) or the reverse."""
    out = output.resolve()
    for path in inputs:
        source = path.resolve()
        if out == source or source in out.parents or out in source.parents:
            raise OutputUnusable(f"--output {output} overlaps --input {path}: choose an output folder "
                                 "outside every input, and no input inside the output")


@contextmanager
def claim(output: Path, inputs: tuple[Path, ...]) -> Iterator[Path]:
    """Creates the output folder if needed and holds its lock for the run."""
    check_separate(inputs, output)
    try:
        output.mkdir(parents=True, exist_ok=True)
        fd = os.open(output / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except FileExistsError:
        raise OutputUnusable(f"--output {output}: a file is in the way; expected a folder") from None
    except OSError as exc:
        raise OutputUnusable(f"--output {output}: cannot create or write it ({exc.strerror}); choose a "
                             "writable folder") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            raise OutputUnusable(f"--output {output} is in use by another run (pid {holder}); wait for it "
                                 "to end or choose another folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield output
    finally:
        os.close(fd)  # releases the lock


def check_links(output: Path, links: tuple[tuple[Path, Path], ...]) -> None:
    """Refuses links the run could not make in `output` (checked before a previous run is cleared): a
    link's folder outside the output, or holding anything but links.

    Raises:
        OutputUnusable: naming what is in the way.
    """
    for folder in sorted({link.parent for link, _ in links}):
        if not folder.resolve().is_relative_to(output.resolve()):
            raise OutputUnusable(f"--output {output}: {folder} is outside it (a link on the way?)")
        foreign = [entry for entry in (folder.iterdir() if folder.is_dir() else ()) if not entry.is_symlink()]
        if foreign or (folder.exists() and not folder.is_dir()):
            raise OutputUnusable(f"--output {output}: {foreign[0] if foreign else folder} is in the way of "
                                 f"the links the run makes in {folder}: remove it or choose another output")


def place_links(output: Path, links: tuple[tuple[Path, Path], ...]) -> None:
    """Makes each (link, target) in `output`, which the run holds, once check_links has passed: a link's
    folder holds only the links the run makes there, so an earlier run's are replaced. The targets are
    never touched."""
    folders = {link.parent for link, _ in links}
    for folder in sorted(folders):
        folder.mkdir(parents=True, exist_ok=True)
        for entry in folder.iterdir():
            entry.unlink()  # an earlier run's link: what it points to is untouched
    for link, target in links:
        link.symlink_to(target, target_is_directory=target.is_dir())
