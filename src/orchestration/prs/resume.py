"""Resume: what a previous run in the same output folder left, whether it may go on, and a fresh start.

A resume keeps the rows of the mini-batches that succeeded and runs the failed and unfinished ones. It
is what "fix it, then resume" means, so an entry script edited in place (a fix) may resume, with a
warning: its earlier rows stay as the earlier script produced them. A resume is refused when another
entry script, other inputs or settings that shape the output, the file list or any input file changed
since that run started.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from orchestration.errors import UsageError
from orchestration.prs.accounting import Accounting
from orchestration.prs.backlog import Backlog
from orchestration.prs.config import RunConfig, digest
from orchestration.prs.planning import Plan, write_plan
from orchestration.prs.state import (
    FAILED, SUCCEEDED, BatchRecord, StatePaths, decode_task, iter_records, read_task_lines, task_files,
    write_record,
)

log = logging.getLogger(__name__)


# What a user calls each part of RunConfig.result_shaping(), in a refusal.
CHANGE_NAMES = {
    "entry_script": "the entry script", "entry_script_sha256": "the entry script", "inputs": "the inputs",
    "input_type": "--input_type", "arguments": "the entry script's arguments",
    "environment_variables": "--environment_variables",
    "mini_batch_size": "MINI_BATCH_SIZE", "output_action": "OUTPUT_ACTION",
    "append_row_file_name": "APPEND_ROW_FILE_NAME", "python": "--python (LOCAL_PYTHON)",
    "table": "the MLTable (or the partitioned folder)", "partition_keys": "partition_keys",
    "partition_format": "PARTITION_FORMAT", "append_row_to": "append_row_to",
    "read_paths": "the model (--model)", "links": "the model's place (its name or version)",
}


class ResumeRefused(UsageError):
    """RESUME=1 on an output folder whose run had other inputs or settings."""


@dataclass(frozen=True)
class Resumed:
    plan: Plan
    backlog: Backlog  # the mini-batches still to do
    next_part: int  # the first part-file number no previous worker used


# In logs/, written by every run: what marks logs/ and the output file as this runner's to replace.
RUN_MARKER = ".written-by-prs"


def clear_previous_run(config: RunConfig, state: StatePaths, logs: Path) -> None:
    """A fresh run starts from nothing: a previous run's state, logs and output file go. Nothing else is
    deleted: a logs/ folder, or an output file, that no run of this runner wrote stops the run (the
    output file the previous run wrote is the one its marker names: another APPEND_ROW_FILE_NAME now
    does not make a stranger's file ours).

    Raises:
        UsageError: naming what is in the way.
    """
    if config.resume:
        log.info("nothing to resume in %s: starting a fresh run", config.output)
    marker = logs / RUN_MARKER
    previous_run = state.root.exists() or marker.exists()
    previous_file = previous_output_file(marker, config.output) if previous_run else None
    if previous_run and previous_file is None:  # a marker from before it named the file: as then
        previous_file = config.output_file
    if previous_file is not None and previous_file != config.output_file and not \
            previous_file.resolve().is_relative_to(config.output.resolve()):
        previous_file = None  # a copied (or crafted) marker never reaches outside this output folder
    ours: set[Path] = {logs} if previous_run and not logs.is_symlink() else set()
    if previous_file is not None:
        ours.add(previous_file)
    if config.output_file_rewritable:
        ours.add(config.output_file)
    foreign = [str(p) for p in (logs, config.output_file) if (p.exists() or p.is_symlink()) and p not in ours]
    if foreign:
        raise UsageError(f"--output {config.output}: {' and '.join(foreign)} already there, which no run of "
                         "this runner wrote; move it away or choose another output folder")
    for stale in (state.root, logs):
        shutil.rmtree(stale, ignore_errors=True)
    for written in {config.output_file, *([previous_file] if previous_file else [])}:
        written.unlink(missing_ok=True)
    logs.mkdir(parents=True)
    written = config.output_file  # relative to the folder when in it: a copy of the folder names its own
    if written.resolve().is_relative_to(config.output.resolve()):
        written = written.resolve().relative_to(config.output.resolve())
    marker.write_text("logs/ and the output file of this folder are replaced by the next run\n"
                      f"{OUTPUT_FILE_LINE}{written}\n", encoding="utf-8", errors="surrogateescape")


OUTPUT_FILE_LINE = "output_file: "


def previous_output_file(marker: Path, output: Path) -> Path | None:
    """The output file the run that wrote `marker` (in `output`) wrote; None when it names none."""
    try:
        lines = marker.read_text(encoding="utf-8", errors="surrogateescape").splitlines()
    except OSError:
        return None
    named = [line.removeprefix(OUTPUT_FILE_LINE) for line in lines if line.startswith(OUTPUT_FILE_LINE)]
    return output / named[0] if named else None  # an absolute one stays as it is


def plan_recorder(config: RunConfig, state: StatePaths, started_ns: int) -> Callable[[Plan], None]:
    """What the planner calls when done: plan.json, what a later resume must match."""
    def record(plan: Plan) -> None:
        write_atomically(state.plan, json.dumps({
            "fingerprint": config.result_fingerprint(), "shaping": config.result_shaping(),
            "listing_sha256": plan.listing_sha256,
            "started_ns": started_ns, "batches": plan.batches, "items": plan.items,
        }, indent=2))

    return record


def write_atomically(path: Path, text: str) -> None:
    """`path` holds the old text or the new, never a part: a kill or a full disk mid-write loses nothing."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def resume(config: RunConfig, state: StatePaths, accounting: Accounting) -> Resumed:
    """See _resume; a state folder that cannot be read (damaged, truncated) refuses the resume.

    Raises:
        ResumeRefused: naming what changed since that run, or the damage.
    """
    try:
        return _resume(config, state, accounting)
    except (ValueError, KeyError, TypeError, struct.error, OSError) as exc:
        raise ResumeRefused(f"RESUME refused for {config.output}: its state in {state.root} cannot be read "
                            f"({type(exc).__name__}: {exc}); run without RESUME to start afresh") from None


def _resume(config: RunConfig, state: StatePaths, accounting: Accounting) -> Resumed:
    """Checks that the previous run may go on and re-opens its failed mini-batches. The succeeded ones
    go into `accounting`: a resumed run is judged on the whole job, as a clean run would be.

    Raises:
        ResumeRefused: naming what changed since that run.
    """
    previous = json.loads(state.plan.read_text())
    refuse = f"RESUME refused for {config.output}: {{}}; run without RESUME to start afresh"
    now, before = config.result_shaping(), previous.get("shaping", {})
    fingerprint = digest(now)  # result_fingerprint(), without hashing the entry script again
    fixed_script = False
    if previous.get("fingerprint") != fingerprint:
        differences = {key for key in now if now[key] != before.get(key)}
        fixed_script = differences == {"entry_script_sha256"}  # the same file, edited: a fix
        if not fixed_script:
            changed = sorted({CHANGE_NAMES.get(key, key) for key in differences})
            verb = "differs" if len(changed) == 1 else "differ"
            raise ResumeRefused(refuse.format(f"{', '.join(changed) or 'the settings'} {verb} from that run"))
    scratch = StatePaths(state.root / "replan")
    shutil.rmtree(scratch.root, ignore_errors=True)
    try:
        plan = write_plan(config, scratch)
    finally:
        shutil.rmtree(scratch.root, ignore_errors=True)
    if previous.get("listing_sha256") != plan.listing_sha256:
        raise ResumeRefused(refuse.format("input files were added, removed or renamed since that run"))
    changed = first_changed_file(state, plan.batches, config.input_type == "tabular", previous["started_ns"])
    if changed:
        raise ResumeRefused(refuse.format(f"{changed} changed after that run started"))
    kept = 0
    with open(state.batches, "r+b") as records:
        for batch, record in iter_records(state.batches):
            if record.status == FAILED:  # a new chance
                write_record(records.fileno(), batch, BatchRecord(items=record.items))
            elif record.status == SUCCEEDED:
                accounting.recorded(batch, record.items, record.succeeded)
                kept += 1
    if fixed_script:
        log.warning("the entry script %s changed since that run: its %d succeeded mini-batches are kept as "
                    "the earlier script produced them, and the failed and unfinished ones run with this one "
                    "(run without RESUME to redo them all)", config.entry_script, kept)
        write_atomically(state.plan, json.dumps({**previous, "fingerprint": fingerprint, "shaping": now},
                                                indent=2))
    existing = [int(p.stem) for p in state.parts.glob("*.rows")]
    backlog = Backlog.pending_in(state.batches)
    log.info("resuming the run in %s: %d mini-batches to do", config.output, backlog.left)
    return Resumed(plan, backlog, max(existing, default=-1) + 1)


def first_changed_file(state: StatePaths, batches: int, tabular: bool, since_ns: int,
                       chunk: int = 4096) -> str:
    """The first file of the plan changed (status change time) after `since_ns`, or ''.

    ctime moves on every write, rename or replacement and cannot be set back, so this catches what a
    size/mtime comparison would miss, at the cost of one stat per file, paid on resume only.
    """
    checked = ""
    with open(state.tasks, "rb") as tasks, open(state.tasks_index, "rb") as index:
        for first in range(0, batches, chunk):
            for line in read_task_lines(tasks.fileno(), index.fileno(), first, min(chunk, batches - first)):
                for path in task_files(decode_task(line, tabular), tabular):
                    if path == checked:  # the slices of one tabular file
                        continue
                    checked = path
                    try:
                        if os.stat(path).st_ctime_ns > since_ns:
                            return path
                    except OSError:
                        return path
    return ""
