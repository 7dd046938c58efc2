"""One MLflow store per run: MLFLOW_TRACKING_URI points every worker and command node at the run's own
store (OUTPUT/mlruns for a job, OUTPUT/logs/mlruns for a runner run), unless the user set one; MLflow
then never writes ./mlruns into a worker's folder or the user's code."""
import textwrap

from orchestration.prs.config import RunConfig
from orchestration.prs.scheduler import run_parallel
from tests.conftest import invoke

JOB = """\
type: pipeline
jobs:
  note:
    type: command
    code: ./src
    command: echo "$MLFLOW_TRACKING_URI" > ${{outputs.uri}}
    environment: azureml:AzureML-sklearn-1.0@latest
    outputs:
      uri:
        type: uri_file
  score:
    type: parallel
    inputs:
      data:
        type: uri_folder
        path: ./data
    outputs:
      rows:
        type: uri_file
    input_data: ${{inputs.data}}
    mini_batch_size: "1"
    task:
      type: run_function
      code: ./src
      entry_script: tracking.py
      append_row_to: ${{outputs.rows}}
      environment: azureml:AzureML-sklearn-1.0@latest
"""

TRACKING = """\
import os


def run(mini_batch):
    return [os.environ["MLFLOW_TRACKING_URI"] for _ in mini_batch]
"""


def write_job(root):
    (root / "src").mkdir(parents=True)
    (root / "src" / "tracking.py").write_text(TRACKING)
    (root / "data").mkdir()
    for name in ("a.txt", "b.txt"):
        (root / "data" / name).write_text(name)
    (root / "job.yml").write_text(textwrap.dedent(JOB))
    return root / "job.yml"


def test_every_node_of_a_job_logs_to_the_jobs_one_store_and_a_rerun_starts_a_new_one(tmp_path):
    job = write_job(tmp_path)
    result = invoke("orchestration.jobs.cli", "--job", str(job), "--output", "out", cwd=tmp_path,
                    MLFLOW_TRACKING_URI="")
    assert result.returncode == 0, result.stdout + result.stderr
    store = (tmp_path / "out" / "mlruns").as_uri()
    assert (tmp_path / "out" / "note" / "uri").read_text().strip() == store
    assert (tmp_path / "out" / "score" / "rows").read_text().splitlines() == [store, store]
    assert sorted(p.name for p in (tmp_path / "src").iterdir()) == ["tracking.py"]  # no mlruns, no bytecode

    (tmp_path / "out" / "mlruns").mkdir(exist_ok=True)
    (tmp_path / "out" / "mlruns" / "run-of-the-first").write_text("1")
    again = invoke("orchestration.jobs.cli", "--job", str(job), "--output", "out", cwd=tmp_path,
                   MLFLOW_TRACKING_URI="")
    assert again.returncode == 0, again.stderr
    assert not (tmp_path / "out" / "mlruns" / "run-of-the-first").exists()


def test_a_tracking_uri_the_user_set_is_kept(tmp_path):
    job = write_job(tmp_path)
    result = invoke("orchestration.jobs.cli", "--job", str(job), "--output", "out", cwd=tmp_path,
                    MLFLOW_TRACKING_URI="http://127.0.0.1:5000")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "note" / "uri").read_text().strip() == "http://127.0.0.1:5000"
    assert set((tmp_path / "out" / "score" / "rows").read_text().splitlines()) == {"http://127.0.0.1:5000"}


def test_a_runner_run_logs_to_a_store_in_its_logs(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    write_job(tmp_path)
    summary = run_parallel(RunConfig(entry_script=tmp_path / "src" / "tracking.py",
                                     inputs=(tmp_path / "data",), output=tmp_path / "out", mini_batch_size=1,
                                     max_workers=2))
    assert summary.exit_code == 0
    store = (tmp_path / "out" / "logs" / "mlruns").as_uri()
    assert (tmp_path / "out" / "parallel_run_step.txt").read_text().splitlines() == [store, store]
