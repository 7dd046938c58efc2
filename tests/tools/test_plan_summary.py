"""make plan's summary: what a reviewer reads in a pull request, from the dry runs' own plans."""
import pytest

from orchestration.cloud import cli as cloud
from orchestration.commands import UsageError
from tools.plan_summary import PLANS, summary


@pytest.fixture
def plans(tmp_path, monkeypatch):
    """The three dry runs make plan runs, with settings a team changed."""
    for name, value in {"AML_COMPUTE_CLUSTER_NAME": "gpu-nodes", "NODE_COUNT": "4", "MINI_BATCH_SIZE": "7",
                        "INPUT_DIR": "incoming"}.items():
        monkeypatch.setenv(name, value)

    def write(image: str | None = None):
        image_flag = ["--image", image] if image else []
        for command, sdk, name in (("publish", "v1", PLANS["v1"]), ("publish", "v2", PLANS["v2"]),
                                   ("run", "v2", PLANS["run"])):
            flags = image_flag if command == "publish" else []
            assert cloud.main([command, "--sdk", sdk, "--dry-run", "--plan-file", str(tmp_path / name),
                               *flags]) == 0
        return tmp_path
    return write


def test_the_summary_shows_steps_in_order_compute_image_and_parallel_settings(plans):
    text = summary(plans())
    v1, v2 = text.split("### SDK v2")
    assert "on compute `gpu-nodes`" in v1 and "| `node_count` | `4` |" in v1
    assert "| `mini_batch_size` | `7` |" in v1 and "folder `incoming`" in v1
    assert "`preparation` (PythonScriptStep) → `extraction` (ParallelRunStep) → `training`" in v1
    assert "built by Azure ML from `docker/Dockerfile`" in v1
    assert "`preparation` (command) → `extraction` (parallel) → `training` (command)" in v2
    assert "| `resources` | `{\"instance_count\": 4}` |" in v2 and "| `mini_batch_size` | `7` |" in v2
    assert "compute `gpu-nodes`" in v2 and "paths/incoming" in v2
    assert "`azureml:batch-toolkit-env@latest` (built by `make publish`" in v2


def test_a_pushed_image_is_named_for_both_sdks(plans):
    text = summary(plans("myregistry.azurecr.io/toolkit:abc123"))
    assert text.count("Image: `myregistry.azurecr.io/toolkit:abc123`") == 2


def test_a_missing_plan_is_named(tmp_path):
    with pytest.raises(UsageError, match="PLAN_DIR: no publish-v1.json or publish-v2.yml in"):
        summary(tmp_path)


def test_one_sdk_planned_is_summarised_alone(plans, tmp_path):
    folder = plans()
    (folder / PLANS["v2"]).unlink()
    (folder / PLANS["run"]).unlink()
    text = summary(folder)
    assert "### SDK v1" in text and "### SDK v2" not in text


@pytest.mark.parametrize("content", ['{"dry_run": tr', "[]", '{"steps": []}'])
def test_a_plan_that_is_not_one_is_named_not_a_traceback(plans, content):
    folder = plans()
    (folder / PLANS["v1"]).write_text(content)
    with pytest.raises(UsageError, match=r"PLAN_DIR: .*publish-v1\.json|PLAN_DIR: a plan in"):
        summary(folder)
