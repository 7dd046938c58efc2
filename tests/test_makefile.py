"""The Makefile keeps the user's settings and never invents data in a mistyped folder."""
import os
import subprocess

from orchestration.paths import ROOT


def make(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)


def test_a_setting_from_the_environment_reaches_the_azure_targets_unchanged():
    # INPUT_DIR is the datastore folder setting: the recipes of upload/publish must see the user's value.
    shown = make("--eval", 'show-input-dir: ; @echo "$$INPUT_DIR"', "show-input-dir", INPUT_DIR="incoming")
    assert shown.stdout.strip() == "incoming", shown.stderr


def test_upload_generates_sample_data_only_into_the_default_folder():
    typo = make("-n", "upload", "DATA_DIR=data/datastore/rwa")
    assert "tools.make_data" not in typo.stdout
    assert "upload --data-dir data/datastore/rwa" in typo.stdout  # which reports the missing folder
    default = make("-n", "upload")
    assert "test -d data/datastore/raw || make data" in default.stdout


def test_docker_push_refuses_a_dry_run_before_building_or_pushing_anything():
    refused = make("docker-push", "DRY_RUN=1", "REGISTRY=example.azurecr.io")
    assert refused.returncode == 2
    assert "exit 2: DRY_RUN: docker-push has no dry run" in refused.stderr
    assert "docker build" not in refused.stdout and "docker push" not in refused.stdout
