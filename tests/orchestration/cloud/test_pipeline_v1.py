"""The pipeline built offline as real SDK objects, checked against the settings."""
import json
import re

import pytest

from orchestration.cloud.pipeline_v1 import (
    ENTRY_SCRIPT, MODEL_NAME, SOURCE_DIRECTORY, build_environment, build_steps, check_for_azure,
    pipeline_plan,
)
from orchestration.settings import SettingsError, load_settings
from tests.conftest import invoke

CUSTOM = dict(MINI_BATCH_SIZE="7", ERROR_THRESHOLD=3, ALLOWED_FAILED_COUNT=2, ALLOWED_FAILED_PERCENT=12.5,
              NODE_COUNT=3, PROCESS_COUNT_PER_NODE=4, RUN_INVOCATION_TIMEOUT=90, RUN_MAX_TRY=5,
              OUTPUT_ACTION="append_row", APPEND_ROW_FILE_NAME="rows.txt", LOGGING_LEVEL="DEBUG",
              AML_COMPUTE_CLUSTER_NAME="gpu-nodes", AML_ENV_NAME="my-env", INPUT_DIR="incoming")


@pytest.fixture(scope="module")
def built():
    settings = load_settings(env_file=None, **CUSTOM)
    plan = pipeline_plan(settings)
    return settings, plan, build_steps(plan, build_environment(plan))


def test_parallel_run_config_equals_the_settings(built):
    settings, _, (_, extract, _) = built
    config = extract._parallel_run_config
    assert (config.mini_batch_size, config.error_threshold, config.allowed_failed_count) == (7, 3, 2)
    assert (config.allowed_failed_percent, config.node_count, config.process_count_per_node) == (12.5, 3, 4)
    assert (config.run_invocation_timeout, config.run_max_try) == (90, 5)
    assert (config.output_action, config.append_row_file_name, config.logging_level) == (
        "append_row", "rows.txt", "DEBUG")
    assert config.entry_script == ENTRY_SCRIPT and config.compute_target == "gpu-nodes"
    assert config.environment.name == "my-env" and config.environment.python.user_managed_dependencies
    assert (SOURCE_DIRECTORY / ENTRY_SCRIPT).is_file()


def test_the_driver_command_line_the_sdk_generates_carries_the_settings(built):
    _, _, (_, extract, _) = built
    argv = [str(a) for a in extract._arguments]
    pairs = dict(zip(argv, argv[1:]))
    assert pairs["--mini_batch_size"] == "7" and pairs["--error_threshold"] == "3"
    assert pairs["--run_max_try"] == "5" and pairs["--run_invocation_timeout"] == "90"
    assert pairs["--append_row_file_name"] == "rows.txt" and pairs["--process_count_per_node"] == "4"
    assert pairs["--allowed_failed_percent"] == "12.5" and pairs["--input_fds_0"] == "prepared_files"


def test_steps_scripts_and_arguments(built):
    _, plan, (prepare, extract, train) = built
    assert [s.name for s in (prepare, extract, train)] == ["preparation", "extraction", "training"]
    prepare_args = [str(a) for a in prepare._arguments]
    assert prepare_args[0] == "--source-dir" and "raw_files" in prepare_args[1]  # the mounted folder
    (raw,) = plan["steps"][0]["inputs"]
    assert (raw["datastore"], raw["path_on_datastore"]) == ("california_housing", "incoming")
    assert raw["mode"] == "mount"
    train_args = [str(a) for a in train._arguments]
    assert train_args[2:] == ["--append-row-file-name", "rows.txt", "--output", "outputs",
                              "--register-model", MODEL_NAME]
    for step in plan["steps"]:
        if step["type"] == "PythonScriptStep":
            assert (SOURCE_DIRECTORY / step["script_name"]).is_file()


@pytest.mark.parametrize("values, variable", [
    ({"NODE_COUNT": 5, "AML_COMPUTE_MAX_NODES": 4}, "NODE_COUNT"),
    ({"AML_COMPUTE_CLUSTER_NAME": "bad_name!"}, "AML_COMPUTE_CLUSTER_NAME"),
    ({"AML_BLOB_CONTAINER_NAME": "Upper_Case"}, "AML_BLOB_CONTAINER_NAME"),
    ({"AML_BLOB_DATASTORE_NAME": "has-hyphen"}, "AML_BLOB_DATASTORE_NAME"),
    ({"AML_STORAGE_ACCOUNT_NAME": "Not-Valid"}, "AML_STORAGE_ACCOUNT_NAME"),
    ({"INPUT_DIR": "../escape"}, "INPUT_DIR"),
])
def test_values_azure_would_refuse_are_rejected_first(values, variable):
    with pytest.raises(SettingsError) as caught:
        check_for_azure(load_settings(env_file=None, **values))
    assert [p.split(":")[0] for p in caught.value.problems] == [variable]


def test_arguments_reserved_by_parallel_run_step_are_rejected():
    with pytest.raises(SettingsError, match="--error_threshold=5: reserved by ParallelRunStep"):
        check_for_azure(load_settings(env_file=None), ("--error_threshold=5",))


SECRETS = {"AML_STORAGE_ACCOUNT_KEY": "KEY-sentinel-0123456789==",
           "AZURE_CLIENT_SECRET": "CLIENT-sentinel-42",
           "AZURE_STORAGE_CONNECTION_STRING": "AccountKey=CONN-sentinel-99;", "AZURE_CLIENT_ID": "app",
           "AZURE_TENANT_ID": "tenant", "AML_STORAGE_ACCOUNT_NAME": "myaccount"}


def assert_no_secret(*texts):
    for text in texts:
        for secret in ("KEY-sentinel", "CLIENT-sentinel", "CONN-sentinel"):
            assert secret not in text


def test_publish_dry_run_writes_a_plan_equal_to_the_settings_without_secrets(tmp_path):
    values = {k: str(v) for k, v in CUSTOM.items()}
    result = invoke("orchestration.cloud.cli", "publish", "--dry-run", "--plan-file", "plan.json",
                    cwd=tmp_path, **values, **SECRETS)
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "plan.json").read_text()
    assert_no_secret(text, result.stdout, result.stderr)
    plan = json.loads(text)
    (prs,) = [s for s in plan["steps"] if s["type"] == "ParallelRunStep"]
    assert prs["parallel_run_config"] == {
        "environment": "my-env", "entry_script": ENTRY_SCRIPT, "source_directory": "src",
        "compute_target": "gpu-nodes", "mini_batch_size": "7", "error_threshold": 3,
        "allowed_failed_count": 2, "allowed_failed_percent": 12.5, "output_action": "append_row",
        "append_row_file_name": "rows.txt", "node_count": 3, "process_count_per_node": 4,
        "run_invocation_timeout": 90, "run_max_try": 5, "logging_level": "DEBUG", "partition_keys": None,
    }
    assert plan["environment"]["dockerfile_path"] == "Dockerfile"  # in the flat context publish uploads
    assert plan["environment"]["build_context"] == {
        "Dockerfile": "docker/Dockerfile", "pyproject.toml": "pyproject.toml", "uv.lock": "uv.lock"}
    assert [s["name"] for s in plan["steps"]] == ["preparation", "extraction", "training"]


def test_provision_dry_run_shows_what_it_would_create_without_secrets(tmp_path):
    result = invoke("orchestration.cloud.cli", "provision", "--dry-run", cwd=tmp_path,
                    AML_COMPUTE_VM_SIZE="STANDARD_F4S_V2", AML_COMPUTE_MAX_NODES="6", **SECRETS)
    assert result.returncode == 0, result.stderr
    assert_no_secret(result.stdout, result.stderr)
    plan = json.loads(result.stdout)["would_create_if_missing"]
    assert plan["compute"]["vm_size"] == "STANDARD_F4S_V2" and plan["compute"]["max_nodes"] == 6
    assert plan["datastore"]["account_name"] == "myaccount" and plan["datastore"]["account_key"] == "<hidden>"
    # the workspace names are unset here: warned about, before the command's closing line
    lines = result.stderr.strip().splitlines()
    assert "a real provision also needs SUBSCRIPTION_ID" in lines[-2]
    assert lines[-1] == "exit 0: dry run: what provision would create above; nothing was sent to Azure"


def test_a_bad_setting_stops_publish_with_exit_2_before_any_network_call(tmp_path):
    result = invoke("orchestration.cloud.cli", "publish", "--dry-run", cwd=tmp_path, NODE_COUNT="9",
                    AML_COMPUTE_MAX_NODES="4", **SECRETS)
    assert result.returncode == 2 and "NODE_COUNT: expected at most AML_COMPUTE_MAX_NODES" in result.stderr
    assert "Traceback" not in result.stderr
    assert_no_secret(result.stderr)


def test_the_environment_is_built_from_the_projects_flat_build_context_as_publish_builds_it(built, tmp_path):
    from orchestration.cloud.pipeline_v1 import ROOT, stage_build_context

    _, plan, (_, extract, _) = built
    environment = extract._parallel_run_config.environment
    context = environment.docker.build_context  # Environment.from_docker_build_context, as online
    assert (context.location_type.value, context.dockerfile_path) == ("storageAccount", "Dockerfile")
    assert re.search(r"/azureml/DockerBuildContext/[0-9a-f]{32}/$", context.location), context.location
    assert environment.docker.base_image is None and environment.docker.base_dockerfile is None
    assert environment.python.user_managed_dependencies is True
    staged = stage_build_context(tmp_path)  # flat: what the Dockerfile's COPY lines name, nothing more
    assert {p.relative_to(staged).as_posix(): p.read_bytes() for p in staged.rglob("*") if p.is_file()} == {
        "Dockerfile": (ROOT / "docker" / "Dockerfile").read_bytes(),
        "pyproject.toml": (ROOT / "pyproject.toml").read_bytes(), "uv.lock": (ROOT / "uv.lock").read_bytes()}


@pytest.mark.parametrize("values, message", [
    ({"PARTITION_KEYS": "store"}, "PARTITION_FORMAT: needed with PARTITION_KEYS"),
    ({"PARTITION_KEYS": "store,brand", "PARTITION_FORMAT": "{store}/{file_name}.txt"},
     "PARTITION_KEYS: 'brand' is not a key of PARTITION_FORMAT"),
])
def test_partition_keys_azure_would_refuse_are_named_before_publishing(values, message):
    with pytest.raises(SettingsError, match=message):
        check_for_azure(load_settings(env_file=None, **values))


def test_partition_keys_plan_a_partitioned_dataset_read_directly_after_the_preparation():
    settings = load_settings(env_file=None, PARTITION_KEYS="store",
                             PARTITION_FORMAT="{store}/{file_name}.txt", INPUT_DIR="incoming/")
    extract = pipeline_plan(settings)["steps"][1]
    assert extract["inputs"] == [{"input": "partitioned_files", "dataset": "File.from_files",
                                  "datastore": "california_housing", "path_on_datastore": "incoming/**",
                                  "partition_format": "{store}/{file_name}.txt", "mode": "direct"}]
    assert extract["run_after"] == ["preparation"]
    config = extract["parallel_run_config"]
    assert config["partition_keys"] == ["store"] and config["mini_batch_size"] is None
    steps = build_steps(pipeline_plan(settings), build_environment(pipeline_plan(settings)))  # offline
    assert [type(s).__name__ for s in steps] == ["PythonScriptStep", "ParallelRunStep", "PythonScriptStep"]
