"""What one local ParallelRunStep run is asked to do: the ParallelRunConfig values plus local ones."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestration.parallel_fields import FIELDS, local_values, reserved_arguments

# Every worker imports this module at its start, so what only the parent uses (ast, hashlib, the secrets'
# masking: 14 ms of a worker's 70) is imported where it is used.
if TYPE_CHECKING:  # nor pydantic
    from orchestration.run_settings import RunSettings
    from orchestration.settings import Settings

TABULAR_SUFFIXES = (".csv", ".parquet", ".jsonl")


def entry_script_problems(path: Path) -> list[str]:
    """What keeps an entry script from ever starting, found without running it: a syntax error, or no
    top-level `run` (a function, or any other binding of that name). Each worker would otherwise fail
    init() in turn, 3 x PROCESS_COUNT_PER_NODE times per node, before the run gives up."""
    import ast

    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except SyntaxError as exc:
        return [f"entry script {path}, line {exc.lineno}: {type(exc).__name__}: {exc.msg}"]
    except (OSError, ValueError) as exc:
        return [f"entry script {path} cannot be read: {exc}"]
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    if "run" not in names:
        return [f"entry script {path} has no run() function: ParallelRunStep calls run(mini_batch)"]
    return []


@dataclass(frozen=True)
class RunConfig:
    """One run's parameters, named after ParallelRunConfig where they have a counterpart."""

    entry_script: Path
    inputs: tuple[Path, ...]
    output: Path
    mini_batch_size: int
    input_type: str = "file"  # "file" (lists of paths) or "tabular" (pandas DataFrames)
    table: dict[str, Any] | None = None  # an MLTable input's files and reading (prs.mltable), JSON-ready
    partition_keys: tuple[str, ...] = ()  # one mini-batch per combination of these MLTable columns
    partition_format: str = ""  # a folder input's partition format (SDK v1), for partition_keys
    error_threshold: int = 10
    allowed_failed_count: int = -1
    allowed_failed_percent: float = 100.0
    node_count: int = 1
    process_count_per_node: int = 1
    run_invocation_timeout: int = 60
    run_max_try: int = 3
    output_action: str = "append_row"
    append_row_file_name: str = "parallel_run_step.txt"
    append_row_to: Path | None = None  # v2's append_row_to: the merged file's own path, anywhere
    logging_level: str = "INFO"
    arguments: tuple[str, ...] = ()
    environment_variables: dict[str, str] = field(default_factory=dict)
    # A run() that returns fewer results than items fails its mini-batch (counted by ALLOWED_FAILED_COUNT
    # and _PERCENT). v2 jobs with error_threshold -1 ("ignore failed items") do not: see docs/runner.md.
    short_return_fails_mini_batch: bool = True
    max_workers: int = 1  # local cap on worker processes
    python: Path | None = None  # the workers' interpreter (LOCAL_PYTHON, --python); None: this one
    container: str | None = None  # a Docker image the workers run in (--container); None: this machine
    read_paths: tuple[Path, ...] = ()  # what the workers read besides inputs (a deployment's model)
    # (link, target) pairs the run makes in its output once it holds it (a deployment's AZUREML_MODEL_DIR)
    links: tuple[tuple[Path, Path], ...] = ()
    resume: bool = False
    # The output file may be replaced though no run in this output folder wrote it: the job runner's
    # record says its previous run did (a path the job's YAML names, outside the node's folder).
    output_file_rewritable: bool = False
    progress_interval: float = 5.0  # seconds between plain progress lines when not on a terminal

    @classmethod
    def from_settings(cls, settings: "Settings | RunSettings", **local: object) -> "RunConfig":
        """The settings' ParallelRunConfig values; `local` gives entry_script, inputs, output and extras."""
        return cls(**local_values(settings), max_workers=settings.local_worker_cap,
                   partition_format=settings.partition_format, **local)  # type: ignore[arg-type]

    @property
    def emulated_processes(self) -> int:
        return self.node_count * self.process_count_per_node

    @property
    def worker_count(self) -> int:
        """Worker processes started at once: nodes × processes, capped by the local maximum."""
        return max(1, min(self.emulated_processes, self.max_workers))

    @property
    def output_file(self) -> Path:
        return self.append_row_to or self.output / self.append_row_file_name

    def validate(self) -> list[str]:
        """Problems ParallelRunConfig/ParallelRunStep or the local run would reject; empty when fine."""
        problems = []
        if not self.entry_script.is_file():
            problems.append(f"entry script {self.entry_script} does not exist")
        else:
            problems += entry_script_problems(self.entry_script)
        for path in self.inputs:
            if not path.exists():
                problems.append(f"input {path} does not exist")
        if not self.inputs:
            problems.append("at least one input is required")
        if self.input_type not in ("file", "tabular"):
            problems.append(f"input type {self.input_type!r}: expected file or tabular")
        if self.arguments and not self.arguments[0].startswith("-"):
            problems.append(f"arguments: the first must start with '-' (got {self.arguments[0]!r})")
        for arg in reserved_arguments(self.arguments):
            problems.append(f"arguments: --{arg[2:].split('=', 1)[0]} is reserved by ParallelRunStep")
        if self.python and self.container:
            problems.append(f"--python {self.python} and --container {self.container}: give one; the "
                            "container runs its own python")
        elif self.python and not problems:
            from orchestration.prs.interpreter import interpreter_problem

            problems += filter(None, [interpreter_problem(self.python, self.input_type == "tabular")])
        elif self.container and not problems:
            from orchestration.prs.container import container_problem

            problems += filter(None, [container_problem(self.container, self.input_type == "tabular")])
        return problems

    def driver_argv(self) -> list[str]:
        """sys.argv of a worker: the ParallelRunStep driver's flags, the user's arguments, the inputs."""
        argv = [str(self.entry_script), "--client_sdk_version", "local",
                "--scoring_module_name", self.entry_script.name]
        for f in FIELDS:
            if f.name == "allowed_failed_count":  # the driver's exact order (spec §1, [STEP])
                argv += ["--create_snapshot_at_runtime", "True"]
            if f.driver is not None:
                argv += [f"--{f.name}", f.driver.format(getattr(self, f.name))]
        if self.output_action == "append_row":
            argv += ["--append_row_file_name", self.append_row_file_name]
        argv += ["--output", str(self.output), "--process_count_per_node", str(self.process_count_per_node)]
        if self.partition_keys:
            argv += ["--partition_keys", json.dumps(list(self.partition_keys))]
        argv += list(self.arguments)
        flag = "--input_fds_" if self.input_type == "file" else "--input_ds_"
        for index in range(len(self.inputs)):
            argv += [f"{flag}{index}", f"input_{index}"]
        return argv

    def result_fingerprint(self) -> str:
        """Hash of everything that shapes the mini-batches and what they produce (result_shaping)."""
        return digest(self.result_shaping())

    def result_shaping(self) -> dict[str, object]:
        """Everything that shapes the mini-batches and what they produce, by name.

        Thresholds, retries, timeouts and parallelism are left out: changing them between a run and its
        resume cannot change what an already succeeded mini-batch produced.
        """
        shaping: dict[str, object] = {f.name: getattr(self, f.name) for f in FIELDS if f.shapes_output}
        shaping.update({
            "entry_script": str(self.entry_script.resolve()),
            "entry_script_sha256": sha256(self.entry_script.read_bytes()),
            "inputs": [str(p.resolve()) for p in self.inputs],
            "input_type": self.input_type,
            "table": self.table,
            "partition_keys": list(self.partition_keys),
            "partition_format": self.partition_format,
            "append_row_to": str(self.append_row_to) if self.append_row_to else None,
            "arguments": digest(list(self.arguments)),  # plan.json is written down: no credential in it
            "environment_variables": digest(self.environment_variables),
            "python": str(self.python) if self.python else None,
            "container": self.container,
            "read_paths": [str(p) for p in self.read_paths],  # a deployment's model
            "links": [[str(link), str(target)] for link, target in self.links],
        })
        return shaping

    def describe(self) -> dict[str, object]:
        """The configuration as JSON-ready values, for the summary."""
        from orchestration.secrets import masked_arguments, masked_environment

        values = asdict(self)
        values.update(
            entry_script=str(self.entry_script), inputs=[str(p) for p in self.inputs],
            output=str(self.output), python=str(self.python) if self.python else None,
            append_row_to=str(self.append_row_to) if self.append_row_to else None,
            read_paths=[str(p) for p in self.read_paths],
            links=[[str(link), str(target)] for link, target in self.links],
            environment_variables=masked_environment(self.environment_variables),
            arguments=masked_arguments(self.arguments),
        )
        return values


def digest(value: object) -> str:
    """A value's SHA-256, enough to tell that it changed without writing it down."""
    return sha256(json.dumps(value, sort_keys=True).encode("utf-8", "surrogateescape"))


def sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()
