"""`--container IMAGE`: the workers and a job's nodes run in the image, the runner stays here. The same rows
as a run on this machine; files owned by the calling user; nothing of the run's left running after it."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from orchestration.paths import ROOT
from orchestration.prs.container import LABEL
from tests.conftest import clean_env
from tests.docker.built.conftest import docker
from tests.orchestration.jobs.conftest import write_pipeline
from tools.make_data import load_bundled, write_files

ENTRY = ROOT / "src" / "steps" / "extract_entry.py"

SLEEPY = """\
import time
from pathlib import Path

def init():
    pass

def run(mini_batch):
    for path in mini_batch:
        if Path(path).read_text() == "hang":
            print("hanging in run()", flush=True)  # to its stdout log, for a test to wait on
            time.sleep(600)
    return [Path(path).name for path in mini_batch]
"""


def runner(*args: str, cwd: Path, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, sys.executable, "-m", "orchestration.prs", *args], cwd=cwd,
                          env=clean_env(), capture_output=True, text=True, timeout=900)


def containers_left() -> list[str]:
    return docker("ps", "--all", "--quiet", "--filter", f"label={LABEL}").stdout.split()


def rows(path: Path) -> list[str]:
    return sorted(path.read_text().splitlines())


def test_workers_in_the_image_give_the_rows_of_a_host_run(runtime_image, tmp_path):
    raw = tmp_path / "raw"
    write_files(load_bundled()[:2000], raw, count=40)
    here = runner("--entry_script", str(ENTRY), "--input", str(raw), "--output", "here",
                  "--mini_batch_size", "3", cwd=tmp_path)
    assert here.returncode == 0, here.stderr
    inside = runner("--entry_script", str(ENTRY), "--input", str(raw), "--output", "inside",
                    "--mini_batch_size", "3", "--container", runtime_image, cwd=tmp_path)
    assert inside.returncode == 0, inside.stderr
    assert inside.stdout.strip().splitlines()[-1].startswith("exit 0: ")
    produced = rows(tmp_path / "inside" / "extraction_output.txt")
    assert len(produced) == 2000 and produced == rows(tmp_path / "here" / "extraction_output.txt")
    assert containers_left() == []


def test_what_the_workers_write_is_the_callers_whatever_user_the_image_runs_as(dev_image, tmp_path):
    # The dev image runs as its own user (uid 1000); the workers run as the caller all the same.
    assert docker("run", "--rm", dev_image, "id", "-u").stdout.strip() == "1000" != str(os.getuid())
    raw = tmp_path / "raw"
    write_files(load_bundled()[:100], raw, count=4)
    inside = runner("--entry_script", str(ENTRY), "--input", str(raw), "--output", "inside",
                    "--container", dev_image, cwd=tmp_path)
    assert inside.returncode == 0, inside.stderr
    written = list((tmp_path / "inside").rglob("*"))
    assert len(rows(tmp_path / "inside" / "extraction_output.txt")) == 100
    assert written and {p.lstat().st_uid for p in written} == {os.getuid()}
    assert containers_left() == []


SCORING = """\
import glob, os


def init():
    global factor
    with open(glob.glob(os.environ["AZUREML_MODEL_DIR"] + "/*/factor.txt")[-1]) as handle:
        factor = float(handle.read())


def run(mini_batch):
    return [f"{os.path.basename(path)} {float(open(path).read()) * factor}" for path in mini_batch]
"""

DEPLOYMENT = """\
name: scorer
endpoint_name: scorer-batch
type: model
model:
  name: scaler
  path: ../models/scaler
code_configuration:
  code: code
  scoring_script: score.py
compute: azureml:batch-cluster
settings:
  mini_batch_size: 2
  max_concurrency_per_instance: 2
"""


def test_a_batch_deployment_finds_its_model_in_the_image_as_on_this_machine(runtime_image, tmp_path):
    # The model lies outside the deployment's folder and the output: the link in AZUREML_MODEL_DIR
    # resolves in the container only if the model itself is mounted.
    (tmp_path / "models" / "scaler").mkdir(parents=True)
    (tmp_path / "models" / "scaler" / "factor.txt").write_text("3")
    (tmp_path / "deploy" / "code").mkdir(parents=True)
    (tmp_path / "deploy" / "code" / "score.py").write_text(SCORING)
    (tmp_path / "deploy" / "deployment.yml").write_text(DEPLOYMENT)
    (tmp_path / "data").mkdir()
    for number in range(5):
        (tmp_path / "data" / f"{number}.txt").write_text(str(number))
    command = ("--deployment", "deploy/deployment.yml", "--input", "data")
    here = runner(*command, "--output", "here", cwd=tmp_path)
    assert here.returncode == 0, here.stderr
    inside = runner(*command, "--output", "inside", "--container", runtime_image, cwd=tmp_path)
    assert inside.returncode == 0, inside.stderr
    produced = rows(tmp_path / "inside" / "predictions.csv")
    assert produced == [f"{n}.txt {3.0 * n}" for n in range(5)] == rows(tmp_path / "here" / "predictions.csv")
    assert containers_left() == []


def sleepy_run(folder: Path, files: dict[str, str]) -> None:
    """SLEEPY as folder/sleepy.py, and folder/data with `files` (name: "fine" or "hang")."""
    (folder / "data").mkdir()
    for name, text in files.items():
        (folder / "data" / name).write_text(text)
    (folder / "sleepy.py").write_text(SLEEPY)


def hanging(output: Path) -> int:
    """How many workers SLEEPY has said are hanging in run()."""
    logs = (output / "logs" / "user" / "stdout").rglob("*.txt")
    return sum(log.read_text().count("hanging in run()") for log in logs)


def test_a_worker_past_its_timeout_is_killed_with_its_container_and_the_run_goes_on(runtime_image, tmp_path):
    sleepy_run(tmp_path, {"a": "fine", "b": "fine", "c": "fine", "slow": "hang"})
    result = runner("--entry_script", "sleepy.py", "--input", "data", "--output", "out", "--mini_batch_size",
                    "1", "--run_invocation_timeout", "5", "--run_max_try", "1", "--container", runtime_image,
                    cwd=tmp_path)
    assert result.returncode == 0, result.stderr  # one failed mini-batch of 4 is within the default limits
    assert rows(tmp_path / "out" / "extraction_output.txt") == ["a", "b", "c"]
    summary = json.loads((tmp_path / "out" / "logs" / "summary.json").read_text())
    assert summary["items"]["failed"] == 1 and "run() exceeded 5s, worker" in result.stderr
    assert containers_left() == []


def test_ctrl_c_stops_a_run_in_containers_as_any_run_and_leaves_no_container(runtime_image, tmp_path):
    sleepy_run(tmp_path, {"a": "hang", "b": "hang", "c": "hang"})
    command = ["--entry_script", "sleepy.py", "--input", "data", "--output", "out", "--mini_batch_size", "1",
               "--container", runtime_image]
    run = subprocess.Popen([sys.executable, "-m", "orchestration.prs", *command], cwd=tmp_path,
                           env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while hanging(tmp_path / "out") < 2 and time.monotonic() < deadline:  # both workers are in run()
        time.sleep(0.1)
    run.send_signal(signal.SIGINT)
    out, _ = run.communicate(timeout=120)
    assert run.returncode == 130
    assert out.strip().splitlines()[-1].startswith("exit 130: stopped; run again with --resume")
    assert containers_left() == []


def test_a_job_runs_its_command_and_parallel_nodes_in_the_image_with_the_hosts_outputs(runtime_image,
                                                                                       tmp_path):
    job = write_pipeline(tmp_path / "job")  # command (split) -> parallel (score) -> command (report)
    here = runner("--job", str(job), "--output", "here", cwd=tmp_path)
    assert here.returncode == 0, here.stderr
    inside = runner("--job", str(job), "--output", "inside", "--container", runtime_image, cwd=tmp_path)
    assert inside.returncode == 0, inside.stderr
    outputs = ["split/parts/part00.txt", "split/parts/part04.txt",
               "datastores/workspaceblobstore/scored/demo/rows.txt", "report/summary"]
    for output in outputs:
        assert (tmp_path / "inside" / output).read_text() == (tmp_path / "here" / output).read_text()
    assert (tmp_path / "inside" / "report" / "summary").read_text() == "5 rows\n"
    assert containers_left() == []
