"""The Azure ML pipeline: preparation (PythonScriptStep) → extraction (ParallelRunStep) → training.

`pipeline_plan(settings)` is pure: it turns the settings into every constructor argument of every SDK
object, under the SDK's parameter names — that dict is both the DRY_RUN plan and the single input of
`build_steps`, which only hands it to azureml-core/azureml-pipeline-steps. So the plan shows exactly what
is built, and the SDK objects can be built and checked offline (compute target by name, no workspace).
`check_for_azure` rejects, before any network call, what the SDK or the service would reject.
"""
from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from orchestration.errors import SettingsError
from orchestration.parallel_fields import reserved_arguments, v1_values
from orchestration.paths import ROOT, SRC
from orchestration.settings import Settings

SOURCE_DIRECTORY = SRC  # the snapshot uploaded with every step
DOCKERFILE = Path("docker") / "Dockerfile"  # relative to ROOT, the image's build context
# What Azure ML's image build receives: a flat context, each file under its base name, because SDK v1's
# DockerBuildContext.from_local_directory keys the uploaded files by base name
# (azureml/core/environment.py, _get_files_to_upload: `results[_file] = fpath`). The Dockerfile's COPYs name
# only root-level files, so the repository root (make docker-build) and this context both build it.
BUILD_DOCKERFILE = "Dockerfile"
BUILD_CONTEXT_FILES = {BUILD_DOCKERFILE: DOCKERFILE, "pyproject.toml": Path("pyproject.toml"),
                       "uv.lock": Path("uv.lock")}
# Where a dry run's build context would be uploaded: the workspace's storage account is known only online.
OFFLINE_STORAGE = "https://workspace-storage-account.blob.core.windows.net"
ENTRY_SCRIPT = "steps/extract_entry.py"
PREPARE_SCRIPT = "steps/prepare_step.py"
TRAIN_SCRIPT = "steps/train_step.py"
STEP_NAMES = {"preparation": "preparation", "extraction": "extraction", "training": "training"}
RAW, PREPARED, EXTRACTED = "raw_files", "prepared_files", "extracted_rows"
PARTITIONED = "partitioned_files"  # the raw files as a partitioned dataset (PARTITION_KEYS)
MODEL_NAME = "california-housing-linear-regression"
EXPERIMENT_NAME = "california-housing"

# Documented service rules (ParallelRunStep / AmlCompute / Blob storage), checked locally.
STEP_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")  # 3-32 characters
CLUSTER_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{1,15}$")
DATASTORE_NAME = re.compile(r"^[a-zA-Z0-9_]{1,255}$")
CONTAINER_NAME = re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
ACCOUNT_NAME = re.compile(r"^[a-z0-9]{3,24}$")
ASSET_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$")  # environments, pipelines, endpoints
# A folder of blob names that is safe both in a datastore URI and on a command line.
FOLDER = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*/?$")


def storage_problems(settings: Settings) -> list[str]:
    """What Blob storage would refuse: the container, the account and the folder of the raw files."""
    problems = []
    if not CONTAINER_NAME.match(settings.aml_blob_container_name):
        problems.append("AML_BLOB_CONTAINER_NAME: expected 3-63 lower-case letters, digits and single "
                        f"hyphens (got {settings.aml_blob_container_name!r})")
    if settings.aml_storage_account_name and not ACCOUNT_NAME.match(settings.aml_storage_account_name):
        problems.append("AML_STORAGE_ACCOUNT_NAME: expected 3-24 lower-case letters and digits "
                        f"(got {settings.aml_storage_account_name!r})")
    if not FOLDER.match(settings.input_dir.lstrip("/")) or ".." in settings.input_dir.split("/"):
        problems.append("INPUT_DIR: expected a folder inside the container, of letters, digits, '.', '_', "
                        f"'-' and '/' (got {settings.input_dir!r})")
    return problems


def check_storage(settings: Settings) -> None:
    """Raises SettingsError listing every storage value the service would refuse (no network)."""
    problems = storage_problems(settings)
    if problems:
        raise SettingsError(problems)


def check_for_azure(settings: Settings, extraction_arguments: tuple[str, ...] = ()) -> None:
    """Raises SettingsError listing every value Azure ML or storage would refuse (no network)."""
    problems = []
    if not CLUSTER_NAME.match(settings.aml_compute_cluster_name):
        problems.append("AML_COMPUTE_CLUSTER_NAME: expected 2-16 letters, digits or hyphens, starting "
                        f"with a letter (got {settings.aml_compute_cluster_name!r})")
    if settings.node_count > settings.aml_compute_max_nodes:
        problems.append("NODE_COUNT: expected at most AML_COMPUTE_MAX_NODES "
                        f"({settings.aml_compute_max_nodes}) (got {settings.node_count})")
    if not DATASTORE_NAME.match(settings.aml_blob_datastore_name):
        problems.append("AML_BLOB_DATASTORE_NAME: expected letters, digits and underscores "
                        f"(got {settings.aml_blob_datastore_name!r})")
    problems += storage_problems(settings)
    for variable in ("AML_ENV_NAME", "PIPELINE_NAME", "PIPELINE_ENDPOINT_NAME"):
        value = getattr(settings, variable.lower())
        if not ASSET_NAME.match(value):
            problems.append(f"{variable}: expected letters, digits, '.', '_' and '-', starting with a letter "
                            f"or digit (got {value!r})")
    for name in STEP_NAMES.values():
        if not STEP_NAME.match(name) or not 3 <= len(name) <= 32:
            problems.append(f"step name {name!r}: expected 3-32 of a-z, 0-9 and '-'")
    for argument in reserved_arguments(extraction_arguments):
        problems.append(f"extraction argument {argument}: reserved by ParallelRunStep")
    if settings.partition_keys:
        problems += partition_problems(settings.partition_keys, settings.partition_format)
    if problems:
        raise SettingsError(problems)


def partition_problems(keys: str, partition_format: str) -> list[str]:
    """What ParallelRunStep would refuse of PARTITION_KEYS: keys that PARTITION_FORMAT does not name."""
    if not partition_format:
        return ["PARTITION_FORMAT: needed with PARTITION_KEYS, e.g. {store}/{file_name}.csv (the raw files' "
                "partition format, as Dataset.File.from_files takes it)"]
    named = re.findall(r"\{([^{}:]+)(?::[^{}]*)?\}", partition_format)
    missing = [key for key in keys.split(",") if key not in named]
    if missing:
        return [f"PARTITION_KEYS: {missing[0]!r} is not a key of PARTITION_FORMAT {partition_format!r}"]
    return []


def extraction_input(settings: Settings) -> tuple[dict[str, Any], list[str]]:
    """The extraction's input and the steps it runs after. With PARTITION_KEYS: the raw files as a
    partitioned FileDataset, consumed directly (ParallelRunStep refuses a partitioned one mounted), as SDK
    v1 gives a partition format to Dataset.File.from_files only; it runs after the preparation, with no
    data between them. Otherwise the preparation's output folder, mounted."""
    if not settings.partition_keys:
        return {"input": PREPARED, "mode": "mount"}, []
    return ({"input": PARTITIONED, "dataset": "File.from_files",
             "datastore": settings.aml_blob_datastore_name,
             "path_on_datastore": f"{settings.input_dir.strip('/')}/**",
             "partition_format": settings.partition_format, "mode": "direct"}, [STEP_NAMES["preparation"]])


def pipeline_plan(settings: Settings, image: str | None = None) -> dict[str, Any]:
    """Everything the pipeline is built from, under the SDK's parameter names. Never holds a secret.

    `image`: a pushed image to run in; by default the environment is built from docker/Dockerfile.
    """
    check_for_azure(settings)
    compute = settings.aml_compute_cluster_name
    environment: dict[str, Any] = {"name": settings.aml_env_name, "user_managed_dependencies": True}
    if image:
        environment["image"] = image
    else:
        environment.update(dockerfile_path=BUILD_DOCKERFILE, build_context={
            name: source.as_posix() for name, source in BUILD_CONTEXT_FILES.items()})
    common = {"source_directory": "src", "compute_target": compute, "allow_reuse": False}
    extract_input, run_after = extraction_input(settings)
    return {
        "pipeline": {"name": settings.pipeline_name, "endpoint": settings.pipeline_endpoint_name,
                     "experiment": EXPERIMENT_NAME},
        "environment": environment,
        "compute_target": compute,
        "datastore": {"name": settings.aml_blob_datastore_name, "container": settings.aml_blob_container_name,
                      "path": settings.input_dir},
        "steps": [
            {
                "type": "PythonScriptStep", "name": STEP_NAMES["preparation"], "script_name": PREPARE_SCRIPT,
                **common,
                # The datastore folder arrives mounted by Azure ML: the step never handles a credential.
                "arguments": ["--source-dir", {"input": RAW}, "--output", {"output": PREPARED}],
                "inputs": [{"input": RAW, "datastore": settings.aml_blob_datastore_name,
                            "path_on_datastore": settings.input_dir.strip("/"), "mode": "mount"}],
                "outputs": [PREPARED],
            },
            {
                "type": "ParallelRunStep", "name": STEP_NAMES["extraction"],
                "parallel_run_config": {
                    "environment": settings.aml_env_name, "entry_script": ENTRY_SCRIPT,
                    "source_directory": "src", "compute_target": compute, **v1_values(settings),
                },
                "inputs": [extract_input], "run_after": run_after, "output": EXTRACTED, "arguments": [],
                "allow_reuse": False,
            },
            {
                "type": "PythonScriptStep", "name": STEP_NAMES["training"], "script_name": TRAIN_SCRIPT,
                **common,
                "arguments": ["--input", {"input": EXTRACTED}, "--append-row-file-name",
                              settings.append_row_file_name, "--output", "outputs", "--register-model",
                              MODEL_NAME],
                "inputs": [EXTRACTED], "outputs": [],
            },
        ],
    }


def stage_build_context(target: Path) -> Path:
    """Copies BUILD_CONTEXT_FILES into `target`, so Azure ML uploads a few KB, not the repository."""
    target.mkdir(parents=True, exist_ok=True)
    for name, source in BUILD_CONTEXT_FILES.items():
        shutil.copyfile(ROOT / source, target / name)
    return target


def build_environment(plan: dict[str, Any], workspace: Any = None) -> Any:
    """The Azure ML environment: the runtime stage of docker/Dockerfile, or a pushed image.

    Building from the Dockerfile uploads a flat build context to the workspace's storage. Offline (a dry
    run, no workspace) the environment is built the same way, from a build context at the location the
    upload would give it, under the SDK's own hash of the same files.
    """
    from azureml.core import Environment

    spec = plan["environment"]
    if "image" in spec:
        environment = Environment.from_docker_image(spec["name"], spec["image"])
    else:
        with tempfile.TemporaryDirectory(prefix="aml-image-") as scratch:
            context = build_context(stage_build_context(Path(scratch)), spec["dockerfile_path"], workspace)
        environment = Environment.from_docker_build_context(spec["name"], context)
    environment.python.user_managed_dependencies = spec["user_managed_dependencies"]
    return environment


def build_context(folder: Path, dockerfile_path: str, workspace: Any = None) -> Any:
    """The DockerBuildContext of `folder`: uploaded to the workspace, or (with no workspace) where
    DockerBuildContext.from_local_directory would upload it, named by the SDK's own content hash."""
    from azureml.core import Environment
    from azureml.core import environment as sdk

    if workspace is not None:
        return sdk.DockerBuildContext.from_local_directory(
            workspace=workspace, path=str(folder), dockerfile_path=dockerfile_path)
    files = Environment._get_files_to_upload(str(folder), sdk._DOCKER_BUILD_CONTEXT_MAX_FILES,
                                             sdk._DOCKER_BUILD_CONTEXT_MAX_BYTES)
    location = (f"{OFFLINE_STORAGE}/{sdk._DOCKER_BUILD_CONTEXT_CONTAINER}/"
                f"{sdk._DOCKER_BUILD_CONTEXT_PATH_PREFIX}/{Environment._hash_files(files.values())}/")
    kind = sdk.DockerBuildContext.LocationType.StorageAccount
    return sdk.DockerBuildContext(kind, location, dockerfile_path)


def offline_datastore(plan: dict[str, Any]) -> Any:
    """The blob datastore as an SDK object with no connection: what a dry run builds the inputs from.
    A partitioned dataset needs a workspace object (Dataset.File.from_files reads its authentication's
    kind): one that never connects, whose token function refuses."""
    from azureml.data.azure_storage_datastore import AzureBlobDatastore

    spec = plan["datastore"]
    partitioned = any("partition_format" in i for step in plan["steps"] for i in step.get("inputs", [])
                      if isinstance(i, dict))
    return AzureBlobDatastore(offline_workspace() if partitioned else None, spec["name"], spec["container"],
                              "<account>")


def offline_workspace() -> Any:
    from azureml.core import Workspace
    from azureml.core.authentication import TokenAuthentication

    def no_token(audience: str) -> str:
        raise RuntimeError("a dry run asks for no token")

    return Workspace("00000000-0000-0000-0000-000000000000", "dry-run", "dry-run",
                     auth=TokenAuthentication(no_token, cloud="AzureCloud"), _disable_service_check=True)


def build_steps(plan: dict[str, Any], environment: Any, compute_target: Any = None,
                datastore: Any = None) -> list[Any]:
    """The SDK step objects of `plan`; offline, `compute_target` is the cluster's name and `datastore` an
    object carrying the datastore's name (see offline_datastore)."""
    from azureml.core.runconfig import RunConfiguration
    from azureml.data import OutputFileDatasetConfig
    from azureml.data.data_reference import DataReference
    from azureml.pipeline.core import PipelineData
    from azureml.pipeline.steps import ParallelRunConfig, ParallelRunStep, PythonScriptStep

    compute = compute_target if compute_target is not None else plan["compute_target"]
    source = str(SOURCE_DIRECTORY)
    prepare_plan, extract_plan, train_plan = plan["steps"]
    (raw_plan,) = prepare_plan["inputs"]
    store = datastore if datastore is not None else offline_datastore(plan)
    raw = DataReference(store, data_reference_name=raw_plan["input"],
                        path_on_datastore=raw_plan["path_on_datastore"], mode=raw_plan["mode"])
    prepared = OutputFileDatasetConfig(name=PREPARED)
    extracted = PipelineData(EXTRACTED)
    runconfig = RunConfiguration()
    runconfig.environment = environment
    bindings = {RAW: raw, PREPARED: prepared, EXTRACTED: extracted}

    def resolve(argument: Any) -> Any:
        if isinstance(argument, dict):
            return bindings[argument.get("input") or argument["output"]]
        return argument

    prepare = PythonScriptStep(
        name=prepare_plan["name"], script_name=prepare_plan["script_name"], source_directory=source,
        compute_target=compute, runconfig=runconfig, allow_reuse=prepare_plan["allow_reuse"],
        inputs=[raw], arguments=[resolve(a) for a in prepare_plan["arguments"]],
    )
    config = dict(extract_plan["parallel_run_config"])
    config.update(environment=environment, source_directory=source, compute_target=compute)
    (extract_input,) = extract_plan["inputs"]
    if "partition_format" in extract_input:
        from azureml.core import Dataset

        consumed = Dataset.File.from_files(
            path=(store, extract_input["path_on_datastore"]), validate=False,
            partition_format=extract_input["partition_format"]).as_named_input(extract_input["input"])
    else:
        consumed = prepared.as_input(name=PREPARED).as_mount()
    extract = ParallelRunStep(
        name=extract_plan["name"], parallel_run_config=ParallelRunConfig(**config),
        inputs=[consumed], output=extracted,
        arguments=extract_plan["arguments"], allow_reuse=extract_plan["allow_reuse"],
    )
    if extract_plan["run_after"]:
        extract.run_after(prepare)
    train = PythonScriptStep(
        name=train_plan["name"], script_name=train_plan["script_name"], source_directory=source,
        compute_target=compute, runconfig=runconfig, allow_reuse=train_plan["allow_reuse"],
        inputs=[extracted], arguments=[resolve(a) for a in train_plan["arguments"]],
    )
    return [prepare, extract, train]
