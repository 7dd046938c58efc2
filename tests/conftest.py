"""Shared fixtures: every test runs in its own folder, with no toolkit setting leaking in from outside."""
from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestration.commands import run_main
from orchestration.interrupts import STOP_SIGNALS
from orchestration.paths import ROOT, SRC  # noqa: F401  (tests import them from here)
from orchestration.settings import Settings


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("images", "the built images (make docker-test passes these)")
    group.addoption("--runtime-image", help="the runtime image to test (tests/docker/built)")
    group.addoption("--dev-image", help="the dev image to test")
    group.addoption("--base-image", help="the base both were built on (the pinned one or the stand-in)")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """tests/docker/built needs the images: `make docker-test` builds them and runs it; `make test` does
    not collect it (not a skip: it is not part of that run)."""
    built = Path(__file__).parent / "docker" / "built"
    if collection_path == built and not config.getoption("runtime_image"):
        return True
    return None


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """cwd is an empty folder (so no developer's .env is read) and no setting comes from the environment."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield tmp_path
    root.handlers[:] = handlers  # a command run in-process set up its logging: it ends with the test
    root.setLevel(level)


def clean_env(**values: str) -> dict[str, str]:
    """The current environment without toolkit settings, plus `values`, with src/ and the root importable."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), str(ROOT)])
    env.update(values)
    return env


def run_module(
    module: str, *args: str, cwd: Path, timeout: float = 300, **env: str
) -> subprocess.CompletedProcess:
    """Runs `python -m module args` as a user would, capturing its output."""
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd, env=clean_env(**env), capture_output=True,
        text=True, timeout=timeout,
    )


def invoke(module: str, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """Runs `module`'s main(args) in this process, ending as its `python -m` command ends (the exit code
    and closing line of orchestration.commands.run_main), with its stdout and stderr captured at the file
    descriptors, so that what its child processes print is there too, in order: the command's behaviour
    without an interpreter's start-up. What only a process shows (its entry point, signals, the exit
    itself) is tested with run_module. `env` is added to the environment for the call."""
    main = importlib.import_module(module).main
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    dispositions = {number: signal.getsignal(number) for number in STOP_SIGNALS}  # a run may ignore them
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    environ = dict(os.environ)
    os.environ.update(env)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            os.dup2(out.fileno(), 1)
            os.dup2(err.fileno(), 2)
            streams = [io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), write_through=True,
                                        errors="backslashreplace") for fd in (1, 2)]
            with contextlib.chdir(cwd), contextlib.redirect_stdout(streams[0]), \
                    contextlib.redirect_stderr(streams[1]):
                code = run_main(lambda: main(list(args)))
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            root.handlers[:] = handlers
            root.setLevel(level)
            for number, disposition in dispositions.items():
                signal.signal(number, disposition)
            os.environ.clear()
            os.environ.update(environ)
        texts = []
        for file in (out, err):
            file.seek(0)
            texts.append(file.read().decode(errors="backslashreplace"))
    return subprocess.CompletedProcess([module, *args], code, *texts)


def record_text(record_id: int, **overrides: str) -> str:
    """One well-formed record block; `overrides` replace values (or use None-like '' to drop a line)."""
    values = {
        "id": str(record_id), "MedInc": "8.3252", "HouseAge": "41.0", "AveRooms": "6.984126984126984",
        "AveBedrms": "1.0238095238095237", "Population": "322.0", "AveOccup": "2.5555555555555554",
        "Latitude": "37.88", "Longitude": "-122.23", "MedHouseVal": "4.526",
    }
    values.update(overrides)
    return "".join(f"{k}: {v}\n" for k, v in values.items() if v != "")


from tests.azurite import azurite  # noqa: E402,F401  (the Azurite fixture, shared by every test)
from tests.network import wire  # noqa: E402,F401  (the network refused at the transports)
