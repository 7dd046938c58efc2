"""Azure ML SDK v1, offline: a real Workspace, the SDK's own DryRunServiceCaller, run history answered in
memory. Each replacement sits where the SDK calls its service (a REST client), never above it, so the
toolkit's calls and the SDK's graph building, validation, publishing and submission run unchanged.
"""
from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
# The settings that name this workspace
WORKSPACE = dict(SUBSCRIPTION_ID=SUBSCRIPTION, RESOURCE_GROUP="rg", WORKSPACE_NAME="ws")
NOWHERE = "https://offline.invalid"


def fake_jwt(audience: str) -> str:
    """A token azureml-core accepts: it decodes the JWT, unverified, for its expiry."""
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    claims = {"aud": audience, "tid": "tenant", "exp": int(time.time()) + 3600}
    return ".".join([part({"alg": "none"}), part(claims), "sig"])


class RecordingUploader:
    """Takes the snapshot the way SnapshotsClient.create_snapshot does (the project's ignore file and the
    SDK's merkle tree) and records the file list instead of uploading it."""

    def __init__(self):
        self.snapshots: dict[str, list[str]] = {}

    def upload(self, directory: str) -> str:
        from azureml._base_sdk_common.merkle_tree import create_merkletree
        from azureml._project.ignore_file import get_project_ignore_file

        root = create_merkletree(directory, get_project_ignore_file(directory).is_file_excluded)
        files: list[str] = []

        def walk(node: Any, prefix: str) -> None:
            for child in node.children:
                if child.is_file():
                    files.append(prefix + child.name)
                else:
                    walk(child, prefix + child.name + "/")

        walk(root, "")
        snapshot_id = f"snapshot-{len(self.snapshots)}"
        self.snapshots[snapshot_id] = sorted(files)
        return snapshot_id


def cluster_payload(name: str) -> dict[str, Any]:
    """An AmlCompute resource as ARM returns it."""
    return {"name": name, "location": "westeurope", "tags": None, "id": f"/computes/{name}",
            "properties": {"computeType": "AmlCompute", "description": None, "resourceId": None,
                           "provisioningState": "Succeeded", "provisioningErrors": None,
                           "isAttachedCompute": False,
                           "properties": {
                               "vmSize": "STANDARD_D2_V2", "vmPriority": "Dedicated", "subnet": None,
                               "scaleSettings": {"minNodeCount": 0, "maxNodeCount": 4,
                                                 "nodeIdleTimeBeforeScaleDown": "PT300S"},
                               "allocationState": "Steady", "currentNodeCount": 0, "targetNodeCount": 0,
                               "nodeStateCounts": {"idleNodeCount": 0, "runningNodeCount": 0,
                                                   "preparingNodeCount": 0, "unusableNodeCount": 0,
                                                   "leavingNodeCount": 0, "preemptedNodeCount": 0},
                               "errors": None}}}


@dataclass
class Service:
    """The offline service: what was published, submitted and uploaded, and the runs it reports."""
    workspace: Any
    caller: Any
    uploader: RecordingUploader
    runs: dict[str, Any] = field(default_factory=dict)
    children: dict[str, list[Any]] = field(default_factory=dict)
    child_listings: int = 0  # how often run history was asked for a run's children (its step runs)
    # the workspace's computes, as ARM lists them: the cluster `make provision` created
    computes: list[dict[str, Any]] = field(default_factory=lambda: [cluster_payload("cpu-cluster")])

    def graph(self, published_id: str) -> Any:
        return self.caller._graph_entities[self.caller._pipeline_entities[published_id].graph_id]

    def run(self, run_id: str) -> Any:
        """The run's record in run history; a run id the service has not seen is a new pipeline run."""
        from azureml._restclient.models.run_dto import RunDto

        return self.runs.setdefault(run_id, RunDto(
            run_id=run_id, root_run_id=run_id, run_number=1, status="NotStarted",
            run_type="azureml.PipelineRun", properties={"azureml.runsource": "azureml.PipelineRun"},
            tags={}, data_container_id=f"dcid.{run_id}"))

    def end_run(self, run_id: str, failed_step: str | None = None) -> None:
        """The service's verdict on a submitted run: the steps run in order until `failed_step` fails.

        The pipeline service reports the run's and each node's status (DryRunServiceCaller's codes: run
        2 Failed / 3 Finished, node 3 Failed / 4 Finished); run history lists the step runs that started.
        """
        from azureml._restclient.models.run_dto import RunDto
        from azureml.pipeline.core._restclients.aeva.models import PipelineRunStatus

        entity = self.caller._pipeline_run_entities[run_id]
        entity.status = PipelineRunStatus(status_code="2" if failed_step else "3")
        pipeline_id = entity.pipeline_id or list(self.caller._pipeline_entities)[-1]
        entity.graph_id = self.caller._pipeline_entities[pipeline_id].graph_id  # as for a direct submit
        graph = self.graph(pipeline_id)
        nodes = {self.caller._module_entities[n.module_id].name: n.id for n in graph.module_nodes}
        statuses = {}
        for name in ("preparation", "extraction", "training"):
            failed = name == failed_step
            statuses[nodes[name]] = "3" if failed else "4"
            step_id = f"{run_id}_{name}"
            self.runs[step_id] = RunDto(
                run_id=step_id, root_run_id=run_id, parent_run_id=run_id, run_number=2, name=name,
                status="Failed" if failed else "Completed", run_type="azureml.StepRun",
                properties={"azureml.runsource": "azureml.StepRun"},
                tags={"azureml.nodeid": nodes[name], "azureml.pipeline": run_id},
                data_container_id=f"dcid.{step_id}")
            self.children.setdefault(run_id, []).append(self.runs[step_id])
            if failed:
                break
        self.caller.get_node_status_code_async = lambda pipeline_run_id, node_id: statuses.get(node_id, "0")


@pytest.fixture
def aml(wire, monkeypatch, tmp_path) -> Service:
    """A Workspace object and the pipeline service, offline; the network stays refused."""
    import azureml.telemetry
    from azureml._restclient.models.experiment_dto import ExperimentDto
    from azureml._restclient.models.run_details_dto import RunDetailsDto
    from azureml._restclient.run_client import RunClient
    from azureml._restclient.service_context import ServiceContext, _ServiceKeys
    from azureml._restclient.workspace_client import WorkspaceClient
    from azureml.core import Workspace
    from azureml.core.authentication import TokenAuthentication
    from azureml.data.azure_storage_datastore import AzureBlobDatastore
    from azureml.data.datastore_client import _DatastoreClient
    from azureml.pipeline.core._aeva_provider import _AevaWorkflowProvider
    from azureml.pipeline.core._restclients.aeva.dryrun_service_caller import DryRunServiceCaller

    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the SDK writes ~/.azureml
    monkeypatch.setattr(azureml.telemetry, "get_diagnostics_collection_info",
                        lambda *a, **k: (False, "NOTSET"))
    # Service discovery: the SDK asks the workspace where its services live.
    monkeypatch.setattr(ServiceContext, "_fetch_endpoints",
                        lambda self: {key: NOWHERE for key in _ServiceKeys.get_discovery_keys()})
    workspace = Workspace(SUBSCRIPTION, "rg", "ws", auth=TokenAuthentication(fake_jwt, cloud="AzureCloud"),
                          _location="westeurope", _disable_service_check=True,
                          _workspace_id="11111111-1111-1111-1111-111111111111")
    workspace._discovery_url_internal = NOWHERE + "/discovery"
    services = {key: NOWHERE for key in _ServiceKeys.get_discovery_keys()}
    wire.answer("GET", rf"^{NOWHERE}/discovery$", 200, services)
    # The artifact service: no files under a prefix unless a test says otherwise (logs, outputs).
    wire.answer("GET", rf"^{NOWHERE}/artifact/v2.0/.*/artifacts/prefix/contentinfo/", 200,
                {"value": [], "continuationToken": None})
    # The pipeline service: the SDK's own in-memory implementation of it.
    service = Service(workspace, DryRunServiceCaller(), RecordingUploader())
    provider = _AevaWorkflowProvider(service.caller, service.uploader, workspace)
    monkeypatch.setattr(_AevaWorkflowProvider, "create_provider",
                        staticmethod(lambda workspace, experiment_name, service_endpoint=None: provider))
    # ARM listings of what `make provision` created.
    stores = {name: AzureBlobDatastore(workspace, name, container, "acct", account_key="a2V5")
              for name, container in (("workspaceblobstore", "azureml"),
                                      ("california_housing", "california-housing"))}
    monkeypatch.setattr(_DatastoreClient, "list", staticmethod(lambda ws, *a, **k: list(stores.values())))
    monkeypatch.setattr(workspace, "get_default_datastore", lambda: stores["workspaceblobstore"])
    wire.answer("GET", rf"^{NOWHERE}/rp/workspaces/.*/workspaces/ws/computes\?", 200,
                lambda request: {"value": service.computes})
    # Run history.
    monkeypatch.setattr(WorkspaceClient, "get_or_create_experiment", lambda self, experiment_name, **k:
                        ExperimentDto(experiment_id=f"e-{experiment_name}", name=experiment_name, tags={}))

    def get_run(self, **kwargs):
        return service.run(self._run_id)

    monkeypatch.setattr(RunClient, "get_run", get_run)

    def get_child_runs(self, root_run_id, recursive=False, **kwargs):
        service.child_listings += 1
        return list(service.children.get(self._run_id, []))

    monkeypatch.setattr(RunClient, "get_child_runs", get_child_runs)
    monkeypatch.setattr(RunClient, "get_runstatus", lambda self, **k: RunDetailsDto(
        run_id=self._run_id, status=service.run(self._run_id).status, log_files={}))
    return service
