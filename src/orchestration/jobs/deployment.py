"""A batch endpoint deployment (`deployment.yml`) run locally: its scoring script over `--input`, as the
endpoint's batch job runs it, through the local ParallelRunStep runner.

Azure has no local run for batch endpoints (online endpoints have `--local`). The YAML is checked by
azure-ai-ml's own loader (`type: model`: load_model_batch_deployment; no type: the older
load_batch_deployment, its settings at the top level), then mapped with the defaults of a batch
deployment, which differ from a pipeline job's: mini_batch_size 10, max_concurrency_per_instance 1,
output_action append_row to `predictions.csv`, retry_settings max_retries 3 and timeout 30 s,
error_threshold -1, logging_level info (ModelBatchDeploymentSettings and BatchRetrySettings docstrings).

The model is where the scoring script finds it through AZUREML_MODEL_DIR, laid out as Azure lays out a
model registered from a local path: `AZUREML_MODEL_DIR/<the path's last name>` (so `glob(MODEL_DIR/*/)`
finds a folder model, `MODEL_DIR/model.pkl` a file one). Locally that name is a link to the model in
`<output>/azureml-models/<name>/<version>/`, which the runner makes once it holds the output
(RunConfig.links): the model is read where it is, never copied, moved or removed, and may not overlap
the output.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestration.errors import UsageError
from orchestration.jobs.loading import read_yaml, schema_errors
from orchestration.parallel_fields import FIELDS, parse_mini_batch_size, whole
from orchestration.prs.claim import RUNNER_ENTRIES
from orchestration.prs.config import RunConfig

log = logging.getLogger(__name__)

# A batch deployment's defaults where its YAML leaves a key out (azure-ai-ml 1.35's docstrings).
DEFAULTS: dict[str, Any] = {
    "mini_batch_size": 10, "instance_count": 1, "max_concurrency_per_instance": 1,
    "output_action": "append_row", "output_file_name": "predictions.csv", "max_retries": 3, "timeout": 30,
    "error_threshold": -1, "logging_level": "info",
}
MODELS_FOLDER = "azureml-models"  # in --output: AZUREML_MODEL_DIR's parents
LOGGING_LEVEL = next(f for f in FIELDS if f.name == "logging_level")  # Azure's levels, as the runner's

# Keys that only mean something in Azure, with the reason they are ignored here.
IGNORED = {
    "compute": "it runs on this machine",
    "environment": "it runs in the local interpreter (--python) or --container's image",
    "endpoint_name": "no endpoint is created; the deployment runs once, over --input",
    "name": "no deployment is created",
    "description": "no deployment is created",
    "tags": "no deployment is created",
    "properties": "no deployment is created",
    "$schema": "the schema is checked by azure-ai-ml's loader",
}


@dataclass(frozen=True)
class DeploymentPlan:
    config: RunConfig
    model: Path | None  # the model AZUREML_MODEL_DIR holds, or None
    model_dir: Path | None  # AZUREML_MODEL_DIR
    notes: list[str] = field(default_factory=list)  # what was ignored, for the log


def validate(path: Path, kind: str | None) -> None:
    """azure-ai-ml's own check of a batch deployment, its errors one per line.

    Raises:
        UsageError: as `az ml batch-deployment create` would refuse the file.
    """
    logging.getLogger("azure.ai.ml._utils._experimental").setLevel(logging.ERROR)
    from azure.ai.ml.entities._load_functions import load_batch_deployment, load_model_batch_deployment

    try:
        (load_model_batch_deployment if kind == "model" else load_batch_deployment)(source=path)
    except Exception as exc:  # marshmallow's and azure-ai-ml's validation errors share no base class
        raise UsageError(f"{path} is refused by azure-ai-ml's loader, as `az ml batch-deployment create` "
                         "would refuse it (errors above)", schema_errors(str(exc))) from None


def load_deployment(path: Path) -> dict[str, Any]:
    """The deployment's YAML, checked by azure-ai-ml; a pipeline component deployment is refused by name.

    Raises:
        UsageError: unreadable, refused by the schema, or not a model deployment.
    """
    path = path.resolve()
    document = read_yaml(path, "deployment file", "`code_configuration:`, `settings:` and a `model:`")
    kind = document.get("type")
    if kind == "pipeline":
        raise UsageError(f"{path}: a pipeline component deployment runs a pipeline, not a scoring script; "
                         "run its component's pipeline job locally with --job FILE.yml")
    if kind not in (None, "model"):
        raise UsageError(f"{path}: type {kind!r}: expected `type: model` (or no type) for a batch deployment")
    validate(path, kind)
    return document


def registered_model(reference: str) -> tuple[str, str]:
    """(name, version) of `azureml:name:version`, `azureml:name@latest`, `name:version` or a registry's
    model URI; version 1 where none is named (Azure resolves @latest; no version is known here)."""
    text = reference.removeprefix("azureml:")
    match = re.fullmatch(r"(?P<name>[^:@/]+)(?::(?P<version>[^:@]+)|@(?P<label>\w+))?", text)
    if match:
        return match["name"], match["version"] or "1"
    # a registry's URI: azureml://registries/<registry>/models/<name>/versions/<version> (or /labels/...)
    found = re.search(r"models/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+))?", text)
    return (found["name"], found["version"] or "1") if found else ("model", "1")


SAFE_NAME = re.compile(r"^(?!\.{1,2}$)[A-Za-z0-9_.-]{1,255}$")  # a model's name or version: one folder


def model_source(spec: Any, base: Path, override: Path | None, where: str) -> tuple[Path | None, str, str]:
    """(the model as given, its name, its version) from the YAML's `model:` and --model.

    Raises:
        UsageError: a registered model without --model, a path that does not exist, or a name or version
            that is not one folder's name.
    """
    if isinstance(spec, str):
        name, version = registered_model(spec)
        if override is None:
            raise UsageError(f"{where}: model {spec} is registered in a workspace, which only Azure can "
                             "resolve; give a local copy with --model PATH: the model's folder or file as "
                             "registered (`az ml model download --name N --version V --download-path D` "
                             "puts it in D/N/)")
    elif isinstance(spec, dict):
        name, version = str(spec.get("name") or ""), str(spec.get("version") or "1")
        if override is None:
            if not spec.get("path"):
                raise UsageError(f"{where}: model: expected a `path:` (or give --model PATH)")
            override = base / str(spec["path"])
    else:
        name, version = "", "1"
    if override is None:
        return None, name, version
    override = Path(os.path.normpath(override.absolute()))  # as given (a link keeps its name), no `..`
    if not override.exists():
        raise UsageError(f"{where}: model {override} does not exist")
    name = name or override.name
    for what, value in (("name", name), ("version", version)):
        if not SAFE_NAME.match(value):
            raise UsageError(f"{where}: model {what} {value!r}: expected letters, digits, '.', '_' and '-' "
                             "(it names a folder of AZUREML_MODEL_DIR)")
    return override, name, version


def check_apart(model: Path, output: Path, inputs: tuple[Path, ...]) -> None:
    """The model is only read: it may not hold the output, lie inside it, or be an input's parent.

    Raises:
        UsageError: naming the two paths.
    """
    real, out = model.resolve(), output.resolve()
    if real == out or out in real.parents or real in out.parents:
        raise UsageError(f"--model {model} overlaps --output {output}: the run writes and clears its output; "
                         "choose an output folder outside the model, and the model outside the output")
    for path in inputs:
        source = path.resolve()
        if real in source.parents or real == source:
            raise UsageError(f"--model {model} holds --input {path}: give the model and the input apart")


def _number(value: Any, key: str, least: int) -> int:
    """A whole setting of at least `least`, parsed as the runner's settings are (parallel_fields.whole)."""
    try:
        return whole(least)(value)
    except ValueError as exc:
        raise UsageError(f"{key}: {exc} (got {value!r})") from None


def deployment_plan(path: Path, document: dict[str, Any], inputs: tuple[Path, ...], output: Path,
                    model: Path | None, max_workers: int, python: Path | None = None,
                    container: str | None = None, resume: bool = False) -> DeploymentPlan:
    """The RunConfig of the deployment over `inputs`; the runner lays the model out in `output` once it
    holds it (RunConfig.links). Nothing is written here.

    Raises:
        UsageError: naming the key and what it expects.
    """
    base, where = path.resolve().parent, str(path)
    code = document.get("code_configuration")
    if not isinstance(code, dict) or not code.get("scoring_script"):
        raise UsageError(f"{where}: code_configuration.scoring_script: required locally. A deployment of an "
                         "MLflow model may leave it out because Azure then writes the scoring script; "
                         "write one (init/run) and name it here")
    entry_script = base / str(code.get("code") or ".") / str(code["scoring_script"])
    settings = (document.get("settings") if document.get("type") == "model" else document) or {}
    prefix = "settings." if document.get("type") == "model" else ""  # the older schema: at the top
    retry = settings.get("retry_settings") or {}
    resources = document.get("resources") or {}

    def setting(key: str) -> Any:
        return settings.get(key, DEFAULTS[key])

    output_action = str(setting("output_action")).lower()
    if output_action not in ("append_row", "summary_only"):
        raise UsageError(f"{prefix}output_action: expected append_row or summary_only "
                         f"(got {output_action!r})")
    try:
        mini_batch_size = parse_mini_batch_size(str(setting("mini_batch_size")))
    except ValueError as exc:
        raise UsageError(f"{prefix}mini_batch_size: {exc} (got {setting('mini_batch_size')!r})") from None
    file_name = str(settings.get("output_file_name") or DEFAULTS["output_file_name"])
    if Path(file_name).name != file_name or file_name in (".", "..", *RUNNER_ENTRIES, MODELS_FOLDER):
        raise UsageError(f"{prefix}output_file_name: expected a file name other than the runner's own "
                         f"{', '.join((*RUNNER_ENTRIES, MODELS_FOLDER))} (got {file_name!r})")
    error_threshold = _number(setting("error_threshold"), f"{prefix}error_threshold", -1)
    instances_key = "resources.instance_count" if "instance_count" in resources else f"{prefix}instance_count"
    instances = resources.get("instance_count", settings.get("instance_count", DEFAULTS["instance_count"]))
    try:
        logging_level = LOGGING_LEVEL.parse(setting("logging_level"))
    except ValueError as exc:
        raise UsageError(f"{prefix}logging_level: {exc} (got {setting('logging_level')!r})") from None
    local_model, name, version = model_source(document.get("model"), base, model, where)
    variables = {str(k): str(v) for k, v in (settings.get("environment_variables") or {}).items()}
    model_dir, links = None, ()
    if local_model is not None:
        check_apart(local_model, output, inputs)
        # Azure's layout: the model, under the last name of the path it was registered from
        model_dir = output.resolve() / MODELS_FOLDER / name / version
        links = ((model_dir / local_model.name, local_model.resolve()),)
        variables["AZUREML_MODEL_DIR"] = str(model_dir)
    notes = [f"{key}: ignored locally, {reason}" for key, reason in IGNORED.items() if key in document]
    extra = sorted(set(resources) - {"instance_count"})
    if extra:
        notes.append(f"resources.{', resources.'.join(extra)}: ignored locally, it runs on this machine")
    config = RunConfig(
        entry_script=entry_script, inputs=inputs, output=output, mini_batch_size=mini_batch_size,
        error_threshold=error_threshold, node_count=_number(instances, instances_key, 1),
        process_count_per_node=_number(setting("max_concurrency_per_instance"),
                                       f"{prefix}max_concurrency_per_instance", 1),
        run_invocation_timeout=_number(retry.get("timeout", DEFAULTS["timeout"]),
                                       f"{prefix}retry_settings.timeout", 1),
        run_max_try=_number(retry.get("max_retries", DEFAULTS["max_retries"]),
                            f"{prefix}retry_settings.max_retries", 0) + 1,
        output_action=output_action,
        append_row_to=output / file_name if output_action == "append_row" else None,
        logging_level=logging_level, environment_variables=variables,
        # -1 ignores failed items, a short return included, as for v2 jobs (docs/runner.md)
        short_return_fails_mini_batch=error_threshold != -1, max_workers=max_workers, python=python,
        container=container, read_paths=(local_model.resolve(),) if local_model is not None else (),
        links=links, resume=resume,
    )
    return DeploymentPlan(config, local_model, model_dir, notes)
