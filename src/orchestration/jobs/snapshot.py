"""A command node's code as Azure ML runs it: a snapshot, not the user's folder.

Azure uploads the `code` folder (or the one file) and runs the command in a copy of it, so what a
command writes beside itself (`./outputs`, a log, `__pycache__`) never lands in the source tree. Here
the copy is `OUTPUT/<node>/.code`, less what the folder's `.amlignore` (else `.gitignore`) excludes,
read by azure-ai-ml's own ignore-file rules; links are followed, as the upload follows them. With no
`code`, the command runs in that folder empty.
"""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

SNAPSHOT_FOLDER = ".code"  # no output can take this name: Azure's output names are identifiers


def snapshot(code: Path | None, node_folder: Path, leave_out: Path) -> Path:
    """Copies `code` (a folder, a file, or None) into `node_folder/.code`, replacing an earlier copy;
    returns the copy, where the command runs. Links are followed, as Azure's upload follows them (a
    command writing through one would write outside the output), each real folder once; `leave_out`
    (the run's output, which may lie inside the code folder) is not copied."""
    from azure.ai.ml._utils._asset_utils import get_ignore_file

    target = node_folder / SNAPSHOT_FOLDER
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    if code is None:
        return target
    if code.is_file():
        shutil.copy2(code, target / code.name)
        return target
    rules = get_ignore_file(code)
    left_out = os.path.realpath(leave_out)
    for folder, folders, files in os.walk(code, followlinks=True):
        real = os.path.realpath(folder)
        relative = Path(folder).relative_to(code)
        above = {os.path.realpath(code / part) for part in relative.parents}
        if real in above or real == left_out or real.startswith(left_out + os.sep):
            folders[:] = []  # a link back up (a loop), or the output: not copied
            continue
        folders[:] = [name for name in folders
                      if name != ".git" and not rules.is_file_excluded(Path(folder, name))]
        (target / relative).mkdir(parents=True, exist_ok=True)
        for name in files:
            source = Path(folder, name)
            if rules.is_file_excluded(source):
                continue
            if not source.exists():
                log.warning("snapshot of %s: %s is a link to nothing, left out", code, source)
                continue
            shutil.copy2(source, target / relative / name)
    return target
