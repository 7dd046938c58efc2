"""A v2 parallel node as a run of the local runner: its settings in ParallelRunConfig's terms.

v2's names map to the runner's (Learn, "Upgrade parallel run step to SDK v2"): `resources.instance_count` is
NODE_COUNT, `max_concurrency_per_instance` PROCESS_COUNT_PER_NODE, `mini_batch_error_threshold`
ALLOWED_FAILED_COUNT, `retry_settings.max_retries` retries (RUN_MAX_TRY = retries + 1),
`retry_settings.timeout` RUN_INVOCATION_TIMEOUT. Where a key is absent, v2's default applies.
"""
from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestration.errors import UsageError
from orchestration.jobs.expressions import whole_reference
from orchestration.jobs.locations import Datastores, local_path
from orchestration.jobs.nodes import BoundNode
from orchestration.parallel_fields import parse_mini_batch_size
from orchestration.prs.config import RunConfig
from orchestration.prs.mltable import load_mltable

# v2's defaults where a parallel node leaves a key out ([V2YAML], the azure-ai-ml docstrings).
DEFAULT_FILES_PER_BATCH, DEFAULT_BYTES_PER_BATCH = "10", "1MB"
DEFAULT_APPEND_ROW_FILE = "parallel_run_step.txt"  # when append_row_to names a folder output (UNCONFIRMED)

# The ParallelRunStep arguments v2 documents in task.program_arguments ([V2YAML]): the RunConfig field
# each sets, with its type; None: the cloud service's own monitoring, with no local meaning.
PRS_ARGUMENTS: dict[str, tuple[str, Callable[[str], Any]] | None] = {
    "error_threshold": ("error_threshold", int),
    "allowed_failed_count": ("allowed_failed_count", int),
    "allowed_failed_percent": ("allowed_failed_percent", float),
    "run_invocation_timeout": ("run_invocation_timeout", int),
    "run_max_try": ("run_max_try", int),
    "logging_level": ("logging_level", str),
    "task_overhead_timeout": None,
    "progress_update_timeout": None,
    "first_task_creation_timeout": None,
    "resource_monitor_interval": None,
    "copy_logs_to_parent": None,
    "metrics_name_prefix": None,
    "push_metrics_to_parent": None,
}

# (RunConfig field, the YAML key that sets it, its least valid value), as ParallelRunConfig checks them.
LEAST_VALUES = (("node_count", "resources.instance_count", 1),
                ("process_count_per_node", "max_concurrency_per_instance", 1),
                ("error_threshold", "error_threshold", -1),
                ("allowed_failed_count", "mini_batch_error_threshold", -1),
                ("run_invocation_timeout", "retry_settings.timeout", 1))

# Keys of a node that only mean something in Azure, with the reason they are ignored here.
IGNORED = {
    "compute": "it runs on this machine",
    "environment": "it runs in the local interpreter (--python) or --container's image",
    "identity": "no Azure resource is reached",
    "is_deterministic": "nothing is reused between local runs",
    "instance_type": "it runs on this machine",
    "docker_args": "Azure's container options are not applied locally",
    "shm_size": "Azure's container options are not applied locally",
    "properties": "no run history",
    "tags": "no run history",
    "display_name": "no run history",
    "description": "no run history",
    "experiment_name": "no run history",
}


@dataclass(frozen=True)
class ParallelPlan:
    config: RunConfig
    notes: list[str]  # what was ignored or does not apply locally, for the log
    warnings: list[str] = field(default_factory=list)  # what looks like a mistake


def split_program_arguments(tokens: list[str]) -> tuple[list[str], dict[str, str], list[str]]:
    """(the script's own arguments, the PRS arguments that apply locally, those that do not)."""
    own: list[str] = []
    applied: dict[str, str] = {}
    not_applicable: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        name, equals, value = token[2:].partition("=") if token.startswith("--") else ("", "", "")
        if name in PRS_ARGUMENTS:
            if not equals:
                index += 1
                if index >= len(tokens):
                    raise UsageError(f"task.program_arguments: --{name} needs a value")
                value = tokens[index]
            if PRS_ARGUMENTS[name] is None:
                not_applicable.append(f"--{name}")
            else:
                applied[name] = value
        else:
            own.append(token)
        index += 1
    return own, applied, not_applicable


def near_prs_arguments(arguments: list[str]) -> list[str]:
    """A line for each of the script's own `--flags` that is one slip away from a ParallelRunStep
    argument (`--resource_monitor_interva`): it reaches the entry script, not the runner."""
    found = []
    for token in arguments:
        name = token[2:].partition("=")[0] if token.startswith("--") else ""
        near = difflib.get_close_matches(name, list(PRS_ARGUMENTS), n=1, cutoff=0.85) if name else []
        if near:
            found.append(f"task.program_arguments --{name}: not a ParallelRunStep argument, so it is passed "
                         f"to the entry script (did you mean --{near[0]}?)")
    return found


def run_values(node: BoundNode) -> tuple[dict[str, Any], list[str], list[str]]:
    """The ParallelRunConfig values a bound parallel node's YAML and program arguments set, checked as
    Azure checks them, with no file read: the runner checks them before any node runs. Returns the
    values, the entry script's own arguments, and the PRS arguments with no local meaning.

    Raises:
        UsageError: naming the key and what it expects.
    """
    settings, where = node.settings, f"jobs.{node.name}"
    task = settings.get("task") or {}
    own, applied, not_applicable = split_program_arguments(
        node.arguments(str(task.get("program_arguments") or ""), "task.program_arguments"))
    retry = settings.get("retry_settings") or {}
    values: dict[str, Any] = {
        "error_threshold": settings.get("error_threshold", -1),
        "allowed_failed_count": settings.get("mini_batch_error_threshold", -1),
        "run_max_try": _whole(retry.get("max_retries", 2), f"{where}.retry_settings.max_retries") + 1,
        "run_invocation_timeout": retry.get("timeout", 60),
        "logging_level": settings.get("logging_level", "INFO"),
        "node_count": (settings.get("resources") or {}).get("instance_count", 1),
        "process_count_per_node": settings.get("max_concurrency_per_instance", 1),
    }
    for name, text in applied.items():
        target, convert = PRS_ARGUMENTS[name]  # type: ignore[misc]
        try:
            values[target] = convert(text)
        except ValueError:
            raise UsageError(f"{where}.task.program_arguments: --{name} {text!r} is not a "
                             f"{convert.__name__}") from None
    for target in ("error_threshold", "allowed_failed_count", "run_invocation_timeout", "node_count",
                   "process_count_per_node"):
        values[target] = _whole(values[target], f"{where}: {target}")
    for target, key, least in LEAST_VALUES:
        if values[target] < least:
            raise UsageError(f"{where}.{key}: expected at least {least} (got {values[target]})")
    if values["run_max_try"] < 1:
        raise UsageError(f"{where}.retry_settings.max_retries: expected at least 0 "
                         f"(got {values['run_max_try'] - 1})")
    return values, own, not_applicable


def parallel_plan(node: BoundNode, datastores: Datastores, max_workers: int,
                  python: Path | None = None, container: str | None = None) -> ParallelPlan:
    """The RunConfig of a bound parallel node.

    Raises:
        UsageError: naming the key and what it expects.
    """
    settings, where = node.settings, f"jobs.{node.name}"
    task = settings.get("task") or {}
    if task.get("type", "run_function") != "run_function":
        raise UsageError(f"{where}.task.type: {task.get('type')!r} cannot run locally; run_function can")
    code = local_path(str(task.get("code", ".")), node.base, datastores, f"{where}.task.code")
    code = code.parent if code.is_file() else code  # a one-file snapshot: the folder holding it
    if not task.get("entry_script"):
        raise UsageError(f"{where}.task.entry_script: required")
    input_data = whole_reference(settings.get("input_data"))
    group, _, key = (input_data or "").partition(".")
    if group != "inputs" or key not in node.inputs or node.inputs[key].text is None:
        raise UsageError(f"{where}.input_data: expected ${{{{inputs.<name>}}}} naming a bound input "
                         f"(got {settings.get('input_data')!r})")
    data = node.inputs[key]
    tabular = data.type == "mltable" and data.mode == "direct"  # DataFrames; other modes: file lists
    table = load_mltable(Path(data.text)) if data.type == "mltable" else None
    partition_keys = tuple(str(k) for k in settings.get("partition_keys") or ())
    if partition_keys:
        extracted = (table or {}).get("partition_columns") or []
        missing = [k for k in partition_keys if k not in extracted]
        if missing:
            raise UsageError(f"{where}.partition_keys: {missing[0]!r} is not a column that the input's "
                             f"MLTable extracts with extract_columns_from_partition_format (it extracts: "
                             f"{', '.join(extracted) or 'none'})")
    size_text = str(settings.get("mini_batch_size") or "0")
    if size_text == "0":  # what the SDK writes when the size was left out
        size_text = DEFAULT_BYTES_PER_BATCH if tabular else DEFAULT_FILES_PER_BATCH
    try:
        mini_batch_size = parse_mini_batch_size(size_text)
    except ValueError as exc:
        raise UsageError(f"{where}.mini_batch_size: {exc} (got {size_text!r})") from None

    values, own, not_applicable = run_values(node)

    append_to = whole_reference(task.get("append_row_to"))
    append_row_to = None
    if append_to is not None:
        group, _, key = append_to.partition(".")
        if group != "outputs" or key not in node.outputs:
            raise UsageError(f"{where}.task.append_row_to: expected ${{{{outputs.<name>}}}} naming an output "
                             f"(got {task.get('append_row_to')!r})")
        output = node.outputs[key]
        append_row_to = output.path if output.type == "uri_file" else output.path / DEFAULT_APPEND_ROW_FILE

    notes = [f"task.program_arguments {arg}: the cloud service's own monitoring; not applicable locally"
             for arg in not_applicable]
    warnings = [f"{where}.{line}" for line in near_prs_arguments(own)]
    notes += [f"{key}: ignored locally, {reason}" for key, reason in IGNORED.items() if key in settings]
    if "environment" in task:
        notes.append(f"task.environment: ignored locally, {IGNORED['environment']}")
    resources = sorted(set(settings.get("resources") or {}) - {"instance_count"})
    if resources:
        notes.append(f"resources.{', resources.'.join(resources)}: ignored locally, it runs on this machine")
    variables = settings.get("environment_variables") or {}
    config = RunConfig(
        entry_script=code / str(task["entry_script"]), inputs=(Path(data.text),), output=node.folder,
        mini_batch_size=mini_batch_size, input_type="tabular" if tabular else "file", table=table,
        partition_keys=partition_keys,
        output_action="append_row" if append_row_to else "summary_only", append_row_to=append_row_to,
        allowed_failed_percent=values.pop("allowed_failed_percent", 100.0), arguments=tuple(own),
        environment_variables={str(k): str(v) for k, v in variables.items()},
        short_return_fails_mini_batch=values["error_threshold"] != -1, max_workers=max_workers, python=python,
        container=container, **values,
    )
    return ParallelPlan(config, notes, warnings)


def _whole(value: Any, what: str) -> int:
    try:
        return int(str(value))
    except ValueError:
        raise UsageError(f"{what}: expected a whole number (got {value!r})") from None
