"""Every call that needs an Azure ML workspace through SDK v2 (azure-ai-ml's MLClient): the v2 glue.

Authentication: the service principal of the settings (AZURE_TENANT_ID, AZURE_CLIENT_ID,
AZURE_CLIENT_SECRET, from the environment or .env), else the Azure CLI login, else azure-identity's
DefaultAzureCredential (a managed identity, ...).
"""
from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestration.cloud.pipeline_v1 import BUILD_DOCKERFILE, stage_build_context
from orchestration.cloud.pipeline_v2 import component_name
from orchestration.cloud.workspace_v1 import AZURE_CLI, SERVICE_PRINCIPAL, authentication_kind, cli_logged_in
from orchestration.errors import UsageError
from orchestration.settings import AZURE_WORKSPACE, Settings

log = logging.getLogger(__name__)

TERMINAL_OK = "Completed"
BUILD_CONTEXT = "build-context"  # one name: an unchanged context is found uploaded under its hash


class NotPublished(UsageError):
    """`make run SDK=v2` before `make publish SDK=v2`."""


def credential(settings: Settings) -> Any:
    """The token credential MLClient uses, chosen as SDK v1 chooses (workspace_v1.authentication_kind):
    the service principal of the settings (which may come from .env, where azure-identity would not look),
    else the Azure CLI login (a person's `az login`, or what CI's azure/login leaves), else
    DefaultAzureCredential (a managed identity, ...). The offline tests replace this one function."""
    from azure.identity import AzureCliCredential, ClientSecretCredential, DefaultAzureCredential

    kind = authentication_kind(settings, cli_logged_in())
    if kind == SERVICE_PRINCIPAL:
        log.info("authenticating with the service principal")
        return ClientSecretCredential(settings.azure_tenant_id, settings.azure_client_id,
                                      settings.azure_client_secret.get_secret_value())
    if kind == AZURE_CLI:
        log.info("authenticating with the Azure CLI login")
        return AzureCliCredential(tenant_id=settings.azure_tenant_id or None)
    log.info("authenticating with DefaultAzureCredential (managed identity, ...)")
    return DefaultAzureCredential()


def connect(settings: Settings) -> Any:
    from azure.ai.ml import MLClient

    settings.require(*AZURE_WORKSPACE)
    return MLClient(credential(settings), settings.subscription_id, settings.resource_group,
                    settings.workspace_name)


def build_environment(client: Any, settings: Settings) -> str:
    """Has Azure ML build docker/Dockerfile (its runtime stage, the last); returns `azureml:name:version`."""
    from azure.ai.ml.entities import BuildContext, Environment

    with tempfile.TemporaryDirectory(prefix="aml-image-") as scratch:
        context = stage_build_context(Path(scratch) / BUILD_CONTEXT)
        environment = client.environments.create_or_update(Environment(
            name=settings.aml_env_name,
            build=BuildContext(path=str(context), dockerfile_path=BUILD_DOCKERFILE),
        ))
    return f"azureml:{environment.name}:{environment.version}"


def image_environment(image: str) -> Any:
    """An anonymous environment running a pushed image (make publish IMAGE=...)."""
    from azure.ai.ml.entities import Environment

    return Environment(image=image)


def publish(client: Any, component: Any) -> Any:
    """Registers the pipeline as a versioned pipeline component: v2's counterpart of a published pipeline."""
    return client.components.create_or_update(component)


def published_version(client: Any, settings: Settings) -> str:
    """The newest version of the pipeline component that `publish` registered.

    Raises:
        NotPublished: the workspace has no such component yet.
    """
    from azure.ai.ml.exceptions import ValidationErrorType, ValidationException
    from azure.core.exceptions import ResourceNotFoundError

    name = component_name(settings)
    try:
        return client.components.get(name, label="latest").version
    except (ValidationException, ResourceNotFoundError) as exc:
        # get(label="latest") lists the versions: an empty list is a ValidationException, a listing the
        # service refuses for an unknown name a 404; either way nothing was published under the name
        if isinstance(exc, ValidationException) and exc.error_type != ValidationErrorType.RESOURCE_NOT_FOUND:
            raise
        raise NotPublished(f"PIPELINE_NAME: no pipeline component {name!r} in workspace "
                           f"{settings.workspace_name}; run `make publish SDK=v2` first") from None


@dataclass(frozen=True)
class Outcome:
    name: str
    status: str
    failed: tuple[tuple[str, str], ...]  # (step's display name, child job name) of each failed child

    @property
    def failed_steps(self) -> tuple[str, ...]:
        return tuple(step for step, _ in self.failed)


def submit_and_wait(client: Any, job: Any) -> str:
    """Submits the pipeline job and streams it to its end; returns the job's name."""
    from azure.ai.ml.exceptions import JobException

    submitted = client.jobs.create_or_update(job)
    log.info("submitted job %s: %s", submitted.name, submitted.studio_url)
    try:
        client.jobs.stream(submitted.name)
    except JobException as exc:  # raised for a failed job only, after streaming its logs
        log.error("job %s failed: %s", submitted.name, str(exc).splitlines()[0])
    return submitted.name


def outcome(client: Any, job_name: str) -> Outcome:
    """The job's final status (stream returns normally for a canceled job too) and its failed steps."""
    raw_status = client.jobs.get(job_name).status
    status = str(getattr(raw_status, "value", raw_status))  # the SDK may hand back its JobStatus enum
    failed: tuple[tuple[str, str], ...] = ()
    if status != TERMINAL_OK:
        failed = tuple((child.display_name or child.name, child.name)
                       for child in client.jobs.list(parent_job_name=job_name)
                       if child is not None and child.status in ("Failed", "Canceled", "NotResponding"))
    return Outcome(job_name, status, failed)


def download(client: Any, job_name: str, target: Path) -> Outcome:
    """Every output of the job (the append_row file, the model folder), its logs, and each failed step's
    logs into target/steps/<step>/: a failed job still leaves what it has on disk."""
    result = outcome(client, job_name)
    target.mkdir(parents=True, exist_ok=True)
    client.jobs.download(job_name, download_path=str(target), all=True)
    for step, child in result.failed:
        client.jobs.download(child, download_path=str(target / "steps" / step), all=True)
    return result
