"""The SDK v2 pipeline: the component's YAML loads back with load_component, the run job's with load_job, and
the parallel node maps every v1 setting."""
import pytest

from orchestration.cloud import cli as cloud
from orchestration.cloud.pipeline_v1 import ENTRY_SCRIPT, build_environment, build_steps, pipeline_plan
from orchestration.cloud.pipeline_v2 import build_pipeline_component, parallel_settings
from orchestration.settings import load_settings
from tests.orchestration.cloud.test_pipeline_v1 import CUSTOM, SECRETS, assert_no_secret


def plan_file(command: str, folder, monkeypatch, capsys):
    """`make <command> SDK=v2 DRY_RUN=1 PLAN_FILE=...` with custom settings, in this process (the v1 twin
    runs as a process); no secret in its output."""
    for name, value in {**CUSTOM, **SECRETS}.items():
        monkeypatch.setenv(name, str(value))
    plan = folder / f"{command}.yml"
    assert cloud.main(["--sdk", "v2", command, "--dry-run", "--plan-file", str(plan)]) == 0
    captured = capsys.readouterr()
    assert_no_secret(captured.out, captured.err, plan.read_text())
    return plan


@pytest.fixture
def component_file(tmp_path, monkeypatch, capsys):
    return plan_file("publish", tmp_path, monkeypatch, capsys)


@pytest.fixture
def job_file(tmp_path, monkeypatch, capsys):
    return plan_file("run", tmp_path, monkeypatch, capsys)


def test_the_publish_plan_loads_as_the_pipeline_component_equal_to_the_settings(component_file):
    from azure.ai.ml import load_component  # at use: every pytest-xdist worker collects this module

    job = load_component(component_file)
    kinds = {name: node.type for name, node in job.jobs.items()}
    assert kinds == {"preparation": "command", "extraction": "parallel", "training": "command"}
    node = job.jobs["extraction"]
    assert node.resources["instance_count"] == 3 and node.max_concurrency_per_instance == 4
    assert str(node.mini_batch_size) == "7"
    assert node.error_threshold == 3 and node.mini_batch_error_threshold == 2
    assert dict(node.retry_settings) == {"max_retries": 4, "timeout": 90}  # RUN_MAX_TRY 5 attempts
    assert node.logging_level == "DEBUG"
    assert node.task["entry_script"] == ENTRY_SCRIPT and node.task["code"].endswith("src")
    assert node.task["append_row_to"] == "${{outputs.extracted}}"
    assert node.task["program_arguments"] == "--allowed_failed_percent 12.5"
    assert node.task["environment"].startswith("my-env")
    assert "azureml:./" not in component_file.read_text()


def test_the_run_plan_loads_as_a_job_of_the_registered_component_on_datastore_uris(job_file):
    from azure.ai.ml import load_job  # at use: every pytest-xdist worker collects this module

    job = load_job(job_file)
    (node,) = job.jobs.values()
    assert (node.type, node.component) == ("pipeline", "california_housing_pipeline@latest")  # azureml: read
    assert job.compute.endswith("gpu-nodes") and job.experiment_name == "california-housing"
    assert job.inputs["raw"].path == "azureml://datastores/california_housing/paths/incoming"
    outputs_uri = "azureml://datastores/california_housing/paths/outputs/"
    assert job.outputs["extracted_rows"].path.startswith(outputs_uri)
    assert job.outputs["extracted_rows"].path == outputs_uri + "${{name}}/rows.txt"  # APPEND_ROW_FILE_NAME
    assert job.outputs["model"].path == outputs_uri + "${{name}}/training"
    assert "azureml:./" not in job_file.read_text()


def test_v1_and_v2_carry_the_same_settings_field_by_field():
    settings = load_settings(env_file=None, **CUSTOM)
    plan = pipeline_plan(settings)
    v1 = build_steps(plan, build_environment(plan))[1]._parallel_run_config
    v2 = build_pipeline_component(settings).jobs["extraction"]
    assert v2.resources.instance_count == v1.node_count
    assert v2.max_concurrency_per_instance == v1.process_count_per_node
    assert int(v2.mini_batch_size) == v1.mini_batch_size
    assert v2.error_threshold == v1.error_threshold
    assert v2.mini_batch_error_threshold == v1.allowed_failed_count
    assert v2.retry_settings.max_retries == v1.run_max_try - 1  # retries vs attempts
    assert v2.retry_settings.timeout == v1.run_invocation_timeout
    assert v2.logging_level == v1.logging_level
    assert v2.task.entry_script == v1.entry_script
    assert f"--allowed_failed_percent {v1.allowed_failed_percent:g}" == v2.task.program_arguments
    assert v2.task.append_row_to == "${{outputs.extracted}}" and v1.output_action == "append_row"


def test_summary_only_leaves_append_row_to_unset():
    settings = load_settings(env_file=None, OUTPUT_ACTION="summary_only")
    assert parallel_settings(settings)["append_row_to"] is None
    assert build_pipeline_component(settings).jobs["extraction"].task.append_row_to is None


def test_tabular_sizes_are_converted_as_the_sdk_does():
    job = build_pipeline_component(load_settings(env_file=None, MINI_BATCH_SIZE="10KB"))
    assert str(job.jobs["extraction"].mini_batch_size) == "10240"


def test_one_setting_switches_the_backend(monkeypatch, capsys):
    assert cloud.main(["publish", "--dry-run"]) == 0
    assert '"type": "ParallelRunStep"' in capsys.readouterr().out
    monkeypatch.setenv("AML_SDK", "v2")
    assert cloud.main(["publish", "--dry-run"]) == 0
    assert "type: parallel" in capsys.readouterr().out


def test_the_dry_run_shows_the_pushed_image_that_publish_would_use(capsys):
    assert cloud.main(["--sdk", "v2", "publish", "--dry-run", "--image",
                       "myregistry.azurecr.io/toolkit:abc123"]) == 0
    out = capsys.readouterr().out
    assert out.count("image: myregistry.azurecr.io/toolkit:abc123") >= 4  # every node and task
    assert "@latest" not in out
