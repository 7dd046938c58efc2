"""Azure ML SDK v2, offline: azure-ai-ml's MLClient with a fake token credential, and the workspace's
services answered at the wire as they answer: ARM stores what is PUT and returns it on GET, the workspace's
blob store keeps what is uploaded. Everything between the toolkit and the HTTP request is the SDK's own code.
"""
from __future__ import annotations

import copy
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.core.credentials import AccessToken

from orchestration.cloud import workspace_v2
from tests.orchestration.cloud.offline_v1 import fake_jwt

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
WORKSPACE = dict(SUBSCRIPTION_ID=SUBSCRIPTION, RESOURCE_GROUP="rg", WORKSPACE_NAME="ws", AML_SDK="v2")
ARM = (f"https://management.azure.com/subscriptions/{SUBSCRIPTION}/resourceGroups/rg"
       "/providers/Microsoft.MachineLearningServices/workspaces/ws")
ARM_PATH = urlsplit(ARM).path  # how ARM names the workspace's resources: their ids
BLOBS = "https://wsstore.blob.core.windows.net/"  # the workspace storage account
STORE = {"id": ARM + "/datastores/workspaceartifactstore", "name": "workspaceartifactstore",
         "properties": {"datastoreType": "AzureBlob", "accountName": "wsstore", "containerName": "azureml",
                        "endpoint": "core.windows.net", "protocol": "https", "isDefault": True,
                        "credentials": {"credentialsType": "AccountKey"}}}
NOT_FOUND = {"error": {"code": "UserError", "message": "Not found"}}


class FakeCredential:
    """An azure-core TokenCredential: a JWT per audience (the SDK reads its claims), made without a
    network call. It records the scopes asked for; each token's `aud` names its scope's resource, so a
    test can check which token each request carried."""

    def __init__(self):
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes, **kwargs):
        self.scopes.append(scopes)
        (scope,) = scopes
        return AccessToken(fake_jwt(scope.removesuffix("/.default")), int(time.time()) + 3600)


@dataclass
class Workspace:
    """The workspace's services as the wire sees them: ARM resources by path, blobs by name."""
    resources: dict[str, Any] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)  # by path: /container/name
    failed_step: str | None = None  # a submitted job fails in this step, else it completes
    children: dict[str, list[dict]] = field(default_factory=dict)  # run history: a job's step runs
    sent_bodies: dict[str, Any] = field(default_factory=dict)  # each asset version as it was created
    metadata: dict[str, dict[str, str]] = field(default_factory=dict)  # blob metadata, as headers

    def arm_put(self, request) -> tuple[int, dict]:
        """Stores a resource as the service returns it; an asset version also updates its container (the
        latest and next version numbers) and, for a component, names its version in the spec."""
        path = urlsplit(request.url).path
        body = json.loads(request.body)
        if "/versions/" in path and path in self.sent_bodies and self.sent_bodies[path] != body:
            return 409, {"error": {"code": "UserError", "message": "A version with different content exists; "
                                   "asset versions are immutable"}}  # the SDK then takes the next version
        self.sent_bodies[path] = copy.deepcopy(body)
        resource = {**body, "id": path, "name": path.rsplit("/", 1)[1],
                    "systemData": {"createdAt": "2026-12-06T10:00:00Z", "createdBy": "tests"}}
        resource["properties"] = {**body.get("properties", {}), "provisioningState": "Succeeded"}
        version = re.search(r"^(.*/(\w+)/([^/]+))/versions/([^/]+)$", path)
        if version:
            container, kind, name, number = version.groups()
            if kind == "components":
                resource["properties"]["componentSpec"].update(name=name, version=number)
            if number.isdigit():
                self.resources[container] = {"id": container, "name": name, "properties": {
                    "latestVersion": number, "nextVersion": str(int(number) + 1)}}
        self.resources[path] = resource
        if "/jobs/" in path:  # the service runs it: it ends as the test said
            self.end_job(resource, self.failed_step)
        return 200, resource

    def end_job(self, job: dict, failed_step: str | None) -> None:
        """A pipeline job's end: Completed, or Failed in `failed_step`, whose step run (a child in run
        history) left its log, as did the pipeline's own run."""
        name = job["name"]
        job["properties"].update(status="Failed" if failed_step else "Completed", services={"Studio": {
            "jobServiceType": "Studio", "endpoint": f"https://ml.azure.com/runs/{name}"}})
        if failed_step:
            child = f"{name}_{failed_step}"
            self.children[name] = [{"runId": child, "displayName": failed_step, "status": "Failed",
                                    "parentRunId": name, "properties": {}, "tags": {}}]
            path = f"{ARM_PATH}/jobs/{child}"
            self.resources[path] = {"id": path, "name": child, "properties": {
                "jobType": "Command", "status": "Failed", "displayName": failed_step,
                "experimentName": "california-housing", "command": "python steps/prepare_step.py",
                "environmentId": "azureml:batch-toolkit-env:1", "computeId": "cpu-cluster", "inputs": {},
                "outputs": {}, "properties": {}, "tags": {}, "services": {}}}
            self.add_artifact(name, "logs/azureml/executionlogs.txt", f"child {child} failed\n".encode())
            self.add_artifact(child, "user_logs/std_log.txt",
                              f"{failed_step}: FileNotFoundError: input folder\n".encode())

    def add_failed_job(self, name: str, failed_step: str) -> None:
        """A pipeline job that ran earlier and failed (`make logs`)."""
        path = f"{ARM_PATH}/jobs/{name}"
        self.resources[path] = {"id": path, "name": name, "properties": {
            "jobType": "Pipeline", "experimentName": "california-housing", "displayName": "pipeline",
            "inputs": {}, "outputs": {}, "jobs": {}, "settings": {}, "properties": {}, "tags": {}}}
        self.end_job(self.resources[path], failed_step)

    def arm_get(self, request) -> tuple[int, dict]:
        path = urlsplit(request.url).path
        query = parse_qs(urlsplit(request.url).query)
        if "hash" in query:  # code assets are found by their content's hash, whatever their name
            return 200, {"value": [r for r in self.resources.values() if r["properties"].get(
                "properties", {}).get("hash_sha256", "").startswith(query["hash"][0])]}
        if path.endswith("/versions"):  # a listing: every version stored below it, newest first if asked
            versions = [r for key, r in self.resources.items() if key.startswith(path + "/")]
            if query.get("$orderBy") == ["createdtime desc"]:
                versions.reverse()  # stored in the order they were created
            return 200, {"value": versions[:int(query.get("$top", [len(versions)])[0])]}
        resource = self.resources.get(path)
        return (200, resource) if resource else (404, NOT_FOUND)

    def add_cluster(self, name: str = "cpu-cluster") -> None:
        """A compute cluster, as `make provision` leaves it."""
        path = f"{ARM_PATH}/computes/{name}"
        self.resources[path] = {"id": path, "name": name, "location": "westeurope", "properties": {
            "computeType": "AmlCompute", "provisioningState": "Succeeded", "properties": {
                "vmSize": "STANDARD_D2_V2", "scaleSettings": {"minNodeCount": 0, "maxNodeCount": 4}}}}

    def add_artifact(self, run: str, file: str, content: bytes) -> None:
        """A file a job left in the workspace's artifact store (its logs, its outputs)."""
        self.blobs[f"/azureml/ExperimentRun/dcid.{run}/{file}"] = content

    def run_details(self, request) -> dict:
        """Run history's view of a job: the status ARM holds for it."""
        name = re.search(r"/runs/([^/]+)/details", request.url).group(1)
        return {"runId": name, "status": self.status(name), "logFiles": {}}

    def run_children(self, request) -> dict:
        name = re.search(r"/runs/([^/]+)/children", request.url).group(1)
        return {"value": self.children.get(name, []), "nextLink": None}

    def status(self, job_name: str) -> str:
        job = self.resources.get(f"{ARM_PATH}/jobs/{job_name}")
        return job["properties"]["status"] if job else "NotStarted"

    def run_data(self, request) -> dict:
        run_id = json.loads(request.body)["runId"]
        return {"runMetadata": {"runId": run_id, "status": self.status(run_id), "outputs": {}}}

    def blob_list(self, request) -> str:
        """A container listing, as Blob storage's XML, of the blobs under the prefix asked for."""
        container = urlsplit(request.url).path
        prefix = f"{container}/" + parse_qs(urlsplit(request.url).query).get("prefix", [""])[0]
        found = "".join(
            f"<Blob><Name>{path.removeprefix(container + '/')}</Name><Properties><Content-Length>{len(data)}"
            "</Content-Length><BlobType>BlockBlob</BlobType></Properties><Metadata /></Blob>"
            for path, data in sorted(self.blobs.items()) if path.startswith(prefix))
        return (f'<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="{BLOBS}" '
                f'ContainerName="{container.strip("/")}"><Blobs>{found}</Blobs><NextMarker />'
                '</EnumerationResults>')

    def blob_get(self, request) -> tuple[int, bytes | None]:
        data = self.blobs.get(urlsplit(request.url).path)
        return (200, data) if data is not None else (404, None)

    def blob_head(self, request) -> tuple[int, None, dict[str, str]]:
        path = urlsplit(request.url).path
        if path not in self.blobs:
            return 404, None, {"x-ms-error-code": "BlobNotFound"}
        return 200, None, {"x-ms-blob-type": "BlockBlob", **self.metadata.get(path, {})}

    def blob_put(self, request) -> tuple[int, None]:
        path = urlsplit(request.url).path
        if "comp=metadata" in request.url:  # the SDK marks an upload complete on its first blob
            self.metadata[path] = {key: value for key, value in request.headers.items()
                                   if key.lower().startswith("x-ms-meta-")}
            return 200, None
        self.blobs[path] = request.body or b""
        return 201, None


def serve(wire, workspace: Workspace) -> None:
    """ARM and the workspace's blob store, as the wire answers them (the answer given last wins)."""
    arm_path = re.escape(ARM_PATH)
    wire.answer("PUT", rf"{arm_path}/", 200, workspace.arm_put)
    wire.answer("GET", rf"{arm_path}[/?]", 404, workspace.arm_get)
    workspace.resources[ARM_PATH] = {
        "id": ARM_PATH, "name": "ws", "location": "westeurope",
        "properties": {"discoveryUrl": "https://westeurope.api.azureml.ms/discovery",
                       "workspaceId": "11111111-1111-1111-1111-111111111111"}}
    for path in ("/datastores/workspaceblobstore", "/datastores/workspaceartifactstore"):
        workspace.resources[ARM_PATH + path] = {**STORE, "name": path.rsplit("/", 1)[1]}
    wire.answer("GET", r"/datastores\?", 200, {"value": [STORE]})
    wire.answer("GET", r"^https://westeurope\.api\.azureml\.ms/discovery", 200, {
        service: "https://westeurope.api.azureml.ms" for service in (
            "api", "catalog", "experimentation", "history", "modelmanagement", "pipelines", "studio")})
    wire.answer("POST", r"/listSecrets\?", 200, {"secretsType": "AccountKey", "key": "a2V5"})
    wire.answer("POST", r"/codes/[^/]+/versions/[^/]+/startPendingUpload\?", 200, {  # where the code goes
        "pendingUploadType": "TemporaryBlobReference", "pendingUploadId": "upload-1",
        "blobReferenceForConsumption": {"blobUri": BLOBS + "code-1", "credential": {
            "credentialType": "SAS", "sasUri": BLOBS + "code-1?sv=2024-11-04&sig=SAS-sentinel"}}})
    wire.answer("HEAD", rf"^{re.escape(BLOBS)}", 404, workspace.blob_head)
    wire.answer("PUT", rf"^{re.escape(BLOBS)}", 201, workspace.blob_put)
    wire.answer("GET", rf"^{re.escape(BLOBS)}", 404, workspace.blob_get)
    wire.answer("GET", rf"^{re.escape(BLOBS)}[^/?]+\?restype=container&comp=list", 200, workspace.blob_list)
    history = r"^https://westeurope\.api\.azureml\.ms/history/v1\.0/"
    wire.answer("GET", history + r".*/runs/[^/]+/details", 200, workspace.run_details)
    wire.answer("GET", history + r".*/runs/[^/]+/children", 200, workspace.run_children)
    wire.answer("POST", history + r".*/rundata\?", 200, workspace.run_data)


@pytest.fixture
def offline(wire, monkeypatch):
    """The v2 commands with the settings of workspace `ws`, the network refused and nothing answered."""
    for name, value in WORKSPACE.items():
        monkeypatch.setenv(name, value)
    credential = FakeCredential()
    monkeypatch.setattr(workspace_v2, "credential", lambda settings: credential)
    wire.credential = credential
    return wire
