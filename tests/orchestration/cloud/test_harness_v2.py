"""SDK v2 to the wire: `make publish|run|logs SDK=v2` run azure-ai-ml's own code with the network refused.

MLClient gets a fake token credential (the only seam); everything else is the SDK's own validation
(schemas, component names, input types, bindings) and request building. Each command must get past all
local checks and fail only at its first HTTP call — which the test names.
"""
import time

import pytest
from azure.core.credentials import AccessToken

from orchestration.cloud import cli as cloud, workspace_v2
from orchestration.cloud.pipeline_v2 import build_pipeline_job, component_name
from orchestration.settings import SettingsError, load_settings
from tests.network import NetworkRefused

WORKSPACE = dict(SUBSCRIPTION_ID="00000000-0000-0000-0000-000000000000", RESOURCE_GROUP="rg",
                 WORKSPACE_NAME="ws", AML_SDK="v2")
ARM = ("https://management.azure.com/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg"
       "/providers/Microsoft.MachineLearningServices/workspaces/ws")


class FakeCredential:
    """An azure-core TokenCredential that hands out a token without a network call."""

    def __init__(self):
        self.scopes = []

    def get_token(self, *scopes, **kwargs):
        self.scopes.append(scopes)
        return AccessToken("fake-token", int(time.time()) + 3600)


@pytest.fixture
def offline(wire, monkeypatch):
    for name, value in WORKSPACE.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(workspace_v2, "credential", lambda settings: FakeCredential())
    return wire


def first_call(wire) -> str:
    method, url = wire.refused[0].split(" ", 1)
    return f"{method} {url.removeprefix(ARM).split('?')[0]}"


def test_the_pipeline_component_passes_the_sdks_own_validation_offline(offline):
    client = workspace_v2.connect(load_settings(env_file=None))
    component = build_pipeline_job(load_settings(env_file=None)).component
    result = client.components.validate(component)  # local checks only (remote validation is opt-in)
    assert result.passed, result.error_messages
    assert component.name == "california_housing_pipeline"
    assert component.inputs["raw"].type == "uri_folder"  # typed: "Parameter type unknown" before
    assert offline.refused == []


def test_publish_builds_the_environment_first_from_the_flat_build_context(offline):
    with pytest.raises(NetworkRefused):
        cloud.main(["publish"])
    assert first_call(offline) == "GET /environments/batch-toolkit-env"  # its next version number


def test_publish_with_an_image_validates_and_registers_the_component_up_to_the_code_upload(offline):
    with pytest.raises(NetworkRefused):
        cloud.main(["publish", "--image", "myregistry.azurecr.io/toolkit:abc123"])
    # create_or_update validated the component (a ValidationException otherwise) and then registers
    # its dependencies, starting with the image's anonymous environment.
    assert first_call(offline).startswith("PUT /environments/CliV2AnonymousEnvironment/versions/")


def test_run_submits_a_job_that_passes_local_validation_and_asks_for_the_compute(offline, capsys):
    assert cloud.main(["run"]) == 1  # the SDK reports the refused lookup as an invalid compute
    err = capsys.readouterr().err
    assert "error: run failed: network refused in tests: GET https://management.azure.com/" in err
    assert first_call(offline) == "GET /computes/cpu-cluster"


def test_logs_asks_for_the_named_job(offline):
    with pytest.raises(NetworkRefused):
        cloud.main(["logs", "--run-id", "happy_job_42"])
    assert first_call(offline) == "GET /jobs/happy_job_42"


def test_a_service_principal_from_the_settings_reaches_its_token_endpoint(wire, monkeypatch):
    """.env values never reach os.environ, where DefaultAzureCredential would look for them."""
    from azure.identity import ClientSecretCredential

    settings = load_settings(env_file=None, AZURE_TENANT_ID="tenant", AZURE_CLIENT_ID="app",
                             AZURE_CLIENT_SECRET="CLIENT-sentinel", **WORKSPACE)
    for name in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    credential = workspace_v2.credential(settings)
    assert isinstance(credential, ClientSecretCredential)
    with pytest.raises(Exception):
        credential.get_token("https://management.azure.com/.default")
    assert wire.refused and "login.microsoftonline.com/tenant" in wire.refused[0]
    assert "CLIENT-sentinel" not in " ".join(wire.refused)


@pytest.mark.parametrize("pipeline_name, expected", [
    ("california-housing-pipeline", "california_housing_pipeline"), ("My.Pipeline-2", "my_pipeline_2")])
def test_pipeline_names_become_valid_component_names(pipeline_name, expected):
    settings = load_settings(env_file=None, PIPELINE_NAME=pipeline_name)
    assert component_name(settings) == expected
    assert build_pipeline_job(settings).component._validate().passed


def test_a_pipeline_name_that_cannot_be_a_component_name_is_a_setting_error():
    with pytest.raises(SettingsError, match="PIPELINE_NAME: expected a letter first"):
        component_name(load_settings(env_file=None, PIPELINE_NAME="2nd-pipeline"))


# --- a failed job, answered at the wire as the service answers: ARM, run history, the artifact store

LISTING = ('<?xml version="1.0" encoding="utf-8"?><EnumerationResults '
           'ServiceEndpoint="https://wsstore.blob.core.windows.net/" ContainerName="azureml">'
           '<Prefix>ExperimentRun/dcid.{run}/</Prefix>'
           '<Blobs><Blob><Name>ExperimentRun/dcid.{run}/{file}</Name>'
           '<Properties><Content-Length>{size}</Content-Length><BlobType>BlockBlob</BlobType></Properties>'
           '<Metadata /></Blob></Blobs><NextMarker /></EnumerationResults>')
STORE = {"id": ARM + "/datastores/workspaceartifactstore", "name": "workspaceartifactstore",
         "properties": {"datastoreType": "AzureBlob", "accountName": "wsstore", "containerName": "azureml",
                        "endpoint": "core.windows.net", "protocol": "https", "isDefault": True,
                        "credentials": {"credentialsType": "AccountKey"}}}


def arm_job(name: str, kind: str, display_name: str, **properties) -> dict:
    return {"id": f"{ARM}/jobs/{name}", "name": name,
            "type": "Microsoft.MachineLearningServices/workspaces/jobs",
            "properties": {"jobType": kind, "status": "Failed", "experimentName": "california-housing",
                           "displayName": display_name, "inputs": {}, "outputs": {}, "properties": {},
                           "tags": {}, "services": {}, **properties}}


def artifact(wire, run: str, file: str, content: bytes) -> None:
    wire.answer("GET", rf"/azureml\?restype=container&comp=list&prefix=ExperimentRun%2Fdcid.{run}%2F", 200,
                LISTING.format(run=run, file=file, size=len(content)))
    wire.answer("GET", rf"/azureml/ExperimentRun/dcid.{run}/{file}", 200, content)


@pytest.fixture
def failed_job(offline):
    """Pipeline job `pj1`, failed in its preparation step, as the workspace reports it."""
    wire = offline
    wire.answer("GET", r"/workspaces/ws/jobs/pj1\?", 200,
                arm_job("pj1", "Pipeline", "california-housing-pipeline", jobs={}, settings={}))
    wire.answer("GET", r"/workspaces/ws/jobs/pj1_prep\?", 200, arm_job(
        "pj1_prep", "Command", "preparation", command="python steps/prepare_step.py",
        environmentId="azureml:batch-toolkit-env:1", computeId="cpu-cluster"))
    wire.answer("GET", r"/workspaces/ws\?", 200, {
        "id": ARM, "name": "ws", "location": "westeurope",
        "properties": {"discoveryUrl": "https://westeurope.api.azureml.ms/discovery",
                       "workspaceId": "11111111-1111-1111-1111-111111111111"}})
    wire.answer("GET", r"/discovery", 200, {service: "https://westeurope.api.azureml.ms" for service in (
        "api", "catalog", "experimentation", "history", "modelmanagement", "pipelines", "studio")})
    wire.answer("GET", r"/runs/pj1/children", 200, {"value": [
        {"runId": "pj1_prep", "displayName": "preparation", "status": "Failed", "parentRunId": "pj1",
         "properties": {}, "tags": {}}], "nextLink": None})
    wire.answer("GET", r"/runs/pj1/details\?", 200, {
        "runId": "pj1", "status": "Failed", "logFiles": {},
        "error": {"error": {"code": "UserError", "message": "step preparation failed"}}})
    wire.answer("POST", r"/rundata\?", 200,
                {"runMetadata": {"runId": "pj1", "status": "Failed", "outputs": {}}})
    wire.answer("GET", r"/datastores\?", 200, {"value": [STORE]})
    wire.answer("GET", r"/datastores/workspaceartifactstore\?", 200, STORE)
    wire.answer("POST", r"/listSecrets\?", 200, {"secretsType": "AccountKey", "key": "a2V5"})
    artifact(wire, "pj1", "logs/azureml/executionlogs.txt", b"child pj1_prep failed\n")
    artifact(wire, "pj1_prep", "user_logs/std_log.txt", b"FileNotFoundError: input folder\n")
    return wire


def test_logs_of_a_failed_job_download_every_log_and_name_the_failed_step(
        failed_job, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(cloud, "ROOT", tmp_path)
    assert cloud.main(["logs", "--run-id", "pj1"]) == 1
    out = capsys.readouterr().out
    assert "job pj1 Failed (failed steps: preparation)" in out
    target = tmp_path / "outputs" / "azure" / "pj1"
    assert (target / "artifacts" / "logs" / "azureml" / "executionlogs.txt").read_bytes() == \
        b"child pj1_prep failed\n"
    step_log = target / "steps" / "preparation" / "artifacts" / "user_logs" / "std_log.txt"
    assert step_log.read_bytes() == b"FileNotFoundError: input folder\n"
    assert failed_job.refused == []


def test_a_run_whose_stream_raises_still_downloads_and_reports(failed_job, monkeypatch, tmp_path, capsys):
    from azure.ai.ml.entities import PipelineJob

    monkeypatch.setattr(cloud, "ROOT", tmp_path)
    client_type = type(workspace_v2.connect(load_settings(env_file=None)).jobs)
    # The submission itself (code upload, environment, compute) is proven up to the wire above; here
    # the service accepts it as job pj1, and everything after runs the SDK's own code.
    monkeypatch.setattr(client_type, "create_or_update", lambda self, job, **kwargs: PipelineJob(name="pj1"))
    assert cloud.main(["run"]) == 1
    out = capsys.readouterr().out
    assert "job pj1 Failed (failed steps: preparation)" in out
    assert (tmp_path / "outputs" / "azure" / "pj1" / "steps" / "preparation").is_dir()
