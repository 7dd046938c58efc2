"""Every --dry-run either shows its plan without one network call, or is refused (exit 2) before any.

The credentials are set as for a real run (a service principal), so a command that ignored the flag
would authenticate: the refused network records it.
"""
import json

import pytest
import yaml

from orchestration.cloud import cli as cloud
from orchestration.errors import SettingsError, UsageError
from tests.orchestration.cloud.offline_v1 import WORKSPACE
from tools.make_data import load_bundled, write_files

CREDENTIALS = dict(**WORKSPACE, AZURE_TENANT_ID="tenant", AZURE_CLIENT_ID="app",
                   AZURE_CLIENT_SECRET="CLIENT-sentinel", AML_STORAGE_ACCOUNT_NAME="acct",
                   AML_STORAGE_ACCOUNT_KEY="S2V5LXNlbnRpbmVs", AML_BLOB_CONTAINER_NAME="raw-files",
                   INPUT_DIR="raw")


@pytest.fixture
def logged_in(wire, monkeypatch):
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    return wire


@pytest.mark.parametrize("sdk", ["v1", "v2"])
def test_a_dry_run_of_run_shows_the_submission_and_sends_nothing(logged_in, sdk, tmp_path, capsys):
    assert cloud.main(["run", "--dry-run", "--sdk", sdk, "--plan-file", "plan.txt"]) == 0
    assert logged_in.refused == []
    plan = (tmp_path / "plan.txt").read_text()
    if sdk == "v1":
        assert json.loads(plan)["would_submit"]["endpoint"] == "california-housing-endpoint"
    else:
        job = yaml.safe_load(plan)  # the job of the newest published component version
        assert job["type"] == "pipeline"
        assert job["jobs"]["california_housing_pipeline"]["component"] == \
            "azureml:california_housing_pipeline@latest"
    assert "exit 0: dry run: wrote" in capsys.readouterr().out


def test_a_dry_run_of_upload_counts_the_local_files_and_sends_nothing(logged_in, tmp_path, capsys):
    write_files(load_bundled()[:40], tmp_path / "data", count=4)
    assert cloud.main(["upload", "--dry-run", "--data-dir", "data"]) == 0
    assert logged_in.refused == []
    out, err = capsys.readouterr()
    plan = json.loads(out)["would_upload"]
    assert plan["files"] == 4 and plan["to"] == "raw-files/raw/"
    assert plan["bytes"] == sum(p.stat().st_size for p in (tmp_path / "data").glob("housing-*.txt"))
    assert "S2V5LXNlbnRpbmVs" not in out + err


@pytest.mark.parametrize("command", [["logs", "--run-id", "r1"], ["registry"]])
def test_a_command_that_only_reads_azure_refuses_a_dry_run(logged_in, command):
    with pytest.raises(UsageError, match=f"DRY_RUN: {command[0]} only reads what already exists"):
        cloud.main([*command, "--dry-run"])
    assert logged_in.refused == []


def test_a_plan_file_without_a_dry_run_is_refused_before_anything_is_sent(logged_in):
    with pytest.raises(UsageError, match="PLAN_FILE: only written by a dry run"):
        cloud.main(["run", "--plan-file", "plan.json"])
    assert logged_in.refused == []


def test_partition_keys_publish_dry_run_builds_the_dataset_offline_and_v2_names_why_it_cannot(
        logged_in, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PARTITION_KEYS", "store")
    monkeypatch.setenv("PARTITION_FORMAT", "{store}/{file_name}.txt")
    monkeypatch.chdir(tmp_path)
    assert cloud.main(["publish", "--dry-run", "--plan-file", "plan.json"]) == 0
    assert logged_in.refused == []  # the partitioned dataset was built without one call
    extract = json.loads((tmp_path / "plan.json").read_text())["steps"][1]
    assert extract["inputs"][0]["partition_format"] == "{store}/{file_name}.txt"
    assert extract["parallel_run_config"]["partition_keys"] == ["store"]
    with pytest.raises(SettingsError, match="PARTITION_KEYS: a v2 parallel job partitions an MLTable input"):
        cloud.main(["publish", "--dry-run", "--sdk", "v2"])
