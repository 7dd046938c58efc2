"""A command node's code as Azure ML runs it: a snapshot, not the user's folder.

Azure uploads the `code` folder (or the one file) and runs the command in a copy of it, so what a
command writes beside itself (`./outputs`, a log, `__pycache__`) never lands in the source tree. Here
the copy is `OUTPUT/<node>/.code`, less what the folder's `.amlignore` (else `.gitignore`) excludes,
read by azure-ai-ml's own ignore-file rules; links are copied as links. With no `code`, the command
runs in that folder empty.
"""
from __future__ import annotations

import shutil
from pathlib import Path

SNAPSHOT_FOLDER = ".code"  # no output can take this name: Azure's output names are identifiers


def snapshot(code: Path | None, node_folder: Path) -> Path:
    """Copies `code` (a folder, a file, or None) into `node_folder/.code`, replacing an earlier copy;
    returns the copy, where the command runs."""
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

    def ignored(folder: str, names: list[str]) -> set[str]:
        return {name for name in names if name == ".git" or rules.is_file_excluded(Path(folder, name))}

    shutil.copytree(code, target, symlinks=True, ignore=ignored, dirs_exist_ok=True)
    return target
