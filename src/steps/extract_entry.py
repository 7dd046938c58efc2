"""Extraction entry script for ParallelRunStep (v1) and the v2 parallel job; also run by the local runner.

`run(mini_batch)` gets a list of file paths and returns one element per file it extracted: that file's
records as JSON lines. The runtime counts the returned elements as succeeded items, so a malformed file
is a failed item (logged with its reason) and never stops the run; with append_row, each element is
written with str(), so every record lands on its own line of the merged file.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

try:
    from steps.extract import MalformedRecordError, extract_file
except ImportError:  # Azure ML runs this file from a snapshot of src/ that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from steps.extract import MalformedRecordError, extract_file

_logger = logging.getLogger("extraction")


def init() -> None:
    """Uses the runtime's EntryScript logger, so messages land in logs/user/entry_script_log/."""
    global _logger
    try:
        from azureml_user.parallel_run import EntryScript
    except ImportError:  # plain Python (tests, benchmarks): the module logger
        return
    _logger = EntryScript().logger


def run(mini_batch: list[str]) -> list[str]:
    """Extracts each file of the mini-batch; malformed files are logged and left out of the result."""
    rows = []
    for path in mini_batch:
        try:
            rows.append(extract_file(path))
        except MalformedRecordError as exc:
            _logger.error("failed item %s: %s", path, exc)
    return rows
