"""The project's own v2 pipeline, as `make publish SDK=v2 DRY_RUN=1` writes it, runs locally unchanged and
gives what `make local-run` gives: the same rows, the same model metrics."""
import json

from orchestration.local_pipeline import run_local_pipeline
from orchestration.settings import load_settings
from tests.conftest import invoke
from tools.make_data import load_bundled, write_files


def test_the_published_job_yaml_runs_locally_with_the_rows_and_metrics_of_local_run(tmp_path):
    write_files(load_bundled(), tmp_path / "datastore" / "raw", count=20)
    published = invoke("orchestration.cloud.cli", "--sdk", "v2", "--dry-run", "--plan-file", "job.yml",
                       "publish", cwd=tmp_path)
    assert published.returncode == 0, published.stderr
    code = [line.split(":", 1)[1].strip() for line in (tmp_path / "job.yml").read_text().splitlines()
            if line.strip().startswith("code:")]
    assert code and all(not path.startswith("/") for path in code)  # relative to the plan: runs anywhere
    job = invoke("orchestration.jobs.cli", "--job", "job.yml", "--output", "out", "--datastore",
                 f"california_housing={tmp_path / 'datastore'}", cwd=tmp_path)
    assert job.returncode == 0, job.stdout + job.stderr
    assert job.stdout.strip().splitlines()[-1].startswith(
        "exit 0: job job ran: preparation (command, ") and "extraction (parallel, " in job.stdout
    closing = job.stdout.strip().splitlines()[-1]  # names where the outputs went: the datastore's folder
    assert f"in {tmp_path / 'datastore' / 'outputs' / 'job' / 'extraction_output.txt'}" in closing

    local = run_local_pipeline(load_settings(env_file=None), tmp_path / "datastore" / "raw",
                               tmp_path / "local")
    results = tmp_path / "datastore" / "outputs" / "job"  # the outputs' datastore path; ${{name}} is job
    assert (results / "extraction_output.txt").read_bytes() == \
        (tmp_path / "local" / "extraction" / "extraction_output.txt").read_bytes()
    metrics = json.loads((results / "training" / "metrics.json").read_text())
    assert (metrics["r2"], metrics["rmse"], metrics["n_test"]) == (local.metrics.r2, local.metrics.rmse, 4128)
    assert round(metrics["r2"], 4) == 0.5758
