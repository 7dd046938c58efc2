"""SDK v1 to the wire: `make provision|publish|run|logs|docker-push` through azureml-core's own code.

The workspace is a real Workspace object; the pipeline service is the SDK's own DryRunServiceCaller, which
records what is published and submitted; run history is answered in memory (offline_v1.py). The network
stays refused: a call nobody answered fails the test and names its URL.
"""
import json

import pytest

from orchestration.cloud import cli as cloud, workspace_v1
from orchestration.cloud.pipeline_v1 import BUILD_CONTEXT_FILES
from orchestration.commands import run_command
from orchestration.paths import ROOT
from orchestration.settings import load_settings
from tests.network import NetworkRefused
from tests.orchestration.cloud.fake_az import audience, fake_az
from tests.orchestration.cloud.offline_v1 import WORKSPACE

IMAGE = "myregistry.azurecr.io/azureml-batch-toolkit:abc123"
LISTING = ('<?xml version="1.0" encoding="utf-8"?><EnumerationResults '
           'ServiceEndpoint="https://acct.blob.core.windows.net/" ContainerName="azureml"><Blobs><Blob>'
           '<Name>{name}</Name><Properties><Content-Length>{size}</Content-Length>'
           '<BlobType>BlockBlob</BlobType></Properties><Metadata /></Blob></Blobs><NextMarker />'
           '</EnumerationResults>')
BLOB = r"^https://acct\.blob\.core\.windows\.net/azureml"


@pytest.fixture
def connected(aml, monkeypatch):
    """The cloud commands, connected to the offline workspace (connect() itself is tested below)."""
    monkeypatch.setattr(workspace_v1, "connect", lambda settings: aml.workspace)
    return aml


def published_nodes(aml) -> dict:
    (published_id,) = aml.caller._pipeline_entities
    graph = aml.graph(published_id)
    modules = aml.caller._module_entities
    return {modules[node.module_id].name: (node, modules[node.module_id]) for node in graph.module_nodes}


def test_publish_records_the_three_steps_with_their_settings_inputs_and_outputs(connected, capsys):
    assert cloud.main(["publish", "--image", IMAGE]) == 0
    assert "as the default of endpoint california-housing-endpoint" in capsys.readouterr().out
    nodes = published_nodes(connected)
    assert sorted(nodes) == ["extraction", "preparation", "training"]

    def interface(name):
        module = nodes[name][1].structured_interface
        return ([(i.name, i.data_store_mode) for i in module.inputs],
                [(o.name, o.data_store_mode) for o in module.outputs if not o.name.startswith("_")],
                [a.value for a in module.arguments])

    assert interface("preparation") == (
        [("raw_files", "mount")], [("prepared_files", "mount")],
        ["--source-dir", "raw_files", "--output", "DatasetOutputConfig:prepared_files"])
    inputs, outputs, arguments = interface("extraction")
    assert (inputs, outputs) == ([("prepared_files", "mount")], [("extracted_rows", "mount")])
    assert arguments[arguments.index("--scoring_module_name") + 1] == "steps/extract_entry.py"
    assert interface("training")[2] == ["--input", "extracted_rows", "--append-row-file-name",
                                        "extraction_output.txt", "--output", "outputs", "--register-model",
                                        "california-housing-linear-regression"]
    metadata = {p.name: p.value for p in nodes["extraction"][0].module_metadata_parameters}
    prs = json.loads(metadata["BatchInferencingMetaData"])
    assert {k: prs[k] for k in ("NodeCount", "ProcessCountPerNode", "MiniBatchSize", "ErrorThreshold",
                                "OutputAction", "RunInvocationTimeout", "RunMaxTry", "AllowedFailedCount",
                                "AllowedFailedPercent", "EnvironmentName", "ComputeName")} == {
        "NodeCount": 2, "ProcessCountPerNode": 2, "MiniBatchSize": 5, "ErrorThreshold": 10,
        "OutputAction": "append_row", "RunInvocationTimeout": 60, "RunMaxTry": 3, "AllowedFailedCount": -1,
        "AllowedFailedPercent": 100.0, "EnvironmentName": "batch-toolkit-env", "ComputeName": "cpu-cluster"}


def test_the_raw_files_are_a_mounted_datastore_folder_and_no_secret_is_in_the_graph(connected, monkeypatch):
    monkeypatch.setenv("AML_STORAGE_ACCOUNT_KEY", "KEY-sentinel-0123456789==")
    monkeypatch.setenv("INPUT_DIR", "incoming/2026")
    assert cloud.main(["publish", "--image", IMAGE]) == 0
    (source,) = connected.caller._datasource_entities.values()
    reference = source.data_location.data_reference.azure_blob_reference
    assert (reference.aml_data_store_name, reference.relative_path) == ("california_housing", "incoming/2026")
    recorded = json.dumps([vars(n) for n, _ in published_nodes(connected).values()], default=str)
    assert "KEY-sentinel" not in recorded and "--datastore" not in recorded


def test_partition_keys_publish_the_raw_files_as_a_partitioned_dataset_read_directly(connected, wire,
                                                                                     monkeypatch):
    monkeypatch.setenv("PARTITION_KEYS", "store")
    monkeypatch.setenv("PARTITION_FORMAT", "/{store}/{file_name}.txt")
    saved = []

    def save(request):  # the dataset service saves the definition it is sent, under an id
        saved.append(json.loads(request.body))
        return {**saved[-1], "id": "saved-1"}

    wire.answer("POST", r"/dataset/v1.0/.*/saveddatasets\?", 200, save)
    # ... and gives the SDK its RSLex form (the SDK refuses a dataset without one); the text is not read
    wire.answer("GET", r"/data/v1.0/.*/dataversion/unregistered-saved-1/versions/1", 200,
                {"legacyDataflow": "paths:\n  - pattern: raw/**\n"})
    assert cloud.main(["publish", "--image", IMAGE]) == 0
    nodes = published_nodes(connected)
    node, module = nodes["extraction"]
    inputs = [(i.name, i.data_store_mode) for i in module.structured_interface.inputs]
    assert inputs == [("partitioned_files", "direct"), ("_run_after_input_0", None)]  # after preparation
    arguments = [a.value for a in module.structured_interface.arguments]
    assert arguments[arguments.index("--partition_keys") + 1] == '["store"]'
    parameters = {p.name: p.value for p in node.module_metadata_parameters}
    assert json.loads(parameters["BatchInferencingMetaData"])["PartitionKeys"] == '["store"]'

    (definition,) = saved  # the SDK's own serialization of the dataset, at the wire
    dataflow = definition["dataflowJson"]
    assert "raw/**" in dataflow and "california_housing" in dataflow and "{store}" in dataflow
    graph = connected.graph(next(iter(connected.caller._pipeline_entities)))
    ids = {modules_name: n.id for modules_name, (n, _) in nodes.items()}
    assert any(e.source_output_port.node_id == ids["preparation"] and
               e.destination_input_port.node_id == ids["extraction"] for e in graph.edges)  # run_after


def test_the_snapshot_holds_the_code_only(connected):
    assert cloud.main(["publish", "--image", IMAGE]) == 0
    snapshots = list(connected.uploader.snapshots.values())
    assert snapshots and all(files == snapshots[0] for files in snapshots)  # one src/ for every step
    files = snapshots[0]
    assert {"steps/extract_entry.py", "steps/prepare_step.py", "steps/train_step.py"} <= set(files)
    assert all(f.endswith(".py") for f in files if f != ".amlignore"), files
    assert not [f for f in files if f.startswith((".venv", "data/", ".env")) or "egg-info" in f]


def test_publishing_again_makes_the_new_pipeline_the_endpoints_default(connected):
    assert cloud.main(["publish", "--image", IMAGE]) == 0
    assert cloud.main(["publish", "--image", IMAGE]) == 0
    endpoint = connected.caller._pipeline_endpoint_entities["california-housing-endpoint"]
    assert endpoint.default_version == "1" and len(endpoint.pipeline_version_list) == 2


def test_the_image_is_built_from_a_flat_context_holding_the_dockerfile_where_the_environment_names_it(
        connected, monkeypatch, wire):
    from orchestration.cloud.pipeline_v1 import build_environment, pipeline_plan

    ws = connected.workspace
    account = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/wsstore"
    monkeypatch.setattr(type(ws), "get_details", lambda self: {"storageAccount": account})
    monkeypatch.setattr(type(ws), "list_keys", lambda self: {"userStorageKey": "a2V5"})
    wire.answer("PUT", r"^https://wsstore\.blob\.core\.windows\.net/azureml\?restype=container", 201)
    wire.answer("PUT", r"^https://wsstore\.blob\.core\.windows\.net/azureml/", 201)
    plan = pipeline_plan(load_settings(env_file=None))
    environment = build_environment(plan, ws)  # as publish does
    context = environment.docker.build_context
    uploaded = {sent.url.split("?")[0].removeprefix(context.location): sent.body for sent in wire.sent
                if sent.method == "PUT" and "restype=container" not in sent.url}
    assert uploaded == {name: (ROOT / source).read_bytes() for name, source in BUILD_CONTEXT_FILES.items()}
    assert context.dockerfile_path == "Dockerfile" and context.dockerfile_path in uploaded
    assert context.location.startswith("https://wsstore.blob.core.windows.net/azureml/DockerBuildContext/")
    assert environment.python.user_managed_dependencies is True
    # the dry run's environment names the same content hash, so it describes this very upload
    offline = build_environment(plan).docker.build_context.location
    assert offline.split("/azureml/")[1] == context.location.split("/azureml/")[1]


def test_a_finished_run_downloads_its_logs_the_merged_rows_and_the_training_outputs(
        connected, monkeypatch, wire, tmp_path, capsys):
    from azureml.pipeline.core import PipelineRun

    monkeypatch.setattr(cloud, "ROOT", tmp_path)
    assert cloud.main(["publish", "--image", IMAGE]) == 0
    monkeypatch.setattr(PipelineRun, "wait_for_completion",
                        lambda self, **kwargs: connected.end_run(self.id))
    # The extraction's output, where the pipeline service says it is (DryRunServiceCaller: data_store/path).
    wire.answer("GET", r"^https://offline\.invalid/datastore/v1\.0/.*/datastores/data_store$", 200, {
        "name": "data_store", "dataStoreType": "AzureBlob", "hasBeenValidated": True, "tags": {},
        "azureStorageSection": {"accountName": "acct", "containerName": "azureml", "protocol": "https",
                                "endpoint": "core.windows.net", "credentialType": "AccountKey",
                                "accountKey": "a2V5"}})
    wire.answer("GET", BLOB + r"\?restype=container&comp=list&prefix=path", 200,
                LISTING.format(name="path/extraction_output.txt", size=10))
    wire.answer("GET", BLOB + r"/path/extraction_output\.txt", 200, b'{"id": 0}\n')
    # The training run's outputs/ folder, listed by the artifact service with a download URL per file.
    wire.answer("GET", r"/artifacts/prefix/contentinfo/ExperimentRun/dcid\.[-\w]+_training/outputs/", 200, {
        "value": [{"path": "outputs/metrics.json", "origin": "ExperimentRun", "container": "dcid.x",
                   "contentUri": "https://acct.blob.core.windows.net/azureml/metrics.json?sv=1&sig=S1G"}],
        "continuationToken": None})
    wire.answer("GET", BLOB + r"/metrics\.json\?", 200, b'{"r2": 0.5758}')
    assert cloud.main(["run"]) == 0
    (run_folder,) = (tmp_path / "outputs" / "azure").iterdir()
    assert f"exit 0: run {run_folder.name} Finished; results in {run_folder}" in capsys.readouterr().out
    assert (run_folder / "extraction" / "extraction_output.txt").read_bytes() == b'{"id": 0}\n'
    assert [p.name for p in (run_folder / "extraction").iterdir()] == ["extraction_output.txt"]
    assert (run_folder / "training" / "metrics.json").read_bytes() == b'{"r2": 0.5758}'
    steps = sorted(p.name for p in (run_folder / "logs").iterdir())
    assert steps == ["extraction", "preparation", "training"] and wire.refused == []
    (submitted,) = connected.caller._pipeline_run_entities.values()  # from the endpoint, as published
    assert submitted.id == run_folder.name and submitted.run_history_experiment_name == "california-housing"
    assert connected.child_listings == 1  # the step runs are listed once, for logs, results and verdict


def test_a_run_that_fails_early_still_downloads_its_logs_and_names_the_failed_step(
        connected, monkeypatch, tmp_path, capsys):
    from azureml.pipeline.core import PipelineRun

    monkeypatch.setattr(cloud, "ROOT", tmp_path)
    assert cloud.main(["publish", "--image", IMAGE]) == 0
    monkeypatch.setattr(PipelineRun, "wait_for_completion", lambda self, **kwargs: connected.end_run(
        self.id, failed_step="preparation"))
    assert cloud.main(["run"]) == 1
    out = capsys.readouterr().out
    assert "Failed (failed steps: preparation)" in out
    assert connected.child_listings == 1
    (run_folder,) = (tmp_path / "outputs" / "azure").iterdir()
    assert [p.name for p in (run_folder / "logs").iterdir()] == ["preparation"]
    assert any(p.is_file() for p in (run_folder / "logs" / "preparation").rglob("*"))
    assert not (run_folder / "extraction").exists() and not (run_folder / "training").exists()


def test_logs_of_a_past_run(connected, monkeypatch, tmp_path, capsys):
    from azureml.pipeline.core import PipelineRun

    monkeypatch.setattr(cloud, "ROOT", tmp_path)
    assert cloud.main(["publish", "--image", IMAGE]) == 0
    monkeypatch.setattr(PipelineRun, "wait_for_completion", lambda self, **kwargs: connected.end_run(
        self.id, failed_step="extraction"))
    assert cloud.main(["run"]) == 1
    (run_id,) = [p.name for p in (tmp_path / "outputs" / "azure").iterdir()]
    capsys.readouterr()
    assert cloud.main(["logs", "--run-id", run_id]) == 1  # the run failed: as `make run` said
    logs = tmp_path / "outputs" / "azure" / run_id / "logs"
    assert sorted(p.name for p in logs.iterdir()) == ["extraction", "preparation"]
    closing = f"exit 1: run {run_id} Failed (failed steps: extraction); read the logs in {logs}"
    assert closing in capsys.readouterr().out


def test_provision_registers_the_datastore_asking_the_service_to_create_its_container(
        connected, monkeypatch, wire, capsys):
    monkeypatch.setenv("AML_BLOB_DATASTORE_NAME", "fresh_store")  # not in the workspace yet
    monkeypatch.setenv("AML_STORAGE_ACCOUNT_NAME", "acct")
    monkeypatch.setenv("AML_STORAGE_ACCOUNT_KEY", "KEY-sentinel==")
    with pytest.raises(NetworkRefused):
        cloud.main(["provision"])
    (request,) = wire.refused  # the cluster exists; the registration is the one call
    assert request.startswith("POST https://offline.invalid/datastore/") and "/datastores?" in request
    assert "createIfNotExists=true" in request  # the SDK's default is false
    assert "KEY-sentinel" not in request + capsys.readouterr().err


def test_registry_prints_the_login_server_of_the_workspaces_registry(connected, monkeypatch, capsys):
    registry = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/wsacr01"
    monkeypatch.setattr(type(connected.workspace), "get_details",
                        lambda self: {"containerRegistry": registry})
    assert cloud.main(["registry"]) == 0
    assert capsys.readouterr().out == "wsacr01.azurecr.io\n"  # all it prints: make reads it


def test_a_workspace_without_a_registry_is_explained(connected, monkeypatch, capsys):
    monkeypatch.setattr(type(connected.workspace), "get_details", lambda self: {"name": "ws"})
    with pytest.raises(SystemExit) as exited:
        run_command(lambda: cloud.main(["registry"]))
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "no container registry yet" in err and "Traceback" not in err


def test_publish_before_provision_names_the_missing_cluster(connected, monkeypatch, capsys):
    monkeypatch.setenv("AML_COMPUTE_CLUSTER_NAME", "other-cluster")
    with pytest.raises(SystemExit) as exited:
        run_command(lambda: cloud.main(["publish", "--image", IMAGE]))
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "no compute cluster 'other-cluster'" in err and "make provision" in err and "Traceback" not in err


def test_an_invalid_graph_is_not_published(connected, monkeypatch):
    from azureml.pipeline.core import Pipeline

    monkeypatch.setattr(Pipeline, "validate", lambda self: ["[prep] MissingParamDef"])
    with pytest.raises(workspace_v1.PipelineInvalid, match="MissingParamDef"):
        cloud.main(["publish", "--image", IMAGE])
    assert connected.caller._pipeline_entities == {}


# --- authentication: each path built with what the lock installs, and used up to the wire


def test_an_az_login_user_reaches_the_workspace_lookup_with_an_arm_token(wire, tmp_path, monkeypatch):
    fake_az(tmp_path, monkeypatch)
    monkeypatch.setenv("AZUREML_CURRENT_CLOUD", "AzureCloud")  # no cloud-metadata lookup
    with pytest.raises(NetworkRefused):
        workspace_v1.connect(load_settings(env_file=None, **WORKSPACE))
    calls = (tmp_path / "az.log").read_text().splitlines()
    assert calls[0] == "account show --output none"
    assert calls[1:] == [
        "account get-access-token --output json --resource https://management.core.windows.net/"]
    (lookup,) = wire.sent
    assert lookup.url.startswith("https://management.azure.com/subscriptions")  # ARM, first listing them
    assert audience(lookup.authorization) == "https://management.core.windows.net/"  # ARM, as AAD names it


def test_an_az_login_user_gets_an_azure_ml_token_for_the_azure_ml_audience(tmp_path, monkeypatch):
    """azureml-core asks TokenAuthentication for each audience it calls: each gets its own token."""
    from azureml.core.authentication import Audience

    fake_az(tmp_path, monkeypatch)
    auth = workspace_v1.authentication(load_settings(env_file=None), workspace_v1.AZURE_CLI)
    tokens = {kind: auth.get_token(kind) for kind in (Audience.ARM, Audience.AZUREML, Audience.ARM)}
    assert {kind: audience(token) for kind, token in tokens.items()} == {
        Audience.ARM: "https://management.core.windows.net/", Audience.AZUREML: "https://ml.azure.com"}
    calls = (tmp_path / "az.log").read_text().splitlines()
    assert len(calls) == 2  # one `az` per audience; the ARM token is reused until it nears its expiry


def test_a_service_principal_reaches_the_token_endpoint(wire):
    settings = load_settings(env_file=None, AZURE_TENANT_ID="tenant", AZURE_CLIENT_ID="app",
                             AZURE_CLIENT_SECRET="CLIENT-sentinel", **WORKSPACE)
    with pytest.raises(Exception) as caught:
        workspace_v1.connect(settings)
    assert wire.refused and wire.refused[0].startswith("GET https://login.microsoftonline.com/tenant")
    assert "CLIENT-sentinel" not in str(caught.value) and "CLIENT-sentinel" not in " ".join(wire.refused)


def test_an_interactive_login_is_constructible_and_goes_to_the_login_service(wire, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # no token cache: a person would log in in a browser
    settings = load_settings(env_file=None, AZURE_TENANT_ID="tenant")
    with pytest.raises(Exception):
        workspace_v1.authentication(settings, workspace_v1.INTERACTIVE)
    assert wire.refused and wire.refused[0].startswith("GET https://login.microsoftonline.com/tenant")


# --- make provision: the compute cluster, created or compared


def test_provision_creates_a_missing_cluster_as_the_settings_say(connected, wire, monkeypatch, capsys):
    from tests.orchestration.cloud.offline_v1 import cluster_payload

    monkeypatch.setenv("AML_COMPUTE_CLUSTER_NAME", "new-cluster")
    monkeypatch.setenv("AML_COMPUTE_MAX_NODES", "6")
    monkeypatch.setenv("AML_COMPUTE_IDLE_TIME", "600")
    created = cluster_payload("new-cluster")
    # ARM accepts the cluster and reports the long-running operation; its status says it succeeded
    wire.answer("PUT", r"/computes/new-cluster\?", 201, lambda request: (201, created, {
        "Azure-AsyncOperation": "https://management.azure.com/operations/op-1?api-version=2020-02-02"}))
    wire.answer("GET", r"^https://management\.azure\.com/operations/op-1\?", 200, {"status": "Succeeded"})
    wire.answer("GET", r"/computes/new-cluster\?", 200, created)
    assert cloud.main(["provision"]) == 0
    assert "exit 0: compute new-cluster and datastore california_housing are ready" in capsys.readouterr().out
    (body,) = [json.loads(sent.body) for sent in wire.sent if sent.method == "PUT"]
    assert body["properties"]["computeType"] == "AmlCompute"
    assert body["properties"]["properties"]["vmSize"] == "STANDARD_D2_V2"
    assert body["properties"]["properties"]["scaleSettings"] == {
        "minNodeCount": 0, "maxNodeCount": 6, "nodeIdleTimeBeforeScaleDown": "PT600S"}
    assert wire.refused == []


def test_provision_names_each_difference_of_an_existing_cluster(connected, wire, monkeypatch, capsys):
    monkeypatch.setenv("AML_COMPUTE_MAX_NODES", "8")
    assert cloud.main(["provision"]) == 0
    err = capsys.readouterr().err
    assert "existing compute differs from the settings: max_nodes is 4, settings say 8" in err
    assert [sent for sent in wire.sent if sent.method == "PUT"] == []  # nothing is changed in place


@pytest.mark.parametrize("command", ["provision", "publish"])
def test_a_compute_of_another_kind_under_the_clusters_name_is_one_clear_line(
        connected, wire, monkeypatch, capsys, command):
    connected.computes[:] = [{  # a compute instance, as ARM lists one
        "name": "cpu-cluster", "location": "westeurope", "id": "/computes/cpu-cluster", "tags": None,
        "properties": {"computeType": "ComputeInstance", "isAttachedCompute": False, "description": None,
                       "provisioningState": "Succeeded", "provisioningErrors": None, "resourceId": None,
                       "createdOn": "2026-12-01T10:00:00Z", "modifiedOn": "2026-12-01T10:00:00Z",
                       "properties": {"vmSize": "STANDARD_DS3_V2", "sshSettings": None, "errors": None,
                                      "subnet": None, "createdBy": {"userName": "someone"},
                                      "state": "Running"}}}]
    with pytest.raises(SystemExit) as exited:
        run_command(lambda: cloud.main([command, "--image", IMAGE] if command == "publish" else [command]))
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "AML_COMPUTE_CLUSTER_NAME: 'cpu-cluster' in workspace ws is a ComputeInstance, not an " \
           "AmlCompute cluster" in err and "Traceback" not in err
    assert [sent for sent in wire.sent if sent.method == "PUT"] == []
