"""The dev container, brought up from .devcontainer/devcontainer.json by the Dev Containers CLI as VS Code
brings it up: for a host user whose uid is not the image's 1000 (the CLI then gives the container's user
the host's uid, as VS Code does), `postCreateCommand` succeeds and `make lint test` passes inside, as that
user, on a copy of this working tree."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from orchestration.paths import ROOT
from tests.azurite import NODE
from tests.docker.built.conftest import docker, host_user
from tests.docker.test_image_consistency import devcontainer
from tools.docker_base import pinned_base

DEVCONTAINER = ROOT / os.environ.get("DEVCONTAINER", "tools/npm/node_modules/.bin/devcontainer")


def working_tree(target: Path) -> None:
    """The files git would commit (tracked and new, nothing ignored), as a fresh clone has them."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


@pytest.fixture
def workspace(base_image: str):
    """A copy of this working tree owned by the host user, its CLI command, and the container's label."""
    top = Path(tempfile.mkdtemp(prefix="toolkit-docker-test-"))  # not under pytest's root-only folder
    folder, home = top / "workspace", top / "home"
    working_tree(folder)
    home.mkdir()
    uid, prefix = host_user(home)
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", f"{uid}:{uid}", str(top)], check=True)
    label = f"toolkit.docker-test={uuid.uuid4().hex}"
    # The CLI and the lock's node, copied where that user can reach them (a clone may lie in a folder
    # only its owner can enter); its cache in TMPDIR goes with the rest.
    cli = top / "cli"
    shutil.copytree(DEVCONTAINER.resolve().parent, cli)
    shutil.copy2(NODE.resolve(), cli / "node")
    command = [*prefix, f"TMPDIR={home}", str(cli / "node"), str(cli / DEVCONTAINER.resolve().name)]
    options = ["--workspace-folder", str(folder), "--id-label", label]
    if base_image != pinned_base():
        # The pinned base cannot be pulled here: the same configuration, on the stand-in base.
        config = devcontainer()  # the working tree's, which the workspace copies
        config["build"]["args"] = {"BASE_IMAGE": base_image}
        override = folder / ".devcontainer" / "on-the-stand-in-base.json"
        override.write_text(json.dumps(config, indent=2))
        options += ["--override-config", str(override)]
    yield folder, uid, command, options, label, top
    containers = docker("ps", "--all", "--quiet", "--filter", f"label={label}").stdout.split()
    images = {docker("inspect", "--format", "{{.Config.Image}}", c).stdout.strip() for c in containers}
    if containers:
        docker("rm", "--force", *containers)
    for image in images:  # the CLI's build of the dev stage, and its copy with the host user's uid
        docker("image", "rm", image, image.removesuffix("-uid"))
    shutil.rmtree(top)


@pytest.mark.timeout(2400)
def test_the_dev_container_comes_up_for_another_uid_and_make_lint_test_passes_inside(workspace):
    folder, uid, command, options, label, top = workspace
    up = subprocess.run([*command, "up", *options], capture_output=True, text=True, timeout=1800, cwd=top)
    assert up.returncode == 0, up.stderr[-3000:]
    outcome = json.loads(up.stdout.strip().splitlines()[-1])
    assert outcome["outcome"] == "success" and outcome["remoteUser"] == "toolkit"

    def inside(*args: str, timeout: float = 1500) -> subprocess.CompletedProcess:
        return subprocess.run([*command, "exec", *options, *args], capture_output=True, text=True,
                              timeout=timeout, cwd=top)

    whoami = inside("sh", "-c", "id -u; echo $VENV; node --version; command -v node")
    assert whoami.returncode == 0, whoami.stderr
    container_uid, venv, node_version, node = whoami.stdout.split()
    assert int(container_uid) == uid  # the host user's uid, as VS Code gives it
    assert venv == "/home/toolkit/.venv" and node == f"{venv}/node/bin/node"
    assert node_version == subprocess.run([str(NODE), "--version"], capture_output=True,
                                          text=True).stdout.strip()  # the lock's Node.js, as here

    # postCreateCommand (make install) wrote into the workspace as that user
    assert (folder / "src" / "azureml_batch_toolkit.egg-info").stat().st_uid == uid

    checked = inside("make", "lint", "test")
    assert checked.returncode == 0, (checked.stdout + checked.stderr)[-5000:]
    assert " passed" in checked.stdout and " failed" not in checked.stdout
    assert (folder / "tools" / "npm" / "node_modules").stat().st_uid == uid
