"""The project's own v2 pipeline component, as `make publish SDK=v2 DRY_RUN=1` writes it, runs locally
unchanged and gives what `make local-run` gives: the same rows, the same model metrics."""
import json

from orchestration.local_pipeline import run_local_pipeline
from orchestration.settings import load_settings
from tests.conftest import invoke
from tools.make_data import load_bundled, write_files


def test_the_published_component_yaml_runs_locally_with_the_rows_and_metrics_of_local_run(tmp_path):
    write_files(load_bundled(), tmp_path / "datastore" / "raw", count=20)
    published = invoke("orchestration.cloud.cli", "--sdk", "v2", "--dry-run", "--plan-file", "component.yml",
                       "publish", cwd=tmp_path)
    assert published.returncode == 0, published.stderr
    code = [line.split(":", 1)[1].strip() for line in (tmp_path / "component.yml").read_text().splitlines()
            if line.strip().startswith("code:")]
    assert code and all(not path.startswith("/") for path in code)  # relative to the plan: runs anywhere
    job = invoke("orchestration.jobs.cli", "--job", "component.yml", "--output", "out",
                 "--set", f"inputs.raw={tmp_path / 'datastore' / 'raw'}", cwd=tmp_path)
    assert job.returncode == 0, job.stdout + job.stderr
    closing = job.stdout.strip().splitlines()[-1]
    assert closing.startswith("exit 0: job california_housing_pipeline ran: preparation (command, ")
    assert "extraction (parallel, " in closing and f"node outputs in {tmp_path / 'out'}" in closing

    local = run_local_pipeline(load_settings(env_file=None), tmp_path / "datastore" / "raw",
                               tmp_path / "local")
    results = tmp_path / "out"  # the component's outputs have no path: each is its node's output folder
    assert (results / "extraction" / "extracted").read_bytes() == \
        (tmp_path / "local" / "extraction" / "extraction_output.txt").read_bytes()
    metrics = json.loads((results / "training" / "model_dir" / "metrics.json").read_text())
    assert (metrics["r2"], metrics["rmse"], metrics["n_test"]) == (local.metrics.r2, local.metrics.rmse, 4128)
    assert round(metrics["r2"], 4) == 0.5758
