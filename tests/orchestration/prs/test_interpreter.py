"""Workers and command nodes in another interpreter (--python, LOCAL_PYTHON): a fresh virtual environment
without the toolkit's packages, of another Python version where this machine has one."""
import glob
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import run_module


def other_python() -> str:
    """The oldest other CPython 3.8+ found, else this one's base interpreter (outside the toolkit's venv)."""
    mine = f"{sys.version_info.major}.{sys.version_info.minor}"
    for minor in range(8, 14):
        if f"3.{minor}" != mine:
            found = sorted(glob.glob(str(Path.home() / f".pyenv/versions/3.{minor}.*/bin/python3")))
            if found:
                return found[0]
    return sys._base_executable


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("foreign") / "venv"
    subprocess.run([other_python(), "-m", "venv", "--without-pip", str(folder)], check=True)
    return folder / "bin" / "python"


PIPELINE = """\
type: pipeline
jobs:
  where:
    type: command
    command: python -c "import sys; print(sys.prefix)" > ${{outputs.prefix}}
    outputs:
      prefix:
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
    max_concurrency_per_instance: 2
    task:
      type: run_function
      code: ./src
      entry_script: entry.py
      environment: azureml:AzureML-sklearn-1.0@latest
      append_row_to: ${{outputs.rows}}
"""

ENTRY = """\
import sys

def run(mini_batch):
    try:
        import pydantic  # in the toolkit's environment, not in the job's
        found = "pydantic"
    except ImportError:
        found = "no pydantic"
    return ["%d.%d %s %s" % (sys.version_info[:2] + (sys.prefix, found)) for _ in mini_batch]
"""


def test_a_job_runs_its_workers_and_command_nodes_in_the_given_interpreter(tmp_path, venv):
    (tmp_path / "pipeline.yml").write_text(PIPELINE)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "entry.py").write_text(ENTRY)
    (tmp_path / "data").mkdir()
    for name in "abc":
        (tmp_path / "data" / f"{name}.txt").write_text(name)
    result = run_module("orchestration.prs", "--job", "pipeline.yml", "--output", "out", "--python",
                        str(venv), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    version = subprocess.run([str(venv), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    prefix = str(venv.parent.parent)
    assert (tmp_path / "out" / "where" / "prefix").read_text().strip() == prefix
    assert (tmp_path / "out" / "score" / "rows").read_text().splitlines() == [
        f"{version} {prefix} no pydantic"] * 3


def test_an_interpreter_that_cannot_run_the_workers_is_named_before_any_worker_starts(tmp_path):
    broken = tmp_path / "python"
    broken.write_text(textwrap.dedent("""\
        #!/bin/sh
        echo "this is not Python" >&2
        exit 3
        """))
    broken.chmod(0o755)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("a")
    (tmp_path / "entry.py").write_text("def run(batch):\n    return batch\n")
    for python, reason in ((broken, "cannot run the workers: this is not Python"),
                           (tmp_path / "missing", "cannot be started: No such file or directory")):
        result = run_module("orchestration.prs", "--entry_script", "entry.py", "--input", "in", "--output",
                            "out", "--python", str(python), cwd=tmp_path)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert result.stderr.strip().splitlines()[-1] == f"exit 2: --python {python} {reason}"
        assert not (tmp_path / "out").exists()
