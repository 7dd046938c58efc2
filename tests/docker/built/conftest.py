"""The built images (`make docker-test` builds them and passes their names), and how to run them."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def runtime_image(pytestconfig: pytest.Config) -> str:
    return pytestconfig.getoption("runtime_image")


@pytest.fixture(scope="session")
def dev_image(pytestconfig: pytest.Config) -> str:
    image = pytestconfig.getoption("dev_image")
    assert image, "--dev-image: make docker-test passes the dev image it built"
    return image


@pytest.fixture(scope="session")
def base_image(pytestconfig: pytest.Config) -> str:
    image = pytestconfig.getoption("base_image")
    assert image, "--base-image: make docker-test passes the base it built on"
    return image


def docker(*args: str, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, **kwargs)


def give_back(folder: Path, image: str) -> None:
    """Files a root container wrote into a mounted folder, handed back to a non-root user running the
    tests (so that pytest can remove them)."""
    if os.geteuid() != 0:
        docker("run", "--rm", "--volume", f"{folder}:/give", image, "chown", "-R",
               f"{os.getuid()}:{os.getgid()}", "/give")
