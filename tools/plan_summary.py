"""`make plan`'s summary: what `make publish` (SDK v1 and v2) and `make run SDK=v2` would send, in Markdown.

Reads the dry-run plans `make plan` writes (publish-v1.json; publish-v2.yml and run-v2.yml) and writes a short
summary a reviewer reads in a pull request: the steps, the compute, the parallel settings, the image.
The plans themselves hold the whole detail; no plan holds a secret (the dry runs never read one out).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from orchestration.commands import ArgumentParser, UsageError, last_line, run_command
from orchestration.parallel_fields import FIELDS

PLANS = {"v1": "publish-v1.json", "v2": "publish-v2.yml", "run": "run-v2.yml"}
# The parallel settings a reviewer checks are the table's (parallel_fields.FIELDS), under each SDK's own
# names. A v2 node's YAML holds instance_count under resources (program_arguments sits in its task).
V2_KEY_IN_YAML = {"instance_count": "resources"}

V1_NAMES = [field.name for field in FIELDS]
V2_NAMES = [V2_KEY_IN_YAML.get(top, top) for top in (field.v2.split(".")[0] for field in FIELDS if field.v2)]


def parallel_rows(node: dict[str, Any], names: list[str]) -> list[tuple[str, Any]]:
    """The node's values of those settings, where set (a v1 plan holds partition_keys as null if unused)."""
    return [(name, node[name]) for name in dict.fromkeys(names) if node.get(name) is not None]


def v1_image(environment: dict[str, Any]) -> str:
    if "image" in environment:
        return f"`{environment['image']}`"
    return f"built by Azure ML from `{environment['build_context'][environment['dockerfile_path']]}`"


def v2_image(environment: Any) -> str:
    if isinstance(environment, dict):  # an inline environment: a pushed image
        return f"`{environment['image']}`" if "image" in environment else f"`{json.dumps(environment)}`"
    return f"`{environment}` (built by `make publish` from `docker/Dockerfile`)"


def table(rows: list[tuple[str, Any]]) -> list[str]:
    def shown(value: Any) -> str:
        return json.dumps(value) if isinstance(value, (dict, list)) else str(value)
    return ["| setting | value |", "|---|---|", *(f"| `{key}` | `{shown(value)}` |" for key, value in rows)]


def in_order(nodes: dict[str, Any]) -> list[str]:
    """The nodes' names in the order they run: each after the nodes whose outputs its inputs bind
    (`${{parent.jobs.NAME.outputs...}}`); the YAML lists them alphabetically."""
    def needs(node: Any) -> set[str]:
        text = json.dumps(node.get("inputs", {}))
        return {other for other in nodes if f"parent.jobs.{other}." in text}

    ordered: list[str] = []
    while len(ordered) < len(nodes):
        ready = [name for name, node in nodes.items() if name not in ordered and needs(node) <= set(ordered)]
        if not ready:  # a cycle: azure-ai-ml would have refused the plan
            left = sorted(set(nodes) - set(ordered))
            raise UsageError(f"the plan's nodes bind each other in a cycle: {left}")
        ordered += sorted(ready)
    return ordered


def v1_section(plan: dict[str, Any]) -> list[str]:
    steps = plan["steps"]
    parallel = next(step for step in steps if step["type"] == "ParallelRunStep")["parallel_run_config"]
    meta = plan["pipeline"]
    return [
        "### SDK v1: `make publish`",
        f"Pipeline `{meta['name']}`, the default of endpoint `{meta['endpoint']}`; runs in experiment "
        f"`{meta['experiment']}` on compute `{plan['compute_target']}`.",
        "",
        "Steps: " + " → ".join(f"`{step['name']}` ({step['type']})" for step in steps),
        "",
        f"Image: {v1_image(plan['environment'])}. Input: datastore `{plan['datastore']['name']}`, folder "
        f"`{plan['datastore']['path']}`.",
        "",
        *table(parallel_rows(parallel, V1_NAMES)),
    ]


def v2_section(component: dict[str, Any], job: dict[str, Any] | None) -> list[str]:
    nodes = component["jobs"]
    name, parallel = next((name, node) for name, node in nodes.items() if node["type"] == "parallel")
    task = parallel["task"]
    lines = [
        "### SDK v2: `make publish SDK=v2`, then `make run SDK=v2`",
        f"Pipeline component `{component['name']}` (the next version is registered).",
        "",
        "Steps: " + " → ".join(f"`{step}` ({nodes[step]['type']})" for step in in_order(nodes)),
        "",
        f"Image: {v2_image(task['environment'])}. Parallel step `{name}`: `{task['entry_script']}` "
        f"`{task.get('program_arguments', '')}`.",
    ]
    if job is not None:
        lines += ["", f"The run: compute `{job['compute'].removeprefix('azureml:')}`, experiment "
                      f"`{job['experiment_name']}`, input `{job['inputs']['raw']['path']}`, outputs "
                      + ", ".join(f"`{output['path']}`" for output in job["outputs"].values()) + "."]
    return lines + ["", *table(parallel_rows(parallel, V2_NAMES))]


def read(path: Path) -> Any:
    """A plan file as a document (a missing one is None).

    Raises:
        UsageError: the file is not the JSON or YAML mapping a dry run writes.
    """
    if not path.is_file():
        return None
    try:
        text = path.read_text()
        document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise UsageError(f"PLAN_DIR: {path} is not a plan a dry run writes ({type(exc).__name__}); run "
                         "`make plan` again") from None
    if not isinstance(document, dict):
        raise UsageError(f"PLAN_DIR: {path} is not a plan a dry run writes; run `make plan` again")
    return document


def summary(folder: Path) -> str:
    """The Markdown summary of the plans in `folder`: one section per SDK planned (make plan's PLAN_SDKS).

    Raises:
        UsageError: no plan, half of v2's, or a plan that is not one.
    """
    v1, component, job = (read(folder / PLANS[key]) for key in ("v1", "v2", "run"))
    if v1 is None and component is None:
        raise UsageError(f"PLAN_DIR: no {PLANS['v1']} or {PLANS['v2']} in {folder}; `make plan` writes them")
    if (component is None) != (job is None):
        raise UsageError(f"PLAN_DIR: {folder} holds only one of {PLANS['v2']} and {PLANS['run']}; run "
                         "`make plan`")
    sections = []
    try:
        if v1 is not None:
            sections += ["", *v1_section(v1)]
        if component is not None:
            sections += ["", *v2_section(component, job)]
    except (KeyError, TypeError, StopIteration) as exc:
        raise UsageError(f"PLAN_DIR: a plan in {folder} lacks what a dry run writes ({exc!r}); run "
                         "`make plan` again") from None
    return "\n".join(["## What a merge would publish", "",
                      "From the dry runs (`make plan`) with the repository's settings; nothing was sent to "
                      "Azure. The plans are the job's artifacts.", *sections, ""])


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m tools.plan_summary", description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="the folder make plan wrote the plans into")
    parser.add_argument("--out", type=Path, required=True, help="the Markdown file to write")
    args = parser.parse_args(argv)
    text = summary(args.folder)
    try:
        args.out.write_text(text)
    except OSError as exc:
        raise UsageError(f"--out: cannot write {args.out} ({exc.strerror})") from None
    print(last_line(0, f"wrote the plans' summary to {args.out}"))
    return 0


if __name__ == "__main__":
    run_command(main)
