"""One table of ParallelRunConfig fields drives the runner's flags, RunConfig, the driver argv, the
fingerprint, the v1 plan and the v2 mapping."""
import dataclasses
from pathlib import Path

from orchestration.cloud.pipeline_v1 import pipeline_plan
from orchestration.cloud.pipeline_v2 import parallel_settings
from orchestration.parallel_fields import FIELD_NAMES, FIELDS, v1_values, v2_values
from orchestration.prs.cli import build_parser
from orchestration.prs.config import RunConfig
from orchestration.settings import Settings, load_settings


def test_every_field_is_a_setting_a_flag_and_a_run_config_attribute():
    flags = {action.dest for action in build_parser()._actions}
    attributes = {f.name for f in dataclasses.fields(RunConfig)}
    for name in FIELD_NAMES:
        assert name in Settings.model_fields and name in flags and name in attributes, name


def test_the_v1_plan_carries_every_field_as_the_settings_hold_it():
    settings = load_settings(env_file=None, MINI_BATCH_SIZE="10KB", RUN_MAX_TRY=4)
    config = pipeline_plan(settings)["steps"][1]["parallel_run_config"]
    expected = {f.name: f.to_v1(getattr(settings, f.name)) for f in FIELDS}
    assert {name: config[name] for name in FIELD_NAMES} == expected
    assert config["partition_keys"] is None and config["mini_batch_size"] == "10KB"
    keyed = v1_values(load_settings(env_file=None, PARTITION_KEYS=" store, brand"))
    assert keyed["partition_keys"] == ["store", "brand"] and keyed["mini_batch_size"] is None  # exclusive


def test_the_v2_mapping_converts_and_leaves_out_only_what_v2_binds():
    settings = load_settings(env_file=None, MINI_BATCH_SIZE="10KB", RUN_MAX_TRY=4,
                             ALLOWED_FAILED_PERCENT=12.5)
    mapped = v2_values(settings)
    assert mapped["mini_batch_size"] == "10240"
    assert mapped["retry_settings"] == {"max_retries": 3, "timeout": 60}
    assert mapped["program_arguments"] == "--allowed_failed_percent 12.5"
    unmapped = {f.name for f in FIELDS if f.v2 is None}
    # append_row_to and the output's path; partition keys need an MLTable input in v2 (refused to publish)
    assert unmapped == {"output_action", "append_row_file_name", "partition_keys"}
    assert parallel_settings(settings)["append_row_to"] == "${{outputs.extracted}}"


def test_the_driver_argv_and_the_fingerprint_follow_the_table(tmp_path):
    script = tmp_path / "entry.py"
    script.write_text("def run(batch):\n    return batch\n")
    config = RunConfig.from_settings(load_settings(env_file=None, ALLOWED_FAILED_PERCENT=12.5),
                                     entry_script=script, inputs=(tmp_path,), output=tmp_path / "out")
    argv = config.driver_argv()
    pairs = dict(zip(argv, argv[1:]))
    for field in FIELDS:
        if field.driver is not None:
            assert pairs[f"--{field.name}"] == field.driver.format(getattr(config, field.name))
    assert pairs["--allowed_failed_percent"] == "12.5"
    assert pairs["--append_row_file_name"] == "extraction_output.txt"
    shaping = dataclasses.replace(config, mini_batch_size=7)
    tolerant = dataclasses.replace(config, error_threshold=-1)
    assert shaping.result_fingerprint() != config.result_fingerprint() == tolerant.result_fingerprint()
    assert isinstance(config.output, Path)


def test_the_driver_argv_keeps_the_services_exact_order(tmp_path):
    script = tmp_path / "entry.py"
    script.write_text("def run(batch):\n    return batch\n")
    config = RunConfig.from_settings(load_settings(env_file=None), entry_script=script, inputs=(tmp_path,),
                                     output=tmp_path / "out")
    flags = [a for a in config.driver_argv() if a.startswith("--")]
    assert flags == [  # shared/docs/parallel-run-semantics.md §1, the driver command line
        "--client_sdk_version", "--scoring_module_name", "--mini_batch_size", "--error_threshold",
        "--output_action", "--logging_level", "--run_invocation_timeout", "--run_max_try",
        "--create_snapshot_at_runtime", "--allowed_failed_count", "--allowed_failed_percent",
        "--append_row_file_name", "--output", "--process_count_per_node", "--input_fds_0"]


def test_run_config_and_the_accounting_default_to_what_parallel_run_config_defaults_to():
    """RunConfig (and the accounting's Limits) stand for ParallelRunConfig, so their defaults are the
    SDK's where its signature gives one, and the runtime's documented ones where it gives None."""
    import inspect

    from azureml.pipeline.steps import ParallelRunConfig

    from orchestration.prs.accounting import Limits

    run_config = {f.name: f.default for f in dataclasses.fields(RunConfig)}
    sdk = {name: p.default for name, p in inspect.signature(ParallelRunConfig.__init__).parameters.items()
           if name in FIELD_NAMES and p.default not in (inspect.Parameter.empty, None)}
    assert sdk == {"logging_level": "INFO", "run_invocation_timeout": 60, "run_max_try": 3}
    assert {name: run_config[name] for name in sdk} == sdk
    # None in the signature: the runtime's defaults (Learn's ParallelRunConfig reference)
    assert (run_config["allowed_failed_count"], run_config["allowed_failed_percent"]) == (-1, 100.0)
    assert run_config["append_row_file_name"] == "parallel_run_step.txt"
    limits = {f.name: f.default for f in dataclasses.fields(Limits)}
    assert limits == {name: run_config[name] for name in limits}
