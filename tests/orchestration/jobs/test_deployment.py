"""Batch endpoint deployments run locally: `--deployment deployment.yml --input PATH --output DIR`.

The deployments are written in the shape of azureml-examples' cli/endpoints/batch/deploy-models (a
`type: model` deployment, `code_configuration`, `settings`), and the scoring script finds its model as
theirs do, with `glob(AZUREML_MODEL_DIR + "/*/*.pkl")`.
"""
import json
import pickle
import textwrap
from pathlib import Path

import pytest

from orchestration.jobs.deployment import DEFAULTS, deployment_plan, load_deployment, registered_model
from orchestration.prs.claim import claim
from tests.conftest import invoke

DEPLOYMENT = """\
$schema: https://azuremlschemas.azureedge.net/latest/modelBatchDeployment.schema.json
name: scorer-dpl
endpoint_name: scorer-batch
type: model
model:
  name: doubler
  path: model
code_configuration:
  code: code
  scoring_script: batch_driver.py
environment:
  name: batch-env
  image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest
compute: azureml:batch-cluster
resources:
  instance_count: 2
settings:
  max_concurrency_per_instance: 2
  mini_batch_size: 3
  output_action: append_row
  output_file_name: predictions.csv
  retry_settings:
    max_retries: 1
    timeout: 30
  error_threshold: -1
  logging_level: info
  environment_variables:
    GREETING: hello
"""

SCORING = """\
import glob, os, pickle
from pathlib import Path

import pandas as pd


def init():
    global model
    model_file = glob.glob(os.environ["AZUREML_MODEL_DIR"] + "/*/*.pkl")[-1]
    with open(model_file, "rb") as handle:
        model = pickle.load(handle)


def run(mini_batch):
    import helper  # a module beside the script, imported late: no __pycache__ may appear in code/

    rows = []
    for path in mini_batch:
        value = float(Path(path).read_text())
        rows.append({"file": Path(path).name, "prediction": helper.times(value, model["factor"]),
                     "greeting": os.environ["GREETING"]})
    return pd.DataFrame(rows)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """deployment.yml, code/batch_driver.py, model/model.pkl and data/ with 7 numbers."""
    (tmp_path / "deployment.yml").write_text(DEPLOYMENT)
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "batch_driver.py").write_text(SCORING)
    (tmp_path / "code" / "helper.py").write_text("def times(a, b):\n    return a * b\n")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.pkl").write_bytes(pickle.dumps({"factor": 2.0}))
    (tmp_path / "data").mkdir()
    for number in range(7):
        (tmp_path / "data" / f"{number}.txt").write_text(str(number))
    return tmp_path


def deploy(folder: Path, *args: str):
    # Bytecode writes on, whatever the shell says: the workers must still leave none in code/
    return invoke("orchestration.jobs.cli", "--deployment", "deployment.yml", "--input", "data",
                  "--output", "out", *args, cwd=folder, PYTHONDONTWRITEBYTECODE="")


def test_the_scoring_script_finds_its_model_and_every_prediction_is_in_the_output_file(project):
    before = {p.name: p.read_bytes() for p in (project / "model").iterdir()}
    result = deploy(project)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = (project / "out" / "predictions.csv").read_text().splitlines()
    assert sorted(lines) == sorted(f"{n}.txt {2.0 * n} hello" for n in range(7))  # space-separated rows
    model_dir = project / "out" / "azureml-models" / "doubler" / "1"
    assert (model_dir / "model").is_symlink() and (model_dir / "model").resolve() == project / "model"
    assert {p.name: p.read_bytes() for p in (project / "model").iterdir()} == before  # only read
    assert sorted(p.name for p in (project / "code").iterdir()) == ["batch_driver.py", "helper.py"]
    assert "compute: ignored locally, it runs on this machine" in result.stderr
    assert "endpoint_name: ignored locally" in result.stderr
    summary = json.loads((project / "out" / "logs" / "summary.json").read_text())
    assert summary["items"] == {"total": 7, "succeeded": 7, "failed": 0, "not_processed": 0}
    assert summary["config"]["environment_variables"]["AZUREML_MODEL_DIR"] == str(model_dir)

    again = deploy(project)  # a rerun replaces its own link and output
    assert again.returncode == 0, again.stderr
    assert len((project / "out" / "predictions.csv").read_text().splitlines()) == 7


def test_settings_left_out_take_a_batch_deployments_defaults_not_a_pipeline_jobs(project):
    (project / "deployment.yml").write_text(textwrap.dedent("""\
        name: minimal
        endpoint_name: scorer-batch
        compute: azureml:batch-cluster
        type: model
        model:
          path: model
        code_configuration:
          code: code
          scoring_script: batch_driver.py
        """))
    document = load_deployment(project / "deployment.yml")
    plan = deployment_plan(project / "deployment.yml", document, (project / "data",), project / "out",
                           None, max_workers=2)
    config = plan.config
    assert (config.mini_batch_size, config.node_count, config.process_count_per_node) == (10, 1, 1)
    assert (config.run_max_try, config.run_invocation_timeout) == (DEFAULTS["max_retries"] + 1, 30)
    assert (config.error_threshold, config.logging_level, config.output_action) == (-1, "INFO", "append_row")
    assert config.append_row_to == project / "out" / "predictions.csv"
    assert not config.short_return_fails_mini_batch  # error_threshold -1 ignores failed items
    assert plan.model_dir == project / "out" / "azureml-models" / "model" / "1"  # named after its path


def test_a_registered_model_needs_a_local_copy_and_is_laid_out_under_its_name(project):
    text = DEPLOYMENT.replace("model:\n  name: doubler\n  path: model\n", "model: azureml:doubler@latest\n")
    (project / "deployment.yml").write_text(text)
    refused = deploy(project)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "model azureml:doubler@latest is registered in a workspace" in refused.stderr
    assert "--model PATH" in refused.stderr
    (project / "model").rename(project / "downloaded")
    result = deploy(project, "--model", "downloaded")
    assert result.returncode == 0, result.stderr
    assert (project / "out" / "azureml-models" / "doubler" / "1" / "downloaded").is_symlink()


@pytest.mark.parametrize("change, message", [
    (("mini_batch_size: 3", "mini_batch_size: three"), "settings.mini_batch_size"),
    (("type: model", "type: pipeline"), "a pipeline component deployment runs a pipeline"),
    (("  scoring_script: batch_driver.py\n", ""), "code_configuration.scoring_script: required locally"),
    (("output_action: append_row", "output_action: append_rows"), "output_action"),
    (("compute: azureml:batch-cluster\n", ""), "compute: Missing data for required field."),
    (("output_file_name: predictions.csv", "output_file_name: logs"), "other than the runner's own"),
])
def test_what_azure_would_refuse_or_cannot_run_here_is_one_line_exit_2(project, change, message):
    (project / "deployment.yml").write_text(DEPLOYMENT.replace(*change))
    result = deploy(project)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert message in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("exit 2: ")
    assert not (project / "out" / "predictions.csv").exists()


def test_summary_only_writes_no_output_file_and_job_flags_are_refused(project):
    (project / "deployment.yml").write_text(DEPLOYMENT.replace("output_action: append_row",
                                                               "output_action: summary_only"))
    result = deploy(project)
    assert result.returncode == 0, result.stderr
    assert not (project / "out" / "predictions.csv").exists()
    refused = deploy(project, "--mini_batch_size", "5")
    assert refused.returncode == 2
    assert "--deployment: --mini_batch_size cannot be given with a deployment" in refused.stderr


def test_a_registered_models_name_and_version_name_its_folder():
    assert registered_model("azureml:heart-classifier:3") == ("heart-classifier", "3")
    assert registered_model("azureml:heart-classifier@latest") == ("heart-classifier", "1")
    assert registered_model("azureml://registries/azureml/models/bert/versions/2") == ("bert", "2")


def test_something_of_the_users_where_the_models_link_goes_stops_the_run_before_anything_changes(project):
    assert deploy(project).returncode == 0
    before = (project / "out" / "predictions.csv").read_bytes()
    taken = project / "out" / "azureml-models" / "doubler" / "1"
    (taken / "model").unlink()
    (taken / "notes.txt").write_text("mine")
    result = deploy(project)
    assert (project / "out" / "predictions.csv").read_bytes() == before  # the previous run's, kept
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "notes.txt is in the way of the links the run makes" in result.stderr
    assert (taken / "notes.txt").read_text() == "mine" and sorted(taken.iterdir()) == [taken / "notes.txt"]


def test_a_refused_run_writes_nothing_and_a_second_run_never_swaps_a_running_runs_model(project):
    missing = invoke("orchestration.jobs.cli", "--deployment", "deployment.yml", "--input", "nothing",
                     "--output", "out", cwd=project)
    assert missing.returncode == 2 and not (project / "out").exists()
    assert deploy(project).returncode == 0
    link = project / "out" / "azureml-models" / "doubler" / "1" / "model"
    (project / "other").mkdir()
    (project / "other" / "model.pkl").write_bytes(pickle.dumps({"factor": 5.0}))
    with claim(project / "out", ()):  # a run holds the output
        busy = deploy(project, "--model", "other")
    assert busy.returncode == 2 and "in use by another run" in busy.stderr
    assert link.resolve() == project / "model"  # the running run's model, untouched


@pytest.mark.parametrize("model, message", [
    ("out/azureml-models", "overlaps --output"),
    (".", "overlaps --output"),
    ("data", "holds --input"),
])
def test_a_model_that_overlaps_the_output_or_an_input_is_refused(project, model, message):
    (project / "out" / "azureml-models").mkdir(parents=True)
    result = deploy(project, "--model", model)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert sorted(p.name for p in (project / "model").iterdir()) == ["model.pkl"]


@pytest.mark.parametrize("change, message", [
    (("  name: doubler\n", "  name: ../..\n"), "model name '../..': expected letters"),
    (("logging_level: info", "logging_level: verbose"), "settings.logging_level: expected one of"),
    (("resources:\n  instance_count: 2", "resources:\n  instance_count: 0"), "resources.instance_count"),
    (("output_file_name: predictions.csv", "output_file_name: .."), "output_file_name"),
])
def test_names_and_levels_azure_would_not_take_stop_the_run_before_it_starts(project, change, message):
    (project / "deployment.yml").write_text(DEPLOYMENT.replace(*change))
    result = deploy(project)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert not (project / "out").exists()


def test_a_run_with_failures_resumes_as_its_last_line_says(project):
    (project / "data" / "bad.txt").write_text("not a number")
    failed = deploy(project)
    assert failed.returncode == 0 and "2 failed items" in failed.stdout  # error_threshold -1: completed
    resumed = deploy(project, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming the run in" in resumed.stderr and "1 mini-batches to do" in resumed.stderr
    assert len((project / "out" / "predictions.csv").read_text().splitlines()) == 6
