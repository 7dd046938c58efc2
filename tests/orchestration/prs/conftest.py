"""Helpers for runner tests: tiny input folders whose files tell the test entry script what to do."""
from __future__ import annotations

from pathlib import Path

import pytest

from orchestration.prs.config import RunConfig
from orchestration.prs.outputs import Summary
from orchestration.prs.scheduler import run_parallel

SCRIPTS = Path(__file__).resolve().parent / "scripts"
FAULTY = SCRIPTS / "faulty_entry.py"


def make_inputs(folder: Path, kinds: list[str]) -> list[str]:
    """One file per entry, named f00.txt, f01.txt, ...; its content is the kind. Returns the names."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for number, kind in enumerate(kinds):
        name = f"f{number:02d}.txt"
        (folder / name).write_text(kind + "\n")
        names.append(name)
    return names


@pytest.fixture
def markers(tmp_path: Path) -> Path:
    folder = tmp_path / "markers"
    folder.mkdir()
    return folder


def config(tmp_path: Path, markers: Path, script: Path = FAULTY, **values) -> RunConfig:
    settings = dict(
        entry_script=script, inputs=(tmp_path / "in",), output=tmp_path / "out", mini_batch_size=2,
        error_threshold=-1, node_count=1, process_count_per_node=2, max_workers=2, run_invocation_timeout=30,
        arguments=("--marker_dir", str(markers)), progress_interval=0.5,
    )
    settings.update(values)
    return RunConfig(**settings)


def run(tmp_path: Path, markers: Path, **values) -> Summary:
    return run_parallel(config(tmp_path, markers, **values))


def output_rows(tmp_path: Path, name: str = "parallel_run_step.txt") -> list[str]:
    return (tmp_path / "out" / name).read_text().splitlines()
