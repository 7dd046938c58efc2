"""SDK v2 to the wire: `make publish|run|logs SDK=v2` run azure-ai-ml's own code with the network refused.

MLClient gets a fake token credential (the only seam); everything else is the SDK's own validation
(schemas, component names, input types, bindings) and request building. Each command must get past all
local checks and fail only at its first HTTP call — which the test names.
"""
import time

import pytest
from azure.core.credentials import AccessToken

from orchestration.cloud import __main__ as cloud, workspace_v2
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
    monkeypatch.setattr(workspace_v2, "credential", FakeCredential)
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
    assert "error: run failed:" in capsys.readouterr().err
    assert first_call(offline) == "GET /computes/cpu-cluster"


def test_logs_asks_for_the_named_job(offline):
    with pytest.raises(NetworkRefused):
        cloud.main(["logs", "--run-id", "happy_job_42"])
    assert first_call(offline) == "GET /jobs/happy_job_42"


@pytest.mark.parametrize("pipeline_name, expected", [
    ("california-housing-pipeline", "california_housing_pipeline"), ("My.Pipeline-2", "my_pipeline_2")])
def test_pipeline_names_become_valid_component_names(pipeline_name, expected):
    settings = load_settings(env_file=None, PIPELINE_NAME=pipeline_name)
    assert component_name(settings) == expected
    assert build_pipeline_job(settings).component._validate().passed


def test_a_pipeline_name_that_cannot_be_a_component_name_is_a_setting_error():
    with pytest.raises(SettingsError, match="PIPELINE_NAME: expected a letter first"):
        component_name(load_settings(env_file=None, PIPELINE_NAME="2nd-pipeline"))
