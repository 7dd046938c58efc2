"""The v2 mapping both ways: what `make publish SDK=v2` writes for the settings, read back by the job
runner, gives the RunConfig the settings give a local run, field by field (orchestration.parallel_fields)."""
from orchestration.jobs.loading import load
from orchestration.jobs.locations import DATASTORES_FOLDER, Datastores
from orchestration.jobs.nodes import Binder, execution_order
from orchestration.jobs.parallel_node import parallel_plan
from orchestration.parallel_fields import FIELDS, SETTING_DEFAULTS
from orchestration.prs.config import RunConfig
from orchestration.settings import load_settings
from tests.conftest import invoke

CHANGED = {  # every field with a v2 counterpart, none at its default
    "MINI_BATCH_SIZE": "7", "ERROR_THRESHOLD": "3", "ALLOWED_FAILED_COUNT": "4",
    "ALLOWED_FAILED_PERCENT": "12.5", "NODE_COUNT": "3", "PROCESS_COUNT_PER_NODE": "5",
    "RUN_INVOCATION_TIMEOUT": "45", "RUN_MAX_TRY": "6", "LOGGING_LEVEL": "DEBUG",
}


def test_the_published_v2_job_read_back_gives_the_settings_run_config(tmp_path, monkeypatch):
    for name, value in CHANGED.items():
        monkeypatch.setenv(name, value)
    published = invoke("orchestration.cloud.cli", "--sdk", "v2", "--dry-run", "--plan-file", "component.yml",
                       "publish", cwd=tmp_path)
    assert published.returncode == 0, published.stderr
    job = load(tmp_path / "component.yml")
    out = tmp_path / "out"
    datastores = Datastores(out / DATASTORES_FOLDER, {})
    binder = Binder(job, out, datastores, {})
    (node,) = [node for node in map(binder.bind, execution_order(job)) if node.kind == "parallel"]
    read_back = parallel_plan(node, datastores, max_workers=2).config
    settings = load_settings(env_file=None)
    local = RunConfig.from_settings(settings, entry_script=read_back.entry_script, inputs=read_back.inputs,
                                    output=read_back.output)
    mapped = [f.name for f in FIELDS if f.v2 is not None]
    assert set(mapped) == {name.lower() for name in CHANGED}
    assert all(str(SETTING_DEFAULTS[name.lower()]) != value for name, value in CHANGED.items())
    assert {name: getattr(read_back, name) for name in mapped} == {
        name: getattr(local, name) for name in mapped}
    # the fields v2 binds to the output instead: the merged file is the node's append_row_to
    assert read_back.output_action == "append_row"
    # ... under the output's own name: the component gives it no path (the run job names the file:
    # APPEND_ROW_FILE_NAME, tests/orchestration/cloud/test_harness_v2.py)
    assert read_back.output_file.name == "extracted"
