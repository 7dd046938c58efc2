"""Preparation logic: bring the raw files from a datastore folder into the step's output. No Azure ML."""
from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from tqdm import tqdm

log = logging.getLogger(__name__)


def iter_files(root: Path) -> Iterator[Path]:
    """Every regular file below `root`, as paths relative to it, in sorted order; hidden files skipped,
    and links that lead nowhere skipped with a warning (they hold no data to copy or upload)."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = Path(folder, name)
            if not path.is_file():
                log.warning("skipping %s: a link to nothing", path)
                continue
            yield path.relative_to(root)


def copy_files(source: Path, target: Path) -> int:
    """Copies the files below `source` into `target`, keeping their relative paths.

    Returns the number of files copied.

    Raises:
        FileNotFoundError: if `source` is not a folder.
        FileExistsError: if `target` already holds files (stale files would be extracted twice).
    """
    if not source.is_dir():
        raise FileNotFoundError(f"input folder {source} does not exist")
    if target.is_dir() and any(target.iterdir()):
        raise FileExistsError(f"output folder {target} is not empty")
    count = 0
    for relative in tqdm(iter_files(source), unit="file", desc="prepare", disable=None):
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / relative, destination)
        count += 1
    return count
