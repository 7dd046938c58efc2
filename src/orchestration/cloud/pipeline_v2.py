"""The same pipeline for Azure ML SDK v2: a pipeline component (command → parallel_run_function → command)
that `publish` registers, and the pipeline job that `run` submits, which runs the registered component.

The entry script is unchanged; only the settings' mapping changes (Learn, "Upgrade parallel run step to
SDK v2"). `parallel_settings` is the pure v1 → v2 mapping; `build_pipeline_component` and `build_run_job`
hand it to azure-ai-ml (an optional extra: `pip install .[v2]`), offline. Data are addressed by datastore
URIs, never local paths, so the YAML written by a dry run loads back with azure-ai-ml's `load_component` or
`load_job` as the same object.

As in v1 (a published pipeline behind an endpoint, submitted by name), what runs is what was published:
the component fixes the code, the environment and the parallel settings; the run job adds only what a
registered component cannot hold (the input folder, the output paths, the compute, the experiment).

Mapping choices where the SDK and the docs disagree: RUN_MAX_TRY counts attempts, `max_retries` counts
retries (Learn: default 2, i.e. 3 attempts), so max_retries = RUN_MAX_TRY - 1 and both defaults agree;
ALLOWED_FAILED_PERCENT has no v2 field and goes into program_arguments, as the migration guide says.

No value of a setting is pasted into a node's `command:`: paths arrive as `${{inputs.*}}`/`${{outputs.*}}`
bindings, and the training step reads its rows from a `uri_file` input, so it needs no file name.
"""
# No `from __future__ import annotations` here: @dsl.pipeline reads the pipeline function's annotations
# as its input types, and postponed (string) annotations would leave them unknown.
import re
from typing import Any

from orchestration.cloud.pipeline_v1 import (
    ENTRY_SCRIPT, EXPERIMENT_NAME, PREPARE_SCRIPT, SOURCE_DIRECTORY, STEP_NAMES, TRAIN_SCRIPT,
    check_for_azure,
)
from orchestration.errors import SettingsError
from orchestration.parallel_fields import v2_values
from orchestration.settings import Settings

# azure-ai-ml's rule for component names (azure/ai/ml/_schema/component/component.py, ComponentNameStr).
COMPONENT_NAME = re.compile(r"^[a-z][a-z\d_]*$")
OUTPUTS_PATH = "azureml://datastores/{datastore}/paths/outputs/${{{{name}}}}"  # ${{name}}: the job's name


def datastore_uri(datastore: str, path: str) -> str:
    return f"azureml://datastores/{datastore}/paths/{path.strip('/')}"


def environment_reference(settings: Settings) -> str:
    """`<name>@latest`: the newest version `publish` built from docker/Dockerfile.

    Without the `azureml:` prefix: azure-ai-ml resolves a Python object's `name@latest` label as is, and
    with the prefix it would look up an environment named `azureml:<name>`
    (azure/ai/ml/_utils/_arm_id_utils.py, parse_name_label).
    """
    return f"{settings.aml_env_name}@latest"


def component_name(settings: Settings) -> str:
    """PIPELINE_NAME as a v2 component name: lower case, '-' and '.' become '_'.

    Raises:
        SettingsError: when the result still breaks the SDK's rule (e.g. it starts with a digit).
    """
    name = re.sub(r"[-.]", "_", settings.pipeline_name.lower())
    if not COMPONENT_NAME.match(name):
        raise SettingsError([f"PIPELINE_NAME: expected a letter first, then letters, digits, '_', '-' or '.' "
                             f"for the v2 pipeline component (got {settings.pipeline_name!r})"])
    return name


def parallel_settings(settings: Settings) -> dict[str, Any]:
    """The ParallelRunConfig settings under their v2 names (parallel_run_function / RunFunction): the
    table's mapping (orchestration/parallel_fields.py), plus what v2 expresses as bindings —
    OUTPUT_ACTION as `append_row_to`, APPEND_ROW_FILE_NAME as the output's path."""
    return {
        **v2_values(settings),
        "append_row_to": "${{outputs.extracted}}" if settings.output_action == "append_row" else None,
        "entry_script": ENTRY_SCRIPT,
    }


def component_reference(settings: Settings, version: str | None = None) -> str:
    """The registered pipeline component: `azureml:<name>:<version>`, or `<name>@latest`, its newest
    version, without the prefix (as environment_reference: with it, azure-ai-ml would look up a component
    named `azureml:<name>`); a job's YAML shows both as `azureml:...`."""
    name = component_name(settings)
    return f"azureml:{name}:{version}" if version else f"{name}@latest"


def check_for_v2(settings: Settings) -> None:
    """What Azure would reject of the settings, v1's rules and v2's own."""
    check_for_azure(settings)
    if settings.partition_keys:  # v2 partitions an MLTable's columns; this pipeline's input is a folder
        raise SettingsError(["PARTITION_KEYS: a v2 parallel job partitions an MLTable input, and this "
                             "pipeline's input is a folder (uri_folder): publish it with SDK=v1, or leave "
                             "PARTITION_KEYS empty"])


def build_pipeline_component(settings: Settings, environment: Any = None) -> Any:
    """The v2 pipeline component that `publish` registers (azure-ai-ml objects, no workspace needed).

    Its outputs carry no path: a registered pipeline component keeps none of its nodes' output paths, so
    the run job sets them (build_run_job)."""
    from azure.ai.ml import Input, Output, command, dsl
    from azure.ai.ml.entities._job.parallel.retry_settings import RetrySettings
    from azure.ai.ml.parallel import RunFunction, parallel_run_function

    check_for_v2(settings)
    name = component_name(settings)
    env = environment or environment_reference(settings)
    code = str(SOURCE_DIRECTORY)
    mapped = parallel_settings(settings)
    task = {key: mapped.pop(key) for key in ("entry_script", "program_arguments", "append_row_to")}
    retry_settings = RetrySettings(**mapped.pop("retry_settings"))

    prepare = command(
        name=STEP_NAMES["preparation"], display_name=STEP_NAMES["preparation"], code=code,
        environment=env,
        command=(f"python {PREPARE_SCRIPT} --source-dir ${{{{inputs.raw}}}} "
                 "--output ${{outputs.prepared}}"),
        inputs={"raw": Input(type="uri_folder", mode="ro_mount")},
        outputs={"prepared": Output(type="uri_folder", mode="rw_mount")},
    )
    extract = parallel_run_function(
        name=STEP_NAMES["extraction"], display_name=STEP_NAMES["extraction"],
        inputs={"prepared": Input(type="uri_folder", mode="ro_mount")},
        outputs={"extracted": Output(type="uri_file", mode="rw_mount")},
        input_data="${{inputs.prepared}}", retry_settings=retry_settings,
        task=RunFunction(code=code, environment=env, **task),
        **mapped,  # every other field of the table, under its v2 name
    )
    train = command(
        name=STEP_NAMES["training"], display_name=STEP_NAMES["training"], code=code, environment=env,
        command=f"python {TRAIN_SCRIPT} --input ${{{{inputs.rows}}}} --output ${{{{outputs.model_dir}}}}",
        inputs={"rows": Input(type="uri_file", mode="ro_mount")},
        outputs={"model_dir": Output(type="uri_folder", mode="rw_mount")},
    )

    raw_folder = Input(type="uri_folder", mode="ro_mount")

    @dsl.pipeline(name=name, display_name=settings.pipeline_name,
                  description="prepare -> extract (parallel job) -> train")
    def california_housing(raw: raw_folder):  # the annotation is the pipeline input's type
        preparation = prepare(raw=raw)
        extraction = extract(prepared=preparation.outputs.prepared)
        training = train(rows=extraction.outputs.extracted)
        return {"extracted_rows": extraction.outputs.extracted, "model": training.outputs.model_dir}

    return california_housing(raw=raw_folder).component


def build_run_job(settings: Settings, component: str) -> Any:
    """The pipeline job that runs the registered `component` (component_reference) on the datastore's
    input folder, with its outputs under `outputs/<job name>/` in the same datastore."""
    from azure.ai.ml import Input, Output
    from azure.ai.ml.entities import Pipeline, PipelineJob

    check_for_v2(settings)
    store = settings.aml_blob_datastore_name
    outputs = OUTPUTS_PATH.format(datastore=store)
    node = Pipeline(component=component, inputs={"raw": "${{parent.inputs.raw}}"},
                    outputs={name: f"${{{{parent.outputs.{name}}}}}" for name in ("extracted_rows", "model")})
    return PipelineJob(
        display_name=settings.pipeline_name, experiment_name=EXPERIMENT_NAME,
        compute=settings.aml_compute_cluster_name,
        inputs={"raw": Input(type="uri_folder", mode="ro_mount",
                             path=datastore_uri(store, settings.input_dir))},
        outputs={"extracted_rows": Output(type="uri_file", mode="rw_mount",
                                          path=f"{outputs}/{settings.append_row_file_name}"),
                 "model": Output(type="uri_folder", mode="rw_mount", path=f"{outputs}/training")},
        jobs={component_name(settings): node},
    )
