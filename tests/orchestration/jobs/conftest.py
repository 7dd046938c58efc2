"""A small v2 pipeline written from the documented schema: command -> parallel -> command."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

PIPELINE = """\
$schema: https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json
type: pipeline
name: demo
experiment_name: local-jobs
settings:
  default_compute: azureml:cpu-cluster
inputs:
  raw:
    type: uri_folder
    path: ./raw
  greeting: hello
outputs:
  scored:
    type: uri_file
    path: azureml://datastores/${{default_datastore}}/paths/scored/${{name}}/rows.txt
jobs:
  report:  # listed first, runs last: its input is the parallel node's output
    type: command
    code: ./src
    command: python count.py ${{inputs.rows}} ${{outputs.summary}}
    environment: azureml:AzureML-sklearn-1.0@latest
    inputs:
      rows: ${{parent.jobs.score.outputs.rows}}
    outputs:
      summary:
        type: uri_file
  split:
    type: command
    component: ./components/split.yml
    inputs:
      raw: ${{parent.inputs.raw}}
      prefix: ${{parent.inputs.greeting}}
  score:
    type: parallel
    compute: azureml:cpu-cluster
    inputs:
      data:
        type: uri_folder
        mode: ro_mount
        path: ${{parent.jobs.split.outputs.parts}}
      factor: 3
    outputs:
      rows: ${{parent.outputs.scored}}
    input_data: ${{inputs.data}}
    mini_batch_size: "2"
    resources:
      instance_count: 2
    max_concurrency_per_instance: 1
    error_threshold: -1
    logging_level: INFO
    retry_settings:
      max_retries: 0
      timeout: 30
    environment_variables:
      GREETING_SOURCE: yaml
    task:
      type: run_function
      code: ./src
      entry_script: score.py
      environment: azureml:AzureML-sklearn-1.0@latest
      program_arguments: >-
        --factor ${{inputs.factor}} --allowed_failed_percent 50 --task_overhead_timeout 30
      append_row_to: ${{outputs.rows}}
"""

SPLIT_COMPONENT = """\
$schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json
type: command
name: split
version: "1"
inputs:
  raw:
    type: uri_folder
  prefix:
    type: string
  suffix:
    type: string
    optional: true
outputs:
  parts:
    type: uri_folder
code: ../src
environment: azureml:AzureML-sklearn-1.0@latest
command: >-
  python split.py --raw ${{inputs.raw}} --prefix ${{inputs.prefix}} $[[--suffix ${{inputs.suffix}}]]
  --out ${{outputs.parts}}
"""

SPLIT = """\
import argparse, pathlib
parser = argparse.ArgumentParser()
parser.add_argument("--raw"); parser.add_argument("--prefix"); parser.add_argument("--out")
args = parser.parse_args()
number = 0
for path in sorted(pathlib.Path(args.raw).iterdir()):
    for line in path.read_text().split():
        (pathlib.Path(args.out) / f"part{number:02d}.txt").write_text(f"{args.prefix} {line}")
        number += 1
"""

SCORE = """\
import argparse, os, pathlib

def init():
    global factor
    parser = argparse.ArgumentParser()
    parser.add_argument("--factor", type=int)
    factor = parser.parse_known_args()[0].factor

def run(mini_batch):
    return [f"{pathlib.Path(p).name} {pathlib.Path(p).read_text()} x{factor} {os.environ['GREETING_SOURCE']}"
            for p in mini_batch]
"""

COUNT = """\
import pathlib, sys
rows = pathlib.Path(sys.argv[1]).read_text().splitlines()
pathlib.Path(sys.argv[2]).write_text(f"{len(rows)} rows\\n")
"""


def write_pipeline(root: Path, pipeline: str = PIPELINE) -> Path:
    """The pipeline, its component, its code and 2 raw files of 3 and 2 words, under root."""
    files = {
        "pipeline.yml": pipeline, "components/split.yml": SPLIT_COMPONENT, "src/split.py": SPLIT,
        "src/score.py": SCORE, "src/count.py": COUNT,
        "raw/a.txt": "one two three\n", "raw/b.txt": "four five\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    return root / "pipeline.yml"


@pytest.fixture
def pipeline(tmp_path: Path) -> Path:
    return write_pipeline(tmp_path / "job")
