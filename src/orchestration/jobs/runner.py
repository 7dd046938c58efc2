"""A v2 job run locally: every node in dependency order, command nodes as processes, parallel nodes
through the local ParallelRunStep runner. The first node that fails stops the job, as in Azure."""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import shlex
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from orchestration.errors import EXIT_RUN_FAILED, UsageError
from orchestration.jobs.loading import load
from orchestration.jobs.locations import (
    DATASTORES_FOLDER, MLFLOW_FOLDER, PYTHON_FOLDER, RESERVED_NAMES, WRITTEN_RECORD, Datastores, local_path,
)
from orchestration.jobs.nodes import PATH_TYPES, Binder, BoundNode, execution_order
from orchestration.jobs.parallel_node import IGNORED, parallel_plan, run_values
from orchestration.jobs.snapshot import snapshot
from orchestration.prs.container import docker_run, mounts_of, remove
from orchestration.prs.outputs import format_summary
from orchestration.prs.scheduler import run_parallel
from orchestration.stopping import run_stoppable
from orchestration.secrets import SECRET_VARIABLES

log = logging.getLogger(__name__)

COMMAND_IGNORED = {**IGNORED, "resources": "it runs on this machine",
                   "distribution": "it runs as one process (no MPI, PyTorch or TensorFlow distribution)",
                   "limits": "no job timeout is applied locally"}
PIPELINE_IGNORED = {**IGNORED, "settings": "default_compute: it runs on this machine; "
                    "continue_on_step_failure: the job stops at the first failure",
                    "$schema": "the schema is checked by azure-ai-ml's loader"}


@dataclass
class JobResult:
    name: str
    exit_code: int = 0
    ran: list[str] = field(default_factory=list)  # "<node> (<kind>, <seconds> s)"
    failed: str = ""  # what failed, in one line
    not_run: list[str] = field(default_factory=list)
    outputs: dict[str, Path] = field(default_factory=dict)  # the pipeline's outputs, where they were written


@dataclass(frozen=True)
class Interpreter:
    """The Python that runs the job's code: `python` on the command nodes' PATH, the workers' executable."""
    executable: Path
    foreign: bool = False  # another than the toolkit's own (--python, LOCAL_PYTHON)
    container: str | None = None  # a Docker image the nodes run in instead (--container)

    def path_folder(self, out: Path) -> Path:
        """A folder whose `python` and `python3` run this interpreter, for the front of PATH. They are
        scripts, not links: a virtual environment is only recognised from its own bin/ folder."""
        folder = out / PYTHON_FOLDER
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            raise UsageError(f"--output {out}: {PYTHON_FOLDER} is a link or a file; it is the runner's own "
                             "folder (its python for the command nodes): remove it")
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("python", "python3"):
            script = folder / name
            script.write_text(f'#!/bin/sh\nexec {shlex.quote(str(self.executable))} "$@"\n')
            script.chmod(0o755)
        return folder


def run_job(path: Path, out: Path, datastores: Datastores, overrides: dict[str, str], max_workers: int,
            interpreter: Interpreter) -> JobResult:
    """Runs the pipeline job (or parallel component) at `path`, writing under `out`.

    Raises:
        UsageError: the YAML cannot run locally. Whatever the YAML alone decides (schema, bindings,
            assets, inputs) is checked before any node runs; what needs an earlier node's output (an
            MLTable it writes, the entry script's inputs) when the node starts.
    """
    job = load(path)
    for line in job.unknown_keys:
        log.warning("%s: ignored, as azure-ai-ml ignores it", line)
    order = execution_order(job)
    binder = Binder(job, out, datastores, overrides)  # checks --set before anything is removed
    rewritable = replace_previous_run(out)
    result = JobResult(binder.name)
    for key in sorted(set(job.spec) & set(PIPELINE_IGNORED)):
        log.info("%s: ignored locally, %s", key, PIPELINE_IGNORED[key])
    log.info("job %s: %s", binder.name, " -> ".join(spec.name for spec in order))
    nodes = [binder.bind(spec) for spec in order]  # every binding, before the first node runs
    check_distinct_outputs(nodes)
    for node in nodes:  # what each node's YAML alone decides, before the first node runs
        if node.kind == "command" and node.settings.get("command"):
            node.substitute(str(node.settings["command"]), "command")
        elif node.kind == "parallel":
            run_values(node)
    # Recorded before any node runs. Created: only what binding made in OUTPUT (the next run removes it);
    # a path the YAML names is written, never removed, and may be rewritten by the next run only if it
    # did not exist before a local job run bound it.
    written = [o.path for node in nodes for o in node.outputs.values()
               if o.bound and (o.created or o.path in rewritable)]
    record_written(out, [path for node in nodes for path in node.created] + [out / MLFLOW_FOLDER], written)
    for index, node in enumerate(nodes):
        started = time.monotonic()
        if node.kind == "command":
            code = run_command_node(node, datastores, interpreter, out)
            detail = f"exit code {code} (its output is above)" if code else ""
        else:
            foreign = interpreter.executable if interpreter.foreign else None
            plan = parallel_plan(node, datastores, max_workers, foreign, interpreter.container)
            plan = dataclasses.replace(plan, config=dataclasses.replace(plan.config, environment_variables={
                **tracking_variables(out), **plan.config.environment_variables}))
            target = plan.config.append_row_to
            if target and any(p == target or p in target.parents for p in rewritable):  # ours wrote it
                plan = dataclasses.replace(plan, config=dataclasses.replace(
                    plan.config, output_file_rewritable=True))
            for note in plan.notes:
                log.info("jobs.%s.%s", node.name, note)
            for warning in plan.warnings:
                log.warning("%s", warning)
            problems = plan.config.validate()
            if problems:
                raise UsageError.listing([f"jobs.{node.name}: {problem}" for problem in problems])
            summary = run_parallel(plan.config)
            print(f"--- {node.name}\n{format_summary(summary, with_last_line=False)}")
            code = summary.exit_code
            logs = plan.config.output / "logs"
            detail = f"{summary.status}: {summary.reason}; logs in {logs}" if code else ""
            if summary.status == "Interrupted":
                result.exit_code = code
        if code:
            # A command's own exit code is a failure, never a stop: a stop raises Stopped in this process
            result.exit_code = result.exit_code or EXIT_RUN_FAILED
            result.failed = f"{node.name} ({node.kind}) {detail}"
            result.not_run = [n.name for n in nodes[index + 1:]]
            return result
        result.ran.append(f"{node.name} ({node.kind}, {time.monotonic() - started:.1f} s)")
    result.outputs = binder.pipeline_outputs()
    for name, path in result.outputs.items():
        print(f"pipeline output {name}: {path}")
    return result


def replace_previous_run(out: Path) -> frozenset[Path]:
    """Removes what the previous local job run created in `out` (its record lists it), and nothing else;
    returns the paths outside its folders that it wrote first, which this run may rewrite.

    Raises:
        UsageError: `out` holds files that no local job run wrote (the datastores' folders aside).
    """
    record = out / WRITTEN_RECORD
    if not record.exists():
        foreign = [p.name for p in out.iterdir() if p.name not in (DATASTORES_FOLDER, PYTHON_FOLDER)] \
            if out.is_dir() else []
        if foreign:
            raise UsageError(f"--output {out} holds {', '.join(sorted(foreign)[:3])}, which no local job run "
                             "wrote; choose an empty or new folder")
        return frozenset()
    previous = json.loads(record.read_text(encoding="utf-8"))
    if isinstance(previous, list):  # the record before bound paths were kept apart: absolute paths
        previous = {"created": previous, "written": []}
    for entry in previous.get("created", []):
        target = inside(out, entry)
        if target is not None and target.relative_to(out.resolve()).parts[0] in RESERVED_NAMES:
            target = None  # the datastores' folders (the user's data) are never a run's to remove
        if target is None:
            log.warning("%s lists %s, which no run creates inside %s: left alone", record, entry, out)
        elif target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
    record.unlink()
    return frozenset(Path(p) for p in previous.get("written", []))


def inside(out: Path, entry: str) -> Path | None:
    """`out / entry` when it is inside `out`, with no link on the way out of it; else None."""
    root = out.resolve()
    path = Path(entry)
    if path.is_absolute():
        if not path.is_relative_to(root):
            return None
        path = path.relative_to(root)
    if not path.parts or ".." in path.parts:
        return None
    target = root / path
    return target if target.parent.resolve().is_relative_to(root) else None


def record_written(out: Path, created: list[Path], written: list[Path]) -> None:
    root = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    record = {"created": [str(p.relative_to(root)) for p in created if p.is_relative_to(root)],
              "written": [str(p) for p in written]}
    (out / WRITTEN_RECORD).write_text(json.dumps(record, indent=1), encoding="utf-8")


def check_distinct_outputs(nodes: list[BoundNode]) -> None:
    """Refuses two outputs bound to one path (one node would overwrite or refuse the other's)."""
    seen: dict[Path, str] = {}
    for node in nodes:
        for key, output in node.outputs.items():
            name = f"jobs.{node.name}.outputs.{key}"
            if output.path in seen:
                raise UsageError(f"{name} and {seen[output.path]} are bound to the same path, {output.path}; "
                                 "give each its own pipeline output or path")
            seen[output.path] = name


def run_command_node(node: BoundNode, datastores: Datastores, interpreter: Interpreter, out: Path) -> int:
    """The node's command, bindings substituted, in bash, from a snapshot of its code; its exit code."""
    settings = node.settings
    if not settings.get("command"):
        raise UsageError(f"jobs.{node.name}.command: required for a command node")
    command = node.substitute(str(settings["command"]), "command")
    code = settings.get("code")
    source = local_path(str(code), node.base, datastores, f"jobs.{node.name}.code") if code else None
    if source is not None and not source.exists():
        raise UsageError(f"jobs.{node.name}.code: {code} does not exist (looked for {source})")
    cwd = snapshot(source, node.folder, leave_out=out)
    for key in sorted(set(settings) & set(COMMAND_IGNORED)):
        log.info("jobs.%s.%s: ignored locally, %s", node.name, key, COMMAND_IGNORED[key])
    environment = {k: v for k, v in os.environ.items() if k not in SECRET_VARIABLES}
    variables = {**tracking_variables(out),
                 **{str(k): str(v) for k, v in (settings.get("environment_variables") or {}).items()}}
    log.info("jobs.%s: %s", node.name, command)
    if interpreter.container:
        name = f"toolkit-{uuid.uuid4().hex[:12]}"
        argv = docker_run(interpreter.container, name, name, node_mounts(node, out), cwd, list(variables),
                          ["bash", "-c", command])
        try:  # the variables' values reach the container through the client's environment, not its argv
            code, left = run_stoppable(argv, cwd, {**environment, **variables})
        finally:
            remove(name)  # still running if its client was killed
    else:
        environment.update(variables)
        environment["PATH"] = f"{interpreter.path_folder(out)}{os.pathsep}{environment.get('PATH', '')}"
        # bash by the path found here: the node's environment_variables may set a PATH without it
        bash = shutil.which("bash") or "/bin/bash"
        code, left = run_stoppable([bash, "-c", command], cwd, environment)
    if left:
        log.warning("jobs.%s: the command left %d process%s running (pid %s), stopped as the node ended: "
                    "wait for what a command starts in the background", node.name, len(left),
                    "es" * (len(left) > 1), ", ".join(map(str, sorted(left))))
    return code if code >= 0 else 128 - code


def tracking_variables(out: Path) -> dict[str, str]:
    """MLFLOW_TRACKING_URI for every node of the job: one store, OUTPUT/mlruns, as a workspace is one
    tracking store in Azure; nothing when the user set one (a node's environment_variables win, too)."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return {}
    return {"MLFLOW_TRACKING_URI": (out.resolve() / MLFLOW_FOLDER).as_uri()}


def node_mounts(node: BoundNode, out: Path) -> dict[Path, bool]:
    """What a command node reads and writes, for its container: the job's output folder (its code
    snapshot and default outputs), its path inputs read-only (and a string input naming an existing
    absolute path), the folders of the paths it writes."""
    read = [Path(value.text) for value in node.inputs.values() if value.text and (
        value.type in PATH_TYPES or (value.text.startswith("/") and len(Path(value.text).parts) > 2))]
    written = [out] + [o.path.parent if o.type == "uri_file" else o.path for o in node.outputs.values()]
    return mounts_of([p for p in read if p.exists()], [p for p in written if p.exists()])


def job_outcome(result: JobResult, out: Path) -> str:
    """What happened, for the command's last line."""
    if result.exit_code == 0:
        outputs = "".join(f"; {name} in {path}" for name, path in result.outputs.items()
                          if not path.is_relative_to(out))
        return f"job {result.name} ran: {', '.join(result.ran)}; node outputs in {out}{outputs}"
    not_run = f"; not run: {', '.join(result.not_run)}" if result.not_run else ""
    return f"job {result.name} failed at {result.failed}{not_run}"
