"""A job YAML read as Azure reads it: validated by azure-ai-ml's own loaders, so that a schema error reads
as Azure's would, then kept as plain YAML, with each node's component file loaded beside it."""
from __future__ import annotations

import difflib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from orchestration.errors import UsageError

RUNNABLE_NODES = ("command", "parallel")
# Nodes a YAML file may hold once its aliases are expanded: a job is a few hundred; ten nested aliases
# (a "billion laughs") are 10^10, which azure-ai-ml's loader expands until memory runs out.
MAX_EXPANDED_NODES = 100_000


@dataclass(frozen=True)
class Component:
    spec: dict[str, Any]  # the component's YAML: inline in the node, or the file the node names
    base: Path  # the folder its relative paths are relative to


@dataclass(frozen=True)
class NodeSpec:
    name: str
    node: dict[str, Any]  # the node's own keys: bindings and overrides
    component: Component


@dataclass(frozen=True)
class JobFile:
    path: Path
    spec: dict[str, Any]  # the pipeline's own keys (inputs, outputs, name, settings, ...)
    nodes: dict[str, NodeSpec]  # in the YAML's order
    standalone: bool = False  # a parallel component run as a one-node pipeline: its inputs are the job's
    unknown_keys: tuple[str, ...] = ()  # keys azure-ai-ml drops without a word, each with a near name

    @property
    def base(self) -> Path:
        return self.path.parent


def read_yaml(path: Path, what: str = "job file",
              expected: str = "a `type:` (pipeline or parallel)") -> dict[str, Any]:
    """A YAML file's mapping, refused (UsageError) when unreadable, invalid or an alias bomb."""
    try:
        text = path.read_text(encoding="utf-8")
        if expanded_nodes(yaml.compose(text, Loader=yaml.SafeLoader)) > MAX_EXPANDED_NODES:
            raise UsageError(f"{what} {path}: its aliases (*name) expand to more than "
                             f"{MAX_EXPANDED_NODES:,} values; write the repeated parts out")
        document = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{what} {path}: {getattr(exc, 'strerror', None) or exc}") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"{what} {path} is not valid YAML: {exc}".replace("\n", " ")) from None
    except RecursionError:
        raise UsageError(f"{what} {path}: nested too deeply to read") from None
    if not isinstance(document, dict):
        raise UsageError(f"{what} {path}: expected a YAML mapping with {expected}")
    return document


def expanded_nodes(root: yaml.Node | None) -> int:
    """How many nodes the document holds with every alias expanded, counted without expanding them."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        if id(node) not in sizes:
            sizes[id(node)] = 1  # a node that contains itself counts once, not for ever
            if isinstance(node, yaml.SequenceNode):
                sizes[id(node)] += sum(size(child) for child in node.value)
            elif isinstance(node, yaml.MappingNode):
                sizes[id(node)] += sum(size(key) + size(value) for key, value in node.value)
        return sizes[id(node)]

    return size(root) if root is not None else 0


def validate(path: Path, kind: str, unknown: Sequence[str] = ()) -> None:
    """azure-ai-ml's own schema check of a pipeline job or a component; its errors, one per line.

    Raises:
        UsageError: listing each error with its YAML path and line, as `az ml job create` would, then the
            `unknown` keys: its message for a misspelt key can name another field.
    """
    logging.getLogger("azure.ai.ml._utils._experimental").setLevel(logging.ERROR)  # "experimental" notices
    from azure.ai.ml import load_component, load_job

    try:
        (load_job if kind == "pipeline" else load_component)(source=path)
    except Exception as exc:  # marshmallow's and azure-ai-ml's validation errors share no base class
        raise UsageError(f"{path} is refused by azure-ai-ml's loader, as `az ml job create` would "
                         "refuse it (errors above)",
                         schema_errors(str(exc)) + [f"  perhaps: {line}" for line in unknown]) from None


def schema_errors(text: str) -> list[str]:
    """The errors of azure-ai-ml's validation report, one line each: its `errors` list (jobs and
    components), or marshmallow's {field: [messages]} (deployments); the text's first line when it has
    neither."""
    start, end = text.find("{"), text.rfind("}")
    try:
        report = json.loads(text[start:end + 1]) if start != -1 else {}
    except ValueError:
        report = {}
    lines = []
    if isinstance(report, dict) and "errors" in report:
        for error in report["errors"]:
            where = error.get("location", "").rpartition("#")[2]
            place = f" ({where})" if where else ""
            lines.append(f"  {error.get('path', '?')}{place}: {error.get('message', '')}")
    elif isinstance(report, dict):
        lines = [f"  {path}: {message}" for path, message in field_messages(report)]
    return lines or ["  " + (text.strip().splitlines() or ["(azure-ai-ml gave no message)"])[0]]


def field_messages(report: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """marshmallow's nested {field: [messages] or {field: ...}} as (dotted path, messages) pairs."""
    found = []
    for key, value in report.items():
        if isinstance(value, dict):
            found += field_messages(value, f"{prefix}{key}.")
        else:
            text = "; ".join(map(str, value)) if isinstance(value, list) else str(value)
            found.append((f"{prefix}{key}", text))
    return found


def load(path: Path) -> JobFile:
    """A pipeline job YAML, or a standalone parallel component YAML as a one-node pipeline.

    Raises:
        UsageError: the file is unreadable, fails Azure's schema, or uses what cannot run locally.
    """
    path = path.resolve()
    document = read_yaml(path)
    kind = document.get("type")
    if kind == "pipeline":
        jobs = document.get("jobs") or {}
        unknown = unknown_keys(document, "pipeline", "")
        for name, node in jobs.items():
            if not isinstance(node, dict):
                continue
            reference, component = node.get("component"), None
            if isinstance(reference, str) and not reference.startswith("azureml:"):
                # a component file azure-ai-ml's loader reads too: checked for an alias bomb first
                component = read_yaml((path.parent / reference.removeprefix("file:")).resolve())
            elif isinstance(reference, dict):
                component = reference
            node_kind = str(node.get("type") or (component or {}).get("type"))
            unknown += unknown_keys(node, node_kind, f"jobs.{name}.")
            if component is not None:
                unknown += unknown_keys(component, node_kind, f"jobs.{name}.component: ")
        validate(path, "pipeline", unknown)
        if not jobs:
            raise UsageError(f"job file {path}: jobs: a pipeline job needs at least one node")
        nodes = {name: node_spec(name, node, path.parent) for name, node in jobs.items()}
        return JobFile(path, document, nodes, unknown_keys=tuple(unknown))
    if kind == "parallel":
        unknown = unknown_keys(document, "parallel", "")
        validate(path, "component", unknown)
        name = str(document.get("name") or path.stem)
        node = {"inputs": {key: f"${{{{parent.inputs.{key}}}}}" for key in document.get("inputs") or {}}}
        pipeline = {key: document[key] for key in ("name",) if key in document}
        return JobFile(path, pipeline, {name: NodeSpec(name, node, Component(document, path.parent))},
                       standalone=True, unknown_keys=tuple(unknown))
    raise UsageError(f"job file {path}: type {kind!r} cannot run here; expected `type: pipeline` (a pipeline "
                     "job) or `type: parallel` (a parallel component)")


def known_keys(kind: str) -> dict[str, set[str]]:
    """The keys azure-ai-ml's schemas declare for a `kind` node (node and component schemas together) and
    for its nested mappings, by path ("" for the node itself); empty where the schemas cannot be read."""
    try:
        from azure.ai.ml._schema.component.command_component import CommandComponentSchema
        from azure.ai.ml._schema.component.parallel_component import ParallelComponentSchema
        from azure.ai.ml._schema.component.parallel_task import ComponentParallelTaskSchema
        from azure.ai.ml._schema.component.retry_settings import RetrySettingsSchema
        from azure.ai.ml._schema.job_resource_configuration import JobResourceConfigurationSchema
        from azure.ai.ml._schema.pipeline.component_job import CommandSchema, ParallelSchema
        from azure.ai.ml._schema.pipeline.pipeline_job import PipelineJobSchema
    except ImportError:  # another azure-ai-ml layout: no hints rather than wrong ones
        return {}

    def names(*schemas: Any) -> set[str]:
        return {field.data_key or name
                for schema in schemas for name, field in schema._declared_fields.items()}

    common = {"name", "display_name", "description", "tags", "experiment_name", "environment"}
    if kind == "pipeline":
        return {"": names(PipelineJobSchema)}
    if kind == "parallel":
        return {"": names(ParallelSchema, ParallelComponentSchema) | common,
                "task.": names(ComponentParallelTaskSchema), "retry_settings.": names(RetrySettingsSchema),
                "resources.": names(JobResourceConfigurationSchema)}
    if kind == "command":
        return {"": names(CommandSchema, CommandComponentSchema) | common,
                "resources.": names(JobResourceConfigurationSchema)}
    return {}


def unknown_keys(spec: dict[str, Any], kind: str, where: str) -> list[str]:
    """A line for each key of `spec` (and of its nested task, retry_settings, resources) that the schema
    of a `kind` node does not declare: azure-ai-ml drops such a key without a word, a typo included."""
    found = []
    for prefix, known in known_keys(kind).items():
        mapping = spec.get(prefix.rstrip(".")) if prefix else spec
        for key in (mapping or {}) if isinstance(mapping, dict) else ():
            if key not in known:
                near = difflib.get_close_matches(str(key), sorted(known), n=1)
                hint = f" (did you mean {near[0]}?)" if near else ""
                what = "pipeline job" if kind == "pipeline" else f"{kind} node"
                found.append(f"{where}{prefix}{key}: not a key of a {what}{hint}")
    return found


def node_spec(name: str, node: Any, base: Path) -> NodeSpec:
    if not isinstance(node, dict):
        raise UsageError(f"jobs.{name}: expected a mapping")
    reference = node.get("component")
    if reference is None:  # an inline job: the node is its own component
        component = Component(node, base)
    elif isinstance(reference, dict):
        component = Component(reference, base)
    elif isinstance(reference, str) and not reference.startswith("azureml:"):
        file = (base / reference.removeprefix("file:")).resolve()
        component = Component(read_yaml(file), file.parent)
    else:
        raise UsageError(f"jobs.{name}.component: {reference} is a registered component, which only Azure "
                         "can resolve; refer to its YAML file (component: ./path/to/component.yml)")
    kind = node.get("type") or component.spec.get("type")
    if kind not in RUNNABLE_NODES:
        raise UsageError(f"jobs.{name}: a {kind!r} node cannot run locally; command and parallel nodes can")
    return NodeSpec(name, node, component)
