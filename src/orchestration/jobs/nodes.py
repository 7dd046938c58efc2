"""A node's inputs, outputs and settings, resolved as Azure resolves them before a node starts.

Inputs bind to literals, local paths, datastore URIs, `${{parent.inputs.*}}` or
`${{parent.jobs.<node>.outputs.*}}`; outputs default to `OUTPUT/<node>/<output>` (a folder, or a file for
`uri_file`) unless bound to a pipeline output with a path. Every path is absolute.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestration.errors import UsageError
from orchestration.jobs.expressions import BindingError, split_words, substitute, whole_reference
from orchestration.jobs.loading import JobFile, NodeSpec
from orchestration.jobs.locations import (
    DEFAULT_DATASTORE, MLFLOW_FOLDER, RESERVED_NAMES, Datastores, local_path,
)
from orchestration.prs.claim import RUNNER_ENTRIES

PATH_TYPES = ("uri_folder", "uri_file", "mltable", "custom_model", "mlflow_model", "triton_model")
MERGED_SETTINGS = ("task", "resources", "retry_settings", "environment_variables")


@dataclass(frozen=True)
class Value:
    """A bound input: an absolute path (for the path types) or literal text; None when unset."""
    text: str | None
    type: str = "string"
    mode: str | None = None


@dataclass(frozen=True)
class Output:
    path: Path
    type: str = "uri_folder"
    created: bool = False  # it did not exist before this run bound it
    bound: bool = False  # the YAML names its path (a path or a datastore URI): written, never deleted


@dataclass(frozen=True)
class BoundNode:
    name: str
    kind: str  # command or parallel
    settings: dict[str, Any]  # the component's keys, with the node's own on top
    inputs: dict[str, Value]
    outputs: dict[str, Output]
    base: Path  # the component's folder: `code` is relative to it
    folder: Path  # OUTPUT/<node>: logs and default outputs
    created: tuple[Path, ...] = ()  # what binding it created in OUTPUT: its folder, default outputs

    def lookup(self, expression: str) -> str | None:
        """`inputs.<x>` and `outputs.<y>` inside the node's command, program arguments or task."""
        group, _, key = expression.partition(".")
        if group == "inputs" and key in self.inputs:
            return self.inputs[key].text
        if group == "outputs" and key in self.outputs:
            return str(self.outputs[key].path)
        return None

    def is_path(self, expression: str) -> bool:
        group, _, key = expression.partition(".")
        return group == "outputs" or (group == "inputs" and key in self.inputs
                                      and self.inputs[key].type in PATH_TYPES)

    def substitute(self, text: str, what: str) -> str:
        """The bash text `text` with its bindings; paths quoted for where they land."""
        try:
            return substitute(text, self.lookup, self.is_path)
        except BindingError as exc:
            raise UsageError(f"jobs.{self.name}.{what}: {exc}") from None

    def arguments(self, text: str, what: str) -> list[str]:
        """`text` split into arguments as a shell splits them, with its bindings: literals pasted before
        the split, as Azure pastes them; a path is one argument, or part of one, whatever it holds."""
        try:
            return split_words(text, self.lookup, self.is_path)
        except BindingError as exc:
            raise UsageError(f"jobs.{self.name}.{what}: {exc}") from None
        except ValueError as exc:  # an unclosed quote
            raise UsageError(f"jobs.{self.name}.{what}: {exc} in {text!r}") from None


def literal(value: Any) -> str:
    return str(value)


class Binder:
    """Resolves a job's nodes in dependency order; each resolved node is kept for the ones after it."""

    def __init__(self, job: JobFile, out: Path, datastores: Datastores, overrides: dict[str, str]):
        self.job, self.out, self.datastores = job, out.resolve(), datastores
        self.name = str(job.spec.get("name") or job.path.stem)
        self.bound: dict[str, BoundNode] = {}
        self.pipeline_bindings: dict[str, str] = {}  # pipeline output -> the node output bound to it
        declared = dict(job.spec.get("inputs") or {})
        if job.standalone:  # a parallel component run alone: its declarations are the job's inputs
            (only,) = job.nodes.values()
            declared = dict(only.component.spec.get("inputs") or {})
        unknown = sorted(set(overrides) - set(declared))
        if unknown:
            raise UsageError(f"--set inputs.{unknown[0]}: the job has no input {unknown[0]!r} "
                             f"(it has: {', '.join(declared) or 'none'})")
        self.inputs = {key: self.pipeline_input(key, spec, overrides.get(key))
                       for key, spec in declared.items()}

    # --- the pipeline's own inputs and outputs
    def pipeline_input(self, key: str, spec: Any, override: str | None) -> Value:
        kind = spec.get("type", "string") if isinstance(spec, dict) else "string"
        mode = spec.get("mode") if isinstance(spec, dict) else None
        if override is not None:
            if kind in PATH_TYPES:
                path = local_path(override, Path.cwd(), self.datastores, f"inputs.{key}")
                return Value(str(path), kind, mode)
            return Value(override, kind, mode)
        if isinstance(spec, dict):
            raw = spec.get("path", spec.get("value", spec.get("default")))
        else:
            raw = spec
        if raw is None:
            return Value(None, kind, mode)
        if kind in PATH_TYPES:
            text = self.expand(str(raw), f"inputs.{key}")
            return Value(str(local_path(text, self.job.base, self.datastores, f"inputs.{key}")), kind, mode)
        return Value(literal(raw), kind, mode)

    def pipeline_output(self, key: str, node: str, default: Path, kind: str) -> Output:
        spec = (self.job.spec.get("outputs") or {}).get(key)
        if spec is None:
            raise UsageError(f"jobs.{node}.outputs: ${{{{parent.outputs.{key}}}}}: the pipeline has no "
                             f"output {key!r}")
        spec = spec if isinstance(spec, dict) else {}
        kind = spec.get("type", kind)
        if spec.get("path"):
            text = self.expand(str(spec["path"]), f"outputs.{key}.path")
            path = local_path(text, self.job.base, self.datastores, f"outputs.{key}")
            return Output(path, kind, bound=True)
        return Output(default, kind)

    def pipeline_outputs(self) -> dict[str, Path]:
        """Where the pipeline's outputs are, as the nodes bound them."""
        found = {}
        for node in self.bound.values():
            for key, binding in (self.job.nodes[node.name].node.get("outputs") or {}).items():
                parts = (whole_reference(binding) or "").split(".")
                if parts[:2] == ["parent", "outputs"] and len(parts) == 3:
                    found[parts[2]] = node.outputs[key].path
        return found

    def expand(self, text: str, what: str) -> str:
        """`${{name}}` and `${{default_datastore}}` in a path."""
        def lookup(expression: str) -> str | None:
            return {"name": self.name, "default_datastore": DEFAULT_DATASTORE}.get(expression)

        try:
            return substitute(text, lookup)
        except BindingError as exc:
            raise UsageError(f"{what}: {exc}") from None

    # --- nodes
    def bind(self, spec: NodeSpec) -> BoundNode:
        component = spec.component
        settings = dict(component.spec)
        for key, value in spec.node.items():
            if key in ("inputs", "outputs", "component"):
                continue
            if key in MERGED_SETTINGS and isinstance(value, dict) and isinstance(settings.get(key), dict):
                value = {**settings[key], **value}
            settings[key] = value
        kind = str(settings.get("type"))
        if kind == "parallel":  # its folder is the runner's output, where the runner keeps these
            declared = set(spec.node.get("outputs") or {}) | set(component.spec.get("outputs") or {})
            clash = sorted(set(RUNNER_ENTRIES) & declared)
            if clash:
                raise UsageError(f"jobs.{spec.name}.outputs.{clash[0]}: OUTPUT/{spec.name}/{clash[0]} is the "
                                 "local runner's own; rename the output to run it locally")
        if spec.name in (*RESERVED_NAMES, MLFLOW_FOLDER):
            raise UsageError(f"jobs.{spec.name}: OUTPUT/{spec.name} is the local runner's own (the "
                             "datastores' folders, its record, or the MLflow store); rename the node to run "
                             "it locally")
        folder = self.out / spec.name
        folder_is_new = not folder.exists()
        inline = spec.node is component.spec
        declared_inputs = {} if inline else dict(component.spec.get("inputs") or {})
        bindings = dict(spec.node.get("inputs") or {})
        inputs = {key: self.node_input(spec.name, key, bindings.get(key), declared_inputs.get(key),
                                       component.base)
                  for key in {**declared_inputs, **bindings}}
        declared_outputs = {} if inline else dict(component.spec.get("outputs") or {})
        output_bindings = dict(spec.node.get("outputs") or {})
        outputs = {key: self.node_output(spec.name, key, output_bindings.get(key), declared_outputs.get(key),
                                         folder)
                   for key in {**declared_outputs, **output_bindings}}
        created = ((folder,) if folder_is_new else ()) + tuple(
            o.path for o in outputs.values() if o.created and not o.bound)
        node = BoundNode(spec.name, kind, settings, inputs, outputs, component.base, folder, created)
        self.bound[spec.name] = node
        return node

    def node_input(self, node: str, key: str, binding: Any, declaration: Any, component_base: Path) -> Value:
        """A bound input; a local path in the node is relative to the pipeline's YAML, a component's default
        to the component's."""
        declaration = declaration if isinstance(declaration, dict) else {}
        kind, mode = declaration.get("type"), declaration.get("mode")
        raw, base = binding, self.job.base
        if isinstance(binding, dict):
            kind, mode = binding.get("type", kind), binding.get("mode", mode)
            raw = binding.get("path", binding.get("value", binding.get("default")))
        if raw is None:
            raw, base = declaration.get("default"), component_base
        what = f"jobs.{node}.inputs.{key}"
        reference = whole_reference(raw)
        if reference is not None:
            found = self.reference(reference, what)
            return Value(found.text, kind or found.type, mode or found.mode)
        if raw is None:
            return Value(None, kind or "string", mode)
        if (kind or "string") in PATH_TYPES:
            path = local_path(self.expand(str(raw), what), base, self.datastores, what)
            return Value(str(path), kind, mode)
        return Value(literal(raw), kind or "string", mode)

    def reference(self, expression: str, what: str) -> Value:
        """`parent.inputs.<x>` or `parent.jobs.<node>.outputs.<y>`."""
        parts = expression.split(".")
        if parts[:2] == ["parent", "inputs"] and len(parts) == 3 and parts[2] in self.inputs:
            return self.inputs[parts[2]]
        if parts[:2] == ["parent", "jobs"] and len(parts) == 5 and parts[3] == "outputs":
            node = self.bound.get(parts[2])
            if node is not None and parts[4] in node.outputs:
                output = node.outputs[parts[4]]
                return Value(str(output.path), output.type, None)
        raise UsageError(f"{what}: ${{{{{expression}}}}} names no pipeline input and no output of an earlier "
                         "node")

    def node_output(self, node: str, key: str, binding: Any, declaration: Any, folder: Path) -> Output:
        declaration = declaration if isinstance(declaration, dict) else {}
        kind = declaration.get("type", "uri_folder")
        if isinstance(binding, dict):
            kind = binding.get("type", kind)
        default = folder / key
        reference = whole_reference(binding)
        if reference is not None:
            parts = reference.split(".")
            if parts[:2] != ["parent", "outputs"] or len(parts) != 3:
                raise UsageError(f"jobs.{node}.outputs.{key}: expected ${{{{parent.outputs.<name>}}}}, got "
                                 f"${{{{{reference}}}}}")
            first = self.pipeline_bindings.setdefault(parts[2], f"jobs.{node}.outputs.{key}")
            if first != f"jobs.{node}.outputs.{key}":
                raise UsageError(f"jobs.{node}.outputs.{key} and {first} are both bound to "
                                 f"${{{{parent.outputs.{parts[2]}}}}}; a pipeline output has one producer")
            output = self.pipeline_output(parts[2], node, default, kind)
        elif isinstance(binding, dict) and binding.get("path"):
            what = f"jobs.{node}.outputs.{key}"
            path = local_path(self.expand(str(binding["path"]), what), self.job.base, self.datastores, what)
            output = Output(path, kind, bound=True)
        else:
            output = Output(default, kind)
        created = not output.path.exists()
        folder = output.path.parent if output.type == "uri_file" else output.path
        what = f"jobs.{node}.outputs.{key}"
        if output.type == "uri_file" and output.path.is_dir():
            raise UsageError(f"{what}: {output.path} is a folder; a uri_file output is a file")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise UsageError(f"{what}: {folder} is a file (or lies below one); a {output.type} output "
                             "needs a folder there") from None
        return dataclasses.replace(output, created=created)


def dependencies(spec: NodeSpec) -> set[str]:
    """The nodes whose outputs this node's inputs name."""
    found = set()
    for binding in (spec.node.get("inputs") or {}).values():
        raw = binding.get("path") if isinstance(binding, dict) else binding
        reference = whole_reference(raw) or ""
        parts = reference.split(".")
        if parts[:2] == ["parent", "jobs"] and len(parts) >= 3:
            found.add(parts[2])
    return found


def execution_order(job: JobFile) -> list[NodeSpec]:
    """The nodes in dependency order; among ready nodes, the YAML's order.

    Raises:
        UsageError: a node depends on a node that does not exist, or the dependencies form a cycle.
    """
    waiting = {name: dependencies(spec) for name, spec in job.nodes.items()}
    for name, needs in waiting.items():
        missing = needs - set(job.nodes)
        if missing:
            raise UsageError(f"jobs.{name}: its inputs name the outputs of {sorted(missing)[0]!r}, which is "
                             "not a node of this pipeline")
    order: list[NodeSpec] = []
    while waiting:
        ready = [name for name, needs in waiting.items() if not needs - {s.name for s in order}]
        if not ready:
            raise UsageError(f"jobs: the nodes {', '.join(sorted(waiting))} depend on each other in a cycle")
        order.append(job.nodes[ready[0]])
        del waiting[ready[0]]
    return order
