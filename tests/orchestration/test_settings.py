import re

import pytest

from orchestration.run_settings import RUN_SETTINGS, read_run_settings
from orchestration.settings import SettingsError, load_settings, parse_mini_batch_size
from tests.conftest import invoke


def test_defaults_need_no_env_file():
    settings = load_settings()
    assert settings.mini_batch_size_value == 5
    assert settings.run_max_try == 3
    assert settings.append_row_file_name == "extraction_output.txt"
    assert settings.output_action == "append_row"


def test_environment_wins_over_env_file_which_wins_over_defaults(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("NODE_COUNT=3\nERROR_THRESHOLD=7\n")
    monkeypatch.setenv("NODE_COUNT", "4")
    settings = load_settings()
    assert settings.node_count == 4  # environment
    assert settings.error_threshold == 7  # .env
    assert settings.run_invocation_timeout == 60  # default


@pytest.mark.parametrize("text, value", [
    ("5", 5), ("1024KB", 1048576), ("10MB", 10485760), ("1GB", 1073741824), ("1kb", 1024),
])
def test_mini_batch_size_accepts_the_sdk_formats(text, value):
    assert parse_mini_batch_size(text) == value


@pytest.mark.parametrize("text", ["1.5MB", "10 MB", "1TB", "1B", "-1", "0", "10KBKB", ""])
def test_mini_batch_size_rejects_what_the_sdk_rejects(text):
    with pytest.raises(ValueError):
        parse_mini_batch_size(text)


def test_every_bad_value_is_listed_at_once(monkeypatch):
    monkeypatch.setenv("MINI_BATCH_SIZE", "1.5MB")
    monkeypatch.setenv("NODE_COUNT", "0")
    monkeypatch.setenv("ERROR_THRESHOLD", "-2")
    monkeypatch.setenv("OUTPUT_ACTION", "everything")
    monkeypatch.setenv("APPEND_ROW_FILE_NAME", "a/b.txt")
    monkeypatch.setenv("RUN_INVOCATION_TIMEOUT", "soon")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    names = sorted(p.split(":")[0] for p in caught.value.problems)
    assert names == ["APPEND_ROW_FILE_NAME", "ERROR_THRESHOLD", "MINI_BATCH_SIZE", "NODE_COUNT",
                     "OUTPUT_ACTION", "RUN_INVOCATION_TIMEOUT"]
    assert "MINI_BATCH_SIZE: expected a whole number of files" in str(caught.value)
    assert "ERROR_THRESHOLD: expected a whole number of at least -1 (got '-2')" in str(caught.value)
    with pytest.raises(SettingsError) as light:  # the runner's own reading, without pydantic
        read_run_settings()
    assert sorted(light.value.problems) == sorted(caught.value.problems)


@pytest.mark.parametrize("name, value", [
    ("NODE_COUNT", "3"), ("NODE_COUNT", " 4 "), ("NODE_COUNT", "1.0"), ("NODE_COUNT", "true"),
    ("NODE_COUNT", "99999999999999999999"), ("ERROR_THRESHOLD", "-1"), ("RUN_MAX_TRY", "0"),
    ("ALLOWED_FAILED_PERCENT", "12.5"), ("ALLOWED_FAILED_PERCENT", "nan"), ("ALLOWED_FAILED_PERCENT", "101"),
    ("LOGGING_LEVEL", "debug"), ("OUTPUT_ACTION", " Summary_Only"), ("MINI_BATCH_SIZE", " 10kb "),
    ("MINI_BATCH_SIZE", "0"), ("APPEND_ROW_FILE_NAME", ".rows"), ("LOCAL_MAX_WORKERS", "-1"),
    ("LOCAL_PYTHON", " python3 "), ("node_count", "5"),
])
def test_the_runner_reads_a_setting_as_the_settings_do(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    try:
        expected = load_settings()
    except SettingsError as exc:
        with pytest.raises(SettingsError) as caught:
            read_run_settings()
        assert caught.value.problems == exc.problems
    else:
        read = read_run_settings()
        assert {n: getattr(read, n) for n in RUN_SETTINGS} == {n: getattr(expected, n) for n in RUN_SETTINGS}


def test_min_nodes_above_max_nodes_is_refused(monkeypatch):
    monkeypatch.setenv("AML_COMPUTE_MIN_NODES", "5")
    monkeypatch.setenv("AML_COMPUTE_MAX_NODES", "2")
    with pytest.raises(SettingsError, match="AML_COMPUTE_MIN_NODES: expected at most AML_COMPUTE_MAX_NODES"):
        load_settings()


def test_secret_values_are_never_echoed(monkeypatch):
    monkeypatch.setenv("AML_STORAGE_ACCOUNT_KEY", "s3cr3t-key==")
    monkeypatch.setenv("NODE_COUNT", "zero")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "s3cr3t" not in str(caught.value)
    assert "s3cr3t" not in repr(load_settings(NODE_COUNT=1))


def test_azure_variables_are_required_only_on_demand():
    settings = load_settings()
    with pytest.raises(SettingsError) as caught:
        settings.require("SUBSCRIPTION_ID", "WORKSPACE_NAME", "AML_STORAGE_ACCOUNT_KEY")
    assert [p.split(":")[0] for p in caught.value.problems] == [
        "SUBSCRIPTION_ID", "WORKSPACE_NAME", "AML_STORAGE_ACCOUNT_KEY"
    ]


def test_a_command_exits_2_without_traceback_on_bad_settings(tmp_path):
    result = invoke(
        "orchestration.prs.cli", "--entry_script", "x.py", "--input", ".", "--output", "out", cwd=tmp_path,
        MINI_BATCH_SIZE="1.5MB", NODE_COUNT="0", ERROR_THRESHOLD="-2",
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    for name in ("MINI_BATCH_SIZE", "NODE_COUNT", "ERROR_THRESHOLD"):
        assert name in result.stderr


def test_env_example_documents_every_setting_with_its_default():
    from orchestration.settings import Settings
    from tests.conftest import ROOT

    example = ROOT / ".env.example"
    lines = [line for line in example.read_text().splitlines() if line and not line.startswith("#")]
    keys = [line.split("=", 1)[0] for line in lines]
    assert all(" " not in line.split("=", 1)[0] and "=" in line for line in lines)  # bare KEY=value
    assert sorted(keys) == sorted(name.upper() for name in Settings.model_fields)
    from_example = load_settings(example)
    assert from_example == load_settings(env_file=None)  # the example's values are the defaults
    table = (ROOT / "docs" / "settings.md").read_text()
    assert [key for key in keys if f"`{key}`" not in table] == []  # the settings table
    defaults = load_settings(env_file=None)
    for row in table.splitlines():
        cells = row.split(" | ")
        if not row.startswith("| `") or len(cells) < 3:
            continue
        names = re.findall(r"`([A-Z_]+)`", cells[0])
        values = re.findall(r"`([^`]*)`", cells[1]) or [""] * len(names)  # —: empty
        assert len(values) == len(names), row
        for name, value in zip(names, values):  # the table's default is the setting's, as read
            assert load_settings(env_file=None, **{name: value}) == defaults, (name, value)


@pytest.mark.parametrize("name", ["rows $(id).txt", "rows.txt; rm -rf /", "a b.txt", "'q'.txt", "-rows.txt",
                                  ".hidden", "a/b.txt"])
def test_a_file_name_that_would_break_or_inject_into_a_command_is_refused(name):
    with pytest.raises(SettingsError, match="APPEND_ROW_FILE_NAME: expected a plain file name"):
        load_settings(env_file=None, APPEND_ROW_FILE_NAME=name)


def test_portable_file_names_are_accepted():
    name = "rows_2026-11.v2.jsonl"
    assert load_settings(env_file=None, APPEND_ROW_FILE_NAME=name).append_row_file_name == name


def test_the_secret_settings_are_the_ones_kept_from_logs_and_workers():
    from pydantic import SecretStr

    from orchestration.secrets import SECRET_VARIABLES
    from orchestration.settings import Settings

    fields = Settings.model_fields.items()
    secret_fields = {name.upper() for name, field in fields if field.annotation is SecretStr}
    assert set(SECRET_VARIABLES) == secret_fields


def test_a_misspelled_name_in_env_is_reported_with_a_guess(tmp_path, caplog):
    env = tmp_path / ".env"
    env.write_text("MINI_BATCH_SIZ=7\nNODE_COUNT=3\n")
    with caplog.at_level("WARNING"):
        settings = load_settings(env)
    assert settings.node_count == 3 and settings.mini_batch_size == "5"  # the typo was not applied
    assert "MINI_BATCH_SIZ is not a setting of this toolkit and is ignored (did you mean MINI_BATCH_SIZE?)" \
        in caplog.text
    assert "NODE_COUNT" not in caplog.text


def test_an_env_file_that_is_not_text_is_a_bad_setting(tmp_path):
    (tmp_path / ".env").write_bytes(b"NODE_COUNT=1\n\xff\xfe\x00binary")
    with pytest.raises(SettingsError) as error:
        load_settings(tmp_path / ".env")
    expected = f"{tmp_path / '.env'}: not UTF-8 text (byte 13); expected KEY=value lines"
    assert error.value.problems == [expected]
