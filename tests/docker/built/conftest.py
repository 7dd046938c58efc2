"""The built images (`make docker-test` builds them and passes their names), and how to run them."""
from __future__ import annotations

import grp
import os
import pwd
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


HOST_UID = 1001  # a host user other than the image's uid 1000 (and root), when the tests run as root


def host_user(home: Path) -> tuple[int, tuple[str, ...]]:
    """A user other than root to run a command as (this one, unless the tests run as root), and the
    command prefix that runs it so, with the Docker socket's group. Root's tests make one (named, as the
    Dev Containers CLI needs) and remove it at the end of the session."""
    if os.geteuid() != 0:
        return os.getuid(), ("env", f"HOME={home}")
    if not any(entry.pw_uid == HOST_UID for entry in pwd.getpwall()):
        subprocess.run(["useradd", "--uid", str(HOST_UID), "--user-group", "--no-create-home", MADE_USER],
                       check=True)
    os.chown(home, HOST_UID, HOST_UID)
    return HOST_UID, ("setpriv", f"--reuid={HOST_UID}", f"--regid={HOST_UID}",
                      f"--groups={grp.getgrnam('docker').gr_gid}", "env", f"HOME={home}")


MADE_USER = f"toolkit-test-{HOST_UID}"


@pytest.fixture(scope="session", autouse=True)
def remove_the_made_user():
    yield
    if os.geteuid() == 0 and any(entry.pw_name == MADE_USER for entry in pwd.getpwall()):
        subprocess.run(["userdel", MADE_USER], check=True)
