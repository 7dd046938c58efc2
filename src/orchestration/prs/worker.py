"""One worker process: imports the entry script; init() once, run() per mini-batch, shutdown() at the end.

The worker reads its mini-batches from the state folder, appends the returned rows to its own part file,
writes each succeeded mini-batch's record itself and reports to the parent in small batched messages.
While run() executes, its mini-batch and start time sit in a shared slot, so the parent can enforce the
timeout by killing this process.
"""
from __future__ import annotations

import ctypes
import importlib.util
import inspect
import logging
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from orchestration.prs.config import RunConfig
from orchestration.prs.protocol import (
    BROKEN, DONE, ERROR, INIT_FAILED, LEASE, PARTIAL, READY, SUCCESS, Shortfall, attempt_line,
    exception_reason,
)
from orchestration.prs.state import (
    SUCCEEDED, BatchRecord, SlotTable, StatePaths, decode_task, read_task_lines, write_records,
)
from orchestration.prs.tables import read_rows

SHIM_DIR = Path(__file__).resolve().parent / "shim"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FLUSH_SECONDS = 0.5  # report progress at least this often during a long lease
MLFLOW_STORE = "mlruns"  # in the run's logs folder: MLflow's store, unless MLFLOW_TRACKING_URI is set


@dataclass(frozen=True)
class WorkerSpec:
    config: RunConfig
    state: StatePaths
    logs: Path
    node: int
    agent_name: str  # processNNN, unique on its node
    part: int  # number of this process's part file
    slot: int  # index into the shared (mini-batch, start time) array

    def log_file(self, *parts: str, suffix: str) -> Path:
        path = self.logs.joinpath(*parts, str(self.node), f"{self.agent_name}{suffix}")
        path.parent.mkdir(parents=True, exist_ok=True)
        return path


@dataclass(frozen=True)
class MiniBatchContext:
    """What `run(mini_batch, mini_batch_context)` receives: the mini-batch's index, its partition's key
    values ({} without partition_keys) and, for an MLTable input, the table's folder."""

    minibatch_index: int
    partition_key_value: dict[str, Any]
    dataset: Any = None


def result_length(result: Any) -> int:
    """The number of succeeded items: len() of a list, tuple or DataFrame; anything else is an error."""
    if isinstance(result, (list, tuple)) or type(result).__name__ == "DataFrame":
        return len(result)
    raise TypeError(f"run() returned {type(result).__name__}; expected a list, tuple or pandas DataFrame")


def serialize_rows(result: Any) -> bytes:
    """append_row's format: str() of each element per line; a DataFrame space-separated, no header/index."""
    if isinstance(result, (list, tuple)):
        text = "\n".join(map(str, result)) + "\n" if result else ""
    else:
        text = result.to_csv(sep=" ", header=False, index=False)
    return text.encode("utf-8", "backslashreplace")


class Worker:
    """The state of one worker process between mini-batches."""

    def __init__(self, spec: WorkerSpec, conn: Connection, slots: SlotTable):
        self.spec, self.conn, self.slots = spec, conn, slots
        config = spec.config
        self.append = config.output_action == "append_row"
        self.tabular = config.input_type == "tabular"
        self.table = config.table
        self.dataset = config.table["root"] if config.table else None  # Azure gives a dataset object
        self.tasks_fd = self.index_fd = self.records_fd = -1  # opened at the first lease: the parent
        # may still be writing the plan while this worker runs init()
        self.buffer: list[bytes] = []  # rows not yet written to the part file
        self.buffered = 0
        self.pending: list[tuple[int, BatchRecord]] = []  # their records, written after the rows
        self.report_first = self.report_count = 0  # the mini-batches finished since the last report
        self.reports: list[Shortfall] = []  # those among them that did not return in full
        self.csv_rows: list[str] = []
        spec.state.parts.mkdir(parents=True, exist_ok=True)
        part_path = spec.state.part(spec.part)
        self.part_fd = os.open(part_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.part_offset = os.fstat(self.part_fd).st_size
        # Logs take any text: a file name that is no UTF-8 (a surrogate escape) is written as \udcff.
        self.attempts_log = spec.log_file("sys", "job_report", suffix=".csv").open(
            "a", encoding="utf-8", errors="backslashreplace")
        self.error_log = spec.log_file("user", "error", suffix=".txt")
        self.module: Any = None
        self.pass_context = False

    # --- entry script
    def load_entry_script(self) -> None:
        """Imports the entry script like the runtime: its folder and the EntryScript shim on sys.path."""
        config, spec = self.spec.config, self.spec
        from azureml_user import parallel_run  # the shim, put on sys.path by prepare_process

        parallel_run.configure(
            log_dir=str(spec.log_file("user", "entry_script_log", suffix="").parent),
            output_dir=str(config.output), working_dir=str(spec.state.work),
            agent_name=spec.agent_name, level=config.logging_level,
        )
        script = config.entry_script.resolve()
        sys.path.insert(0, str(script.parent))
        module_spec = importlib.util.spec_from_file_location(script.stem, script)
        assert module_spec and module_spec.loader
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[script.stem] = module
        # The script and the modules beside it, imported now or later by run(), come from the user's
        # own folder (Azure imports them from a snapshot): no __pycache__ is written there, for the
        # worker's whole life. Bytecode that is already there, or in site-packages, is still read.
        sys.dont_write_bytecode = True
        module_spec.loader.exec_module(module)
        if not callable(getattr(module, "run", None)):
            raise AttributeError(f"entry script {script.name} has no run() function")
        if callable(getattr(module, "init", None)):
            module.init()
        parameters = inspect.signature(module.run).parameters.values()
        positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        self.pass_context = len(positional) >= 2
        self.module = module

    def shutdown(self) -> None:
        if self.module is not None and callable(getattr(self.module, "shutdown", None)):
            self.module.shutdown()

    def log_error(self, what: str) -> None:
        with self.error_log.open("a", encoding="utf-8", errors="backslashreplace") as handle:
            handle.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {what}\n{traceback.format_exc()}\n")

    # --- mini-batches
    def open_state(self) -> None:
        state = self.spec.state
        self.tasks_fd = os.open(state.tasks, os.O_RDONLY)
        self.index_fd = os.open(state.tasks_index, os.O_RDONLY)
        self.records_fd = os.open(state.batches, os.O_WRONLY)

    def process_lease(self, first: int, count: int, attempt: int) -> None:
        """Runs mini-batches first .. first+count-1; this loop is the runner's hot path."""
        if self.tasks_fd < 0:
            self.open_state()
        lines = read_task_lines(self.tasks_fd, self.index_fd, first, count)
        run, tabular, append, part = self.module.run, self.tabular, self.append, self.spec.part
        node, agent = self.spec.node, self.spec.agent_name
        slots, slot = self.slots, self.spec.slot
        flush_at = time.monotonic() + FLUSH_SECONDS
        self.report_first, self.report_count = first, 0
        for batch, line in enumerate(lines, start=first):
            started = time.monotonic()
            items = succeeded = 0
            try:
                task = decode_task(line, tabular)
                partition = task["partition"] if isinstance(task, dict) else {}
                if tabular:
                    mini_batch = read_rows(task["slices"] if partition else [task], self.table)
                else:
                    mini_batch = task["files"] if partition else task
                items = len(mini_batch)
                slots.start(slot, batch, started)
                try:
                    if self.pass_context:
                        result = run(mini_batch, MiniBatchContext(batch, partition, self.dataset))
                    else:
                        result = run(mini_batch)
                finally:
                    slots.clear(slot)
                succeeded = result_length(result)
                rows = serialize_rows(result) if append else b""
            except BaseException as exc:  # KeyboardInterrupt too: charged to this mini-batch, not a later one
                self.log_error(f"mini-batch {batch} attempt {attempt} failed")
                outcome, reason = ERROR, exception_reason(exc)
            else:
                self.buffer.append(rows)
                where = self.part_offset + self.buffered
                self.pending.append((batch, BatchRecord(
                    SUCCEEDED, attempt, items, succeeded, part, where, len(rows), rows.count(b"\n"))))
                self.buffered += len(rows)
                outcome, reason = (SUCCESS if succeeded >= items else PARTIAL), ""
            now = time.monotonic()
            self.report_count += 1
            if outcome != SUCCESS:
                self.reports.append(Shortfall(batch, outcome, items, succeeded, reason))
            self.csv_rows.append(
                attempt_line(batch, attempt, items, succeeded, outcome, node, agent, now - started, reason))
            if now > flush_at:
                self.flush()
                flush_at = now + FLUSH_SECONDS
        self.flush()

    def flush(self) -> None:
        """Rows first, then their records, then the report: a crash in between only loses a report."""
        data = b"".join(self.buffer)
        view = memoryview(data)
        while view:
            view = view[os.write(self.part_fd, view):]
        self.part_offset += len(data)
        write_records(self.records_fd, self.pending)
        self.attempts_log.write("".join(self.csv_rows))
        self.attempts_log.flush()
        if self.report_count:
            self.conn.send((DONE, self.report_first, self.report_count, self.reports))
        self.report_first += self.report_count
        self.report_count = 0
        self.buffer, self.pending, self.reports, self.csv_rows = [], [], [], []
        self.buffered = 0


def prepare_process(spec: WorkerSpec) -> None:
    """Makes this process look like a ParallelRunStep worker: cwd, argv, env, stdout/stderr, logging."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops the workers
    try:  # die with the parent, so that no worker is ever orphaned
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    config = spec.config
    os.environ.update(config.environment_variables)
    os.environ["AZUREML_BI_OUTPUT_PATH"] = str(config.output)
    # MLflow logs to the run's one store (a job's is set by the job runner), not ./mlruns in the worker's
    # folder; a tracking URI the user set is kept.
    os.environ.setdefault("MLFLOW_TRACKING_URI", (spec.logs / MLFLOW_STORE).as_uri())
    work_dir = spec.state.work / str(spec.node) / spec.agent_name
    work_dir.mkdir(parents=True, exist_ok=True)
    os.chdir(work_dir)
    sys.argv = config.driver_argv()
    sys.path.insert(0, str(SHIM_DIR))
    for stream, folder in ((sys.stdout, "stdout"), (sys.stderr, "stderr")):
        stream.flush()
        target = spec.log_file("user", folder, suffix=f".{folder}.txt")
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, stream.fileno())
        os.close(fd)
        stream.reconfigure(errors="backslashreplace")  # a name that is no UTF-8 must not fail a print
    # The entry script's own logging goes to its process's stdout log, as on a node (any set-up it
    # made in an earlier worker is gone: a fresh process)
    logging.basicConfig(level=config.logging_level, format=LOG_FORMAT, stream=sys.stdout, force=True)


def main(fd: int) -> None:
    """A worker process's life, on the connection inherited as `fd`: receives its WorkerSpec, runs
    init(), then leases until told to stop or the parent goes away."""
    conn = Connection(fd)
    try:
        spec: WorkerSpec = conn.recv()
    except EOFError:  # started ahead (prs.warm) and not needed, or the parent is gone
        return
    prepare_process(spec)
    node_log = spec.log_file("sys", "node", suffix=".txt")
    with node_log.open("a", encoding="utf-8", errors="backslashreplace") as sys_log:
        sys_log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {spec.agent_name} pid {os.getpid()} started\n")
    worker = Worker(spec, conn, SlotTable(spec.state.slots, spec.config.worker_count))
    try:
        worker.load_entry_script()
    except BaseException as exc:  # any init failure replaces the worker
        worker.log_error("init() failed")
        conn.send((INIT_FAILED, exception_reason(exc), traceback.format_exc()))
        sys.exit(1)
    conn.send((READY,))
    try:
        while True:
            message = conn.recv()
            if message[0] != LEASE:
                break
            worker.process_lease(*message[1:])
    except (EOFError, BrokenPipeError):
        return  # the parent is gone
    except OSError as exc:  # rows or records cannot be written: the parent charges the attempt
        conn.send((BROKEN, f"cannot write its rows or records: {exception_reason(exc)}"))
        os._exit(1)
    worker.shutdown()
