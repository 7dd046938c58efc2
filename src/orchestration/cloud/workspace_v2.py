"""Every call that needs an Azure ML workspace through SDK v2 (azure-ai-ml's MLClient): the v2 glue.

Authentication is azure-identity's DefaultAzureCredential: environment variables of a service principal
(AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET), a managed identity, or the Azure CLI login.
"""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from orchestration.cloud.pipeline import DOCKERFILE, stage_build_context
from orchestration.settings import Settings

log = logging.getLogger(__name__)


def connect(settings: Settings) -> Any:
    from azure.ai.ml import MLClient
    from azure.identity import DefaultAzureCredential

    settings.require("SUBSCRIPTION_ID", "RESOURCE_GROUP", "WORKSPACE_NAME")
    log.info("authenticating with DefaultAzureCredential (service principal, managed identity or Azure CLI)")
    return MLClient(DefaultAzureCredential(), settings.subscription_id, settings.resource_group,
                    settings.workspace_name)


def build_environment(client: Any, settings: Settings) -> str:
    """Has Azure ML build docker/Dockerfile (its runtime stage, the last); returns `azureml:name:version`."""
    from azure.ai.ml.entities import BuildContext, Environment

    context = stage_build_context(Path(tempfile.mkdtemp(prefix="aml-image-")))
    environment = client.environments.create_or_update(Environment(
        name=settings.aml_env_name,
        build=BuildContext(path=str(context), dockerfile_path=DOCKERFILE.as_posix()),
    ))
    return f"azureml:{environment.name}:{environment.version}"


def publish(client: Any, job: Any) -> Any:
    """Registers the pipeline as a versioned pipeline component: v2's counterpart of a published pipeline."""
    return client.components.create_or_update(job.component)


def submit_and_wait(client: Any, job: Any) -> Any:
    submitted = client.jobs.create_or_update(job)
    log.info("submitted job %s: %s", submitted.name, submitted.studio_url)
    client.jobs.stream(submitted.name)
    return client.jobs.get(submitted.name)


def download(client: Any, job_name: str, target: Path) -> None:
    """Every output of the job (the append_row file, the model folder) and its logs."""
    target.mkdir(parents=True, exist_ok=True)
    client.jobs.download(job_name, download_path=str(target), all=True)
