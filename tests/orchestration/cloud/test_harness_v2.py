"""SDK v2 to the wire: `make publish|run|logs SDK=v2` run azure-ai-ml's own code with the network refused.

MLClient gets a fake token credential (the only seam); everything else is the SDK's own validation
(schemas, component names, input types, bindings), request building and uploads. The workspace's services
answer at the wire as they do (offline_v2.py): what publish registers is what run finds.
"""
import json
import re
from urllib.parse import urlsplit

import pytest
import yaml

from orchestration.cloud import cli as cloud, workspace_v2
from orchestration.cloud.pipeline_v1 import BUILD_CONTEXT_FILES, SOURCE_DIRECTORY
from orchestration.cloud.pipeline_v2 import build_pipeline_component, component_name
from orchestration.commands import run_command
from orchestration.paths import ROOT
from orchestration.settings import SettingsError, load_settings
from tests.network import NetworkRefused, Sent
from tests.orchestration.cloud.fake_az import audience
from tests.orchestration.cloud.offline_v2 import ARM, ARM_PATH, BLOBS, WORKSPACE, Workspace, serve


@pytest.fixture
def workspace(offline) -> Workspace:
    """Workspace `ws` after `make provision`: its compute cluster and datastores, nothing published."""
    service = Workspace()
    service.add_cluster("cpu-cluster")
    serve(offline, service)
    return service


def first_call(wire) -> str:
    method, url = wire.refused[0].split(" ", 1)
    return f"{method} {url.removeprefix(ARM).split('?')[0]}"


def dry_run(tmp_path, command: str) -> dict:
    """The dry run's plan (`make <command> SDK=v2 DRY_RUN=1 PLAN_FILE=...`), as a document."""
    plan = tmp_path / f"{command}.yml"
    assert cloud.main([command, "--dry-run", "--plan-file", str(plan)]) == 0
    return yaml.safe_load(plan.read_text())


def put_json(wire, url_pattern: str) -> list[dict]:
    return [json.loads(body) for body in wire.bodies("PUT", url_pattern)]


def submissions(wire) -> list[Sent]:
    """The pipeline jobs submitted to ARM (the blob store's paths may hold `/jobs/` too: src's code)."""
    return [sent for sent in wire.sent if sent.method == "PUT" and sent.url.startswith(ARM + "/jobs/")]


def test_the_pipeline_component_passes_the_sdks_own_validation_offline(offline):
    client = workspace_v2.connect(load_settings(env_file=None))
    component = build_pipeline_component(load_settings(env_file=None))
    result = client.components.validate(component)  # local checks only (remote validation is opt-in)
    assert result.passed, result.error_messages
    assert component.name == "california_housing_pipeline"
    assert component.inputs["raw"].type == "uri_folder"  # typed: "Parameter type unknown" before
    assert offline.refused == []


def test_publish_uploads_the_flat_build_context_and_builds_the_environment_from_it(workspace, offline):
    assert cloud.main(["publish"]) == 0
    (environment,) = put_json(offline, r"/environments/batch-toolkit-env/versions/1\?")
    build = environment["properties"]["build"]
    assert build["dockerfilePath"] == "Dockerfile"
    context = build["contextUri"].removeprefix(BLOBS.rstrip("/"))  # /azureml/LocalUpload/<hash>/<folder>/
    assert re.fullmatch(r"/azureml/LocalUpload/[0-9a-f]{32,64}/build-context/", context), context
    uploaded = {path.removeprefix(context): data for path, data in workspace.blobs.items()
                if path.startswith(context)}
    assert uploaded == {name: (ROOT / source).read_bytes() for name, source in BUILD_CONTEXT_FILES.items()}
    assert offline.refused == []


def test_publish_uploads_the_code_and_registers_the_plans_component_on_the_built_environment(
        workspace, offline, tmp_path, capsys):
    plan = dry_run(tmp_path, "publish")["jobs"]
    assert cloud.main(["publish"]) == 0
    out, err = capsys.readouterr()
    assert "exit 0: registered pipeline component california_housing_pipeline:1;" in out
    assert "SAS-sentinel" not in out + err and "a2V5" not in out + err  # the upload's SAS, the account key
    (code,) = put_json(offline, r"/codes/[^/]+/versions/1\?")  # the code, uploaded once for the three steps
    (code_id,) = [urlsplit(s.url).path for s in offline.sent if s.method == "PUT" and "/codes/" in s.url]
    folder = code["properties"]["codeUri"].removeprefix(BLOBS.rstrip("/"))
    entry = SOURCE_DIRECTORY / "steps" / "extract_entry.py"
    assert workspace.blobs[f"{folder}/steps/extract_entry.py"] == entry.read_bytes()
    assert not [path for path in workspace.blobs if path.startswith(folder) and "__pycache__" in path]

    (registered,) = put_json(offline, r"/components/california_housing_pipeline/versions/1\?")
    nodes = registered["properties"]["componentSpec"]["jobs"]
    assert sorted(nodes) == sorted(plan) == ["extraction", "preparation", "training"]
    steps = {spec["name"]: spec for spec in (
        body["properties"]["componentSpec"] for body in put_json(offline, r"/components/azureml_anonymous/"))}
    environment = f"{ARM_PATH}/environments/batch-toolkit-env/versions/1"  # pinned: the version just built
    for name, node in nodes.items():
        assert node["componentId"].startswith(f"{ARM_PATH}/components/azureml_anonymous/versions/")
        step, planned = steps[name], plan[name]["component"]
        task, planned_task = step.get("task", step), planned.get("task", planned)
        assert (task["environment"], task["code"]) == ("azureml:" + environment, "azureml:" + code_id)
        assert planned_task["environment"] == "azureml:batch-toolkit-env@latest"  # the plan cannot pin it
        assert step.get("command") == planned.get("command")
        assert (step["inputs"], step["outputs"]) == (planned["inputs"], planned["outputs"])
    modes = {name: ({key: i["mode"] for key, i in steps[name]["inputs"].items()},
                    {key: o["mode"] for key, o in steps[name]["outputs"].items()}) for name in steps}
    assert modes == {"preparation": ({"raw": "ro_mount"}, {"prepared": "rw_mount"}),
                     "extraction": ({"prepared": "ro_mount"}, {"extracted": "rw_mount"}),
                     "training": ({"rows": "ro_mount"}, {"model_dir": "rw_mount"})}
    parallel, planned = steps["extraction"], plan["extraction"]["component"]
    for key in ("entry_script", "program_arguments", "append_row_to", "type"):
        assert parallel["task"][key] == planned["task"][key], key
    for key in ("mini_batch_size", "resources", "retry_settings", "max_concurrency_per_instance",
                "error_threshold", "mini_batch_error_threshold", "logging_level", "input_data"):
        assert parallel[key] == planned[key], key
    assert (parallel["mini_batch_size"], parallel["resources"], parallel["retry_settings"]) == (
        "5", {"instance_count": 2}, {"timeout": 60, "max_retries": 2})
    assert offline.refused == []


def test_publish_with_an_image_registers_the_component_on_that_image(workspace, offline):
    assert cloud.main(["publish", "--image", "myregistry.azurecr.io/toolkit:abc123"]) == 0
    assert put_json(offline, r"/environments/batch-toolkit-env/") == []  # nothing built
    anonymous = put_json(offline, r"/environments/CliV2AnonymousEnvironment/versions/")
    assert {body["properties"]["image"] for body in anonymous} == {"myregistry.azurecr.io/toolkit:abc123"}
    (registered,) = put_json(offline, r"/components/california_housing_pipeline/versions/1\?")
    assert registered["properties"]["componentSpec"]["jobs"]["extraction"]["task"]["environment"].startswith(
        f"azureml:{ARM_PATH}/environments/CliV2AnonymousEnvironment/versions/")
    assert offline.refused == []


def test_publishing_again_registers_the_next_version_and_uploads_nothing_unchanged(workspace, offline,
                                                                                   capsys):
    assert cloud.main(["publish"]) == 0
    uploads = len(offline.bodies("PUT", rf"^{re.escape(BLOBS)}"))
    assert cloud.main(["publish"]) == 0
    assert "registered pipeline component california_housing_pipeline:2;" in capsys.readouterr().out
    # the same build context is found under its hash: the same environment version, no image rebuilt
    assert len(put_json(offline, r"/environments/batch-toolkit-env/versions/1\?")) == 2
    assert put_json(offline, r"/environments/batch-toolkit-env/versions/2\?") == []
    assert len(offline.bodies("PUT", rf"^{re.escape(BLOBS)}")) == uploads  # same context, same code


@pytest.mark.parametrize("listing", ["empty", "404"])
def test_run_before_publish_says_what_to_run_first(workspace, offline, capsys, listing):
    if listing == "404":  # however the service answers the listing of a name it has never seen
        offline.answer("GET", r"/components/california_housing_pipeline/versions\?", 404,
                       {"error": {"code": "UserError", "message": "Not found"}})
    with pytest.raises(SystemExit) as exited:
        run_command(lambda: cloud.main(["run"]))
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "no pipeline component 'california_housing_pipeline' in workspace ws; run `make publish " \
           "SDK=v2` first" in err and "Traceback" not in err
    assert offline.bodies("PUT", "/jobs/") == []


def test_run_submits_the_registered_component_with_the_plans_inputs_outputs_and_compute(
        workspace, offline, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(cloud, "ROOT", tmp_path)
    plan = dry_run(tmp_path, "run")
    assert cloud.main(["publish"]) == 0
    assert cloud.main(["publish"]) == 0  # version 2 is the newest: the one that runs
    assert cloud.main(["run"]) == 0
    (submission,) = submissions(offline)
    job_name = urlsplit(submission.url).path.rsplit("/", 1)[1]
    submitted = json.loads(submission.body)["properties"]
    assert submitted["jobType"] == "Pipeline"
    assert submitted["computeId"] == f"{ARM_PATH}/computes/cpu-cluster" == \
        f"{ARM_PATH}/computes/{plan['compute'].removeprefix('azureml:')}"
    assert submitted["experimentName"] == plan["experiment_name"] == "california-housing"
    raw = submitted["inputs"]["raw"]
    assert (raw["uri"], raw["mode"], raw["jobInputType"]) == (
        plan["inputs"]["raw"]["path"], "ReadOnlyMount", "uri_folder")
    assert raw["uri"] == "azureml://datastores/california_housing/paths/raw"  # the settings' defaults
    outputs = submitted["outputs"]
    assert {key: (output["uri"], output["jobOutputType"]) for key, output in outputs.items()} == {
        key: (output["path"], output["type"]) for key, output in plan["outputs"].items()}
    (node,) = submitted["jobs"].values()
    assert node["componentId"] == f"{ARM_PATH}/components/california_housing_pipeline/versions/2"
    assert plan["jobs"][component_name(load_settings(env_file=None))]["component"] == \
        "azureml:california_housing_pipeline@latest"
    out = capsys.readouterr().out
    assert f"exit 0: job {job_name} Completed; results in {tmp_path / 'outputs' / 'azure' / job_name}" in out
    assert offline.refused == []


def test_run_with_an_image_is_refused_the_image_is_chosen_at_publish(offline, capsys):
    with pytest.raises(SystemExit) as exited:
        run_command(lambda: cloud.main(["run", "--image", "myregistry.azurecr.io/toolkit:abc123"]))
    assert exited.value.code == 2
    assert "IMAGE: run runs what `make publish` published, in the image it was published with" in \
        capsys.readouterr().err
    assert offline.sent == []


def test_every_request_carries_the_token_of_its_audience_and_storage_none(
        workspace, offline, monkeypatch, tmp_path):
    """azure-ai-ml sends ARM's audience to ARM and to the workspace's own services (run history), and
    Azure ML's beside it when it submits a pipeline job (the SDK checks that token's audience); service
    discovery is anonymous, and storage is reached by account key or SAS only."""
    monkeypatch.setattr(cloud, "ROOT", tmp_path)
    assert cloud.main(["publish"]) == 0
    assert cloud.main(["run"]) == 0
    tokens: dict[str, set[str]] = {}
    for sent in offline.sent:
        host, path = urlsplit(sent.url).hostname, urlsplit(sent.url).path
        kind = audience(sent.authorization) if sent.authorization.startswith("Bearer ") else \
            sent.authorization.split(" ")[0]
        tokens.setdefault("discovery" if path == "/discovery" else host, set()).add(kind)
    assert tokens.pop("management.azure.com") == {"https://management.azure.com"}
    assert tokens.pop("westeurope.api.azureml.ms") == {"https://management.azure.com"}
    assert tokens.pop("discovery") == {""}
    assert tokens.pop("wsstore.blob.core.windows.net") <= {"", "SharedKey"}  # a SAS is in the URL
    assert tokens == {}
    # ... and a pipeline job's submission carries the user's Azure ML token too, in its own header
    (submission,) = submissions(offline)
    assert audience(submission.headers["x-azureml-token"]) == "https://ml.azure.com"
    assert [sent.url for sent in offline.sent if "x-azureml-token" in sent.headers] == [submission.url]
    assert set(offline.credential.scopes) == {("https://management.azure.com/.default",),
                                              ("https://ml.azure.com/.default",)}


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
    assert build_pipeline_component(settings)._validate().passed


def test_a_pipeline_name_that_cannot_be_a_component_name_is_a_setting_error():
    with pytest.raises(SettingsError, match="PIPELINE_NAME: expected a letter first"):
        component_name(load_settings(env_file=None, PIPELINE_NAME="2nd-pipeline"))


# --- a failed job: ARM, run history and the artifact store report it as the service does


def test_logs_of_a_failed_job_download_every_log_and_name_the_failed_step(
        workspace, offline, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(cloud, "ROOT", tmp_path)
    workspace.add_failed_job("pj1", "preparation")
    assert cloud.main(["logs", "--run-id", "pj1"]) == 1
    out = capsys.readouterr().out
    assert "job pj1 Failed (failed steps: preparation)" in out
    target = tmp_path / "outputs" / "azure" / "pj1"
    assert (target / "artifacts" / "logs" / "azureml" / "executionlogs.txt").read_bytes() == \
        b"child pj1_preparation failed\n"
    step_log = target / "steps" / "preparation" / "artifacts" / "user_logs" / "std_log.txt"
    assert step_log.read_bytes() == b"preparation: FileNotFoundError: input folder\n"
    assert offline.refused == []


def test_a_failed_run_downloads_its_logs_and_names_the_failed_step(
        workspace, offline, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(cloud, "ROOT", tmp_path)
    assert cloud.main(["publish"]) == 0
    workspace.failed_step = "preparation"  # how the service will end the job
    assert cloud.main(["run"]) == 1  # stream() raises for a failed job; the run still downloads
    out = capsys.readouterr().out
    (job,) = (tmp_path / "outputs" / "azure").iterdir()
    assert f"exit 1: job {job.name} Failed (failed steps: preparation); read the logs in {job}" in out
    assert (job / "steps" / "preparation" / "artifacts" / "user_logs" / "std_log.txt").read_bytes() == \
        b"preparation: FileNotFoundError: input folder\n"
    assert offline.refused == []
