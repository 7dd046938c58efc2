"""Every SDK v1 call that needs an Azure ML workspace, and nothing else (SDK v2: workspace_v2.py).

Everything here is glue around azureml-core / azureml-pipeline-core (SDK v1): authentication, the compute
cluster, the datastore, publishing, submitting, downloading. The logic it applies (what to create, the
pipeline's shape, what a difference is) lives in pure functions elsewhere and is tested offline.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from orchestration.errors import UsageError
from orchestration.settings import AZURE_STORAGE, AZURE_WORKSPACE, Settings

log = logging.getLogger(__name__)

SERVICE_PRINCIPAL, AZURE_CLI, INTERACTIVE = "service principal", "Azure CLI login", "interactive login"


class PipelineInvalid(UsageError):
    """Pipeline.validate() found errors: nothing was published."""

    def __init__(self, errors: list[Any]):
        self.errors = errors
        super().__init__("the pipeline is invalid, nothing was published:\n" +
                         "\n".join(f"  - {error}" for error in errors))


class NoRegistry(UsageError):
    """The workspace has no container registry yet."""


class NotProvisioned(UsageError):
    """The compute cluster or the datastore the pipeline needs does not exist in the workspace."""


class NotACluster(UsageError):
    """The compute of the cluster's name is of another kind (a compute instance, an attached VM, ...)."""


# Workspace.compute_targets and Workspace.datastores list the workspace's resources on every access (one
# service call each), so each is read once per lookup.

def compute_target(workspace: Any, name: str) -> Any:
    cluster = workspace.compute_targets.get(name)
    if cluster is None:
        raise NotProvisioned(f"AML_COMPUTE_CLUSTER_NAME: no compute cluster {name!r} in workspace "
                             f"{workspace.name}; run `make provision` first")
    return require_cluster(cluster, workspace)


def require_cluster(compute: Any, workspace: Any) -> Any:
    """The compute, if it is an AmlCompute cluster: the pipeline's steps run on one, and provision only
    creates or compares one."""
    if compute.type != "AmlCompute":
        raise NotACluster(f"AML_COMPUTE_CLUSTER_NAME: {compute.name!r} in workspace {workspace.name} is a "
                          f"{compute.type}, not an AmlCompute cluster; set another name for the cluster")
    return compute


def datastore(workspace: Any, name: str) -> Any:
    store = workspace.datastores.get(name)
    if store is None:
        raise NotProvisioned(f"AML_BLOB_DATASTORE_NAME: no datastore {name!r} in workspace {workspace.name}; "
                             "run `make provision` first")
    return store


def authentication_kind(settings: Settings, cli_logged_in: bool) -> str:
    """Service principal when its three variables are set (CI), else the Azure CLI login, else interactive."""
    principal = (settings.azure_tenant_id, settings.azure_client_id,
                 settings.azure_client_secret.get_secret_value())
    if all(principal):
        return SERVICE_PRINCIPAL
    return AZURE_CLI if cli_logged_in else INTERACTIVE


def cli_token_getter(credential: Any) -> Callable[[str], str]:
    """`get_token_for_audience` for azureml-core's TokenAuthentication, from an azure-identity credential.

    azureml-core asks for a resource URL (ARM or Azure ML) on every request; azure-identity takes a scope,
    kept with its trailing slash as the SDK's own conversion does (azureml/_vendor/azure_cli_core/auth/
    util.py, resource_to_scopes). Tokens are reused until five minutes before they expire, so one `az`
    process serves many requests.
    """
    import time

    cache: dict[str, Any] = {}

    def get_token_for_audience(resource: str) -> str:
        token = cache.get(resource)
        if token is None or token.expires_on - time.time() < 300:
            token = cache[resource] = credential.get_token(resource + "/.default")
        return token.token

    return get_token_for_audience


def authentication(settings: Settings, kind: str) -> Any:
    """The azureml-core authentication object of that kind; the chosen kind (never a secret) is logged.

    The Azure CLI login goes through azure-identity's AzureCliCredential (which runs `az account
    get-access-token`) inside TokenAuthentication: azureml-core's own AzureCliAuthentication imports the
    azure-cli Python package (authentication.py, `_azure_cli_core_check`), which is far too heavy to lock
    beside the SDK, while the `az` command a user logs in with is installed on its own.
    """
    from azureml.core.authentication import (
        InteractiveLoginAuthentication, ServicePrincipalAuthentication, TokenAuthentication,
    )

    log.info("authenticating with the %s", kind)
    if kind == SERVICE_PRINCIPAL:
        return ServicePrincipalAuthentication(
            tenant_id=settings.azure_tenant_id, service_principal_id=settings.azure_client_id,
            service_principal_password=settings.azure_client_secret.get_secret_value(),
        )
    if kind == AZURE_CLI:
        from azure.identity import AzureCliCredential

        # AZURE_TENANT_ID, where set, picks the tenant of an `az` logged in to several
        return TokenAuthentication(cli_token_getter(
            AzureCliCredential(tenant_id=settings.azure_tenant_id or None)))
    return InteractiveLoginAuthentication(tenant_id=settings.azure_tenant_id or None)


def cli_logged_in() -> bool:
    """Whether `az login` has a usable session (an `az` on the PATH that returns an account)."""
    import shutil
    import subprocess

    if shutil.which("az") is None:
        return False
    result = subprocess.run(["az", "account", "show", "--output", "none"], capture_output=True)
    return result.returncode == 0


def connect(settings: Settings) -> Any:
    """The workspace named by SUBSCRIPTION_ID, RESOURCE_GROUP and WORKSPACE_NAME."""
    from azureml.core import Workspace

    settings.require(*AZURE_WORKSPACE)
    kind = authentication_kind(settings, cli_logged_in())
    return Workspace.get(
        name=settings.workspace_name, auth=authentication(settings, kind),
        subscription_id=settings.subscription_id, resource_group=settings.resource_group,
    )


def ensure_compute(workspace: Any, wanted: dict[str, Any]) -> tuple[Any, dict[str, tuple[Any, Any]]]:
    """The AmlCompute cluster, created if missing; returns it and its differences from `wanted`."""
    from azureml.core.compute import AmlCompute, ComputeTarget

    name = wanted["name"]
    cluster = workspace.compute_targets.get(name)
    if cluster is not None:
        scale = require_cluster(cluster, workspace).scale_settings
        actual = {"vm_size": cluster.vm_size, "min_nodes": scale.minimum_node_count,
                  "max_nodes": scale.maximum_node_count,
                  "idle_seconds_before_scaledown": _idle_seconds(scale.idle_seconds_before_scaledown)}
        differences = {k: (actual[k], wanted[k]) for k in actual
                       if str(actual[k]).lower() != str(wanted[k]).lower()}
        return cluster, differences
    config = AmlCompute.provisioning_configuration(
        vm_size=wanted["vm_size"], min_nodes=wanted["min_nodes"], max_nodes=wanted["max_nodes"],
        idle_seconds_before_scaledown=wanted["idle_seconds_before_scaledown"],
    )
    cluster = ComputeTarget.create(workspace, name, config)
    cluster.wait_for_completion(show_output=True)
    return cluster, {}


def _idle_seconds(value: Any) -> Any:
    """The service reports the idle time as an ISO 8601 duration (PT300S) or as seconds."""
    text = str(value)
    if text.startswith("PT") and text.endswith("S"):
        return int(float(text[2:-1]))
    return value


def ensure_datastore(workspace: Any, settings: Settings) -> tuple[Any, dict[str, tuple[Any, Any]]]:
    """The blob datastore, registered if missing; returns it and its differences from the settings."""
    from azureml.core import Datastore

    name = settings.aml_blob_datastore_name
    wanted = {"account_name": settings.aml_storage_account_name,
              "container_name": settings.aml_blob_container_name}
    store = workspace.datastores.get(name)
    if store is not None:
        actual = {"account_name": store.account_name, "container_name": store.container_name}
        return store, {k: (actual[k], wanted[k]) for k in wanted if actual[k] != wanted[k]}
    settings.require(*AZURE_STORAGE)
    # create_if_not_exists: docs/azure.md provisions before it uploads, so the container may not exist yet
    # (the SDK's default is False: azureml/core/datastore.py, register_azure_blob_container).
    store = Datastore.register_azure_blob_container(
        workspace=workspace, datastore_name=name, container_name=settings.aml_blob_container_name,
        account_name=settings.aml_storage_account_name,
        account_key=settings.aml_storage_account_key.get_secret_value(), create_if_not_exists=True,
    )
    return store, {}


def publish(workspace: Any, plan: dict[str, Any], steps: list[Any]) -> tuple[Any, Any]:
    """Validates and publishes the pipeline, then makes it the endpoint's default (creating it)."""
    from azureml.pipeline.core import Pipeline, PipelineEndpoint

    pipeline = Pipeline(workspace=workspace, steps=steps)
    errors = pipeline.validate()  # a list; empty when the graph is sound
    if errors:
        raise PipelineInvalid(errors)
    meta = plan["pipeline"]
    published = pipeline.publish(name=meta["name"], description="prepare -> extract (PRS) -> train")
    try:
        endpoint = PipelineEndpoint.get(workspace=workspace, name=meta["endpoint"])
    except Exception:  # the SDK raises a generic error for a missing endpoint
        endpoint = PipelineEndpoint.publish(
            workspace=workspace, name=meta["endpoint"], pipeline=published, description=meta["name"]
        )
    else:
        endpoint.add_default(published)
    return published, endpoint


def submit(workspace: Any, plan: dict[str, Any]) -> Any:
    """Submits the endpoint's default pipeline; returns the pipeline run."""
    from azureml.pipeline.core import PipelineEndpoint

    endpoint = PipelineEndpoint.get(workspace=workspace, name=plan["pipeline"]["endpoint"])
    return endpoint.submit(plan["pipeline"]["experiment"])


def find_run(workspace: Any, plan: dict[str, Any], run_id: str) -> Any:
    from azureml.core import Experiment
    from azureml.pipeline.core import PipelineRun

    return PipelineRun(Experiment(workspace, plan["pipeline"]["experiment"]), run_id)


class StepRun(NamedTuple):
    name: str
    run: Any
    status: str


FINISHED = ("Finished", "Completed")  # a step run's status as run history or the pipeline service says it


def step_runs(run: Any) -> list[StepRun]:
    """The pipeline's step runs and their statuses, asked for once; a step that never started is absent."""
    return [StepRun(step.name, step, step.get_status()) for step in run.get_steps()]


def failed_steps(steps: list[StepRun]) -> list[str]:
    """Names of the steps whose run did not finish, in the order the service lists them."""
    return [step.name for step in steps if step.status not in FINISHED]


def download_results(steps: list[StepRun], target: Path, append_row_file_name: str) -> list[Path]:
    """Every step's logs first, then what exists of the results: the extraction's append_row file (as
    target/extraction/<name>) and the training outputs (metrics, model, plot). A failed run still leaves
    its logs on disk."""
    from orchestration.cloud.pipeline_v1 import EXTRACTED, STEP_NAMES

    target.mkdir(parents=True, exist_ok=True)
    written = download_logs(steps, target / "logs")
    finished = {step.name: step.run for step in steps if step.status in FINISHED}
    if STEP_NAMES["extraction"] in finished:
        folder = target / "extraction"
        finished[STEP_NAMES["extraction"]].get_output_data(EXTRACTED).download(local_path=str(folder))
        written.append(lift(folder, append_row_file_name))
    if STEP_NAMES["training"] in finished:
        finished[STEP_NAMES["training"]].download_files(
            prefix="outputs", output_directory=str(target / "training"), append_prefix=False)
        written.append(target / "training")
    return written


def lift(folder: Path, name: str) -> Path:
    """Moves file `name` from below `folder` (the download keeps the output's datastore path, e.g.
    azureml/<run id>/extracted_rows/) to `folder/name`, and removes the emptied path."""
    found = next((p for p in folder.rglob(name) if p.is_file()), None)
    if found is None or found.parent == folder:
        return found or folder
    destination = found.replace(folder / name)
    for parent in sorted({p for p in folder.rglob("*") if p.is_dir()}, key=lambda p: -len(p.parts)):
        if not any(parent.iterdir()):
            parent.rmdir()
    return destination


def download_logs(steps: list[StepRun], target: Path) -> list[Path]:
    """Every step's logs into target/<step name>/."""
    written = []
    for step in steps:
        folder = target / step.name
        step.run.get_all_logs(destination=str(folder))
        written.append(folder)
    return written


def registry_login_server(workspace: Any) -> str:
    """The workspace's container registry, as `<name>.azurecr.io`.

    Raises:
        NoRegistry: a new workspace gets its registry with its first image build.
    """
    registry_id = workspace.get_details().get("containerRegistry")
    if not registry_id:
        raise NoRegistry(f"workspace {workspace.name} has no container registry yet: Azure ML creates it "
                         "with the workspace's first image build (the first `make run` after "
                         "`make publish`); or pass REGISTRY=<name>.azurecr.io")
    return f"{registry_id.rstrip('/').rsplit('/', 1)[1]}.azurecr.io"
