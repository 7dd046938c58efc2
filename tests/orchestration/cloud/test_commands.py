"""The command line of the Azure side: one line for what the service said, exit 2 for a bad argument."""
import json

import pytest

from orchestration.cloud.cli import is_service_error, service_message
from tests.conftest import invoke, run_module


def test_what_azureml_core_says_is_its_message_not_its_class_name():
    from azureml.exceptions import WorkspaceException

    assert service_message(WorkspaceException("Workspace not found: ws")) == "Workspace not found: ws"


def test_what_azure_ai_ml_says_is_the_messages_of_its_json_report():
    from azure.ai.ml.exceptions import MlException

    errors = [{"message": "compute cpu-cluster not found", "path": "compute"}]
    report = json.dumps({"result": "Failed", "errors": errors}, indent=2)
    assert service_message(MlException(message=report, no_personal_data_message="x")) == \
        "compute cpu-cluster not found"


def test_a_secret_in_a_service_message_is_masked():
    from azure.core.exceptions import HttpResponseError

    error = HttpResponseError("denied for https://a.blob.core.windows.net/c?sv=1&sig=S3CRET")
    assert is_service_error(error) and "S3CRET" not in service_message(error)
    assert not is_service_error(KeyError("a bug"))  # a bug keeps its traceback


@pytest.mark.parametrize("plan_file", ["missing-folder/plan.json", "."])
def test_a_plan_file_that_cannot_be_written_is_a_usage_error(tmp_path, plan_file):
    result = invoke("orchestration.cloud.cli", "publish", "--dry-run", "--plan-file", plan_file, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "PLAN_FILE: expected a file in an existing folder" in result.stderr


def test_provision_dry_run_says_what_a_real_provision_still_needs(tmp_path):
    # the whole command, as make starts it
    result = run_module("orchestration.cloud", "provision", "--dry-run", cwd=tmp_path, SUBSCRIPTION_ID="s")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["would_create_if_missing"]["datastore"]["create_if_not_exists"] is True
    assert ("a real provision also needs RESOURCE_GROUP, WORKSPACE_NAME, AML_STORAGE_ACCOUNT_NAME, "
            "AML_STORAGE_ACCOUNT_KEY") in result.stderr
