"""The ParallelRunConfig fields, declared once: each field's setting (default, parser, help), and its place
in the driver's command line, the resume fingerprint, SDK v1 and SDK v2.

Everything that lists these fields comes from FIELDS: the settings' defaults and validation
(`settings.py`, `run_settings.py`, the warm start's prediction in `prs/warm.py`), the runner's flags
(`prs/cli.py`), `RunConfig.from_settings`, the driver argv and the fingerprint (`prs/config.py`), the v1
plan (`cloud/pipeline_v1.py`), the v2 mapping (`cloud/pipeline_v2.py`) and make plan's summary
(`tools/plan_summary.py`). What is written elsewhere is
checked against it by tests: RunConfig's and the accounting's defaults (test_parallel_fields.py), the
settings' types, .env.example and the docs' settings table (test_settings.py), a v2 job's keys read
back (jobs/test_parallel_node.py). A new field is one line here, plus its typed setting in `settings.py`
and its behaviour. A leaf module: the workers import it, so it imports nothing of the toolkit.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# ParallelRunConfig accepts `^\d+([kKmMgG][bB])*$`; the repeated unit is an SDK quirk that then crashes
# on int(), so one optional unit is accepted here.
MINI_BATCH_SIZE_PATTERN = re.compile(r"^(\d+)([kKmMgG][bB])?$")
_UNIT_BYTES = {"kb": 1024, "mb": 1024**2, "gb": 1024**3}


def parse_mini_batch_size(value: str) -> int:
    """Converts MINI_BATCH_SIZE as ParallelRunConfig does: "5" -> 5, "1024KB" -> 1048576.

    Raises:
        ValueError: when the text is not digits with an optional KB/MB/GB unit, or is zero.
    """
    match = MINI_BATCH_SIZE_PATTERN.match(str(value).strip())
    if not match:
        raise ValueError(
            "expected a whole number of files (e.g. 5) or a size with KB/MB/GB (e.g. 1024KB, 10MB)"
        )
    number = int(match.group(1)) * _UNIT_BYTES.get((match.group(2) or "").lower(), 1)
    if number < 1:
        raise ValueError("expected a value of at least 1")
    return number


def _same(value: Any) -> Any:
    return value


# Each setting's parser: its text (or a value) -> the setting's value; ValueError("expected ...") names
# what it expects. Settings (pydantic) and the runner's own reading (orchestration.run_settings) both
# validate with these, so a value is accepted or refused the same way, with the same words.
def whole(least: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        text = str(value).strip()
        if isinstance(value, bool) or not re.fullmatch(r"[+-]?\d{1,18}", text) or int(text) < least:
            raise ValueError(f"expected a whole number of at least {least}")
        return int(text)
    return parse


def percent(value: Any) -> float:
    try:
        number = float(str(value).strip())
    except ValueError:
        number = -1.0
    if isinstance(value, bool) or not 0 <= number <= 100:  # NaN fails both comparisons
        raise ValueError("expected a number from 0 to 100")
    return number


def one_of(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value).strip()
        found = [choice for choice in choices if choice.lower() == text.lower()]
        if not found:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return found[0]
    return parse


def mini_batch_size_text(value: Any) -> str:
    parse_mini_batch_size(str(value))
    return str(value).strip()


# A portable file name. ParallelRunConfig only refuses ~"#%&*:<>?/\{|}, but the name also enters the v2
# job's output URI and command lines, where a space, quote or `$(...)` would break or inject.
APPEND_ROW_FILE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,254}$")


def file_name(value: Any) -> str:
    if not APPEND_ROW_FILE_NAME_PATTERN.match(str(value)):
        raise ValueError("expected a plain file name of letters, digits, '.', '_' and '-', not starting "
                         "with '.' or '-'")
    return str(value)


PARTITION_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def key_list(value: Any) -> str:
    """Comma-separated partition keys, normalized ("a, b" -> "a,b"); "" for none."""
    keys = [part.strip() for part in str(value).split(",") if part.strip()]
    if any(not PARTITION_KEY.match(key) for key in keys) or len(set(keys)) < len(keys):
        raise ValueError("expected distinct names of letters, digits and '_', separated by commas "
                         "(e.g. store,brand)")
    return ",".join(keys)


def key_tuple(value: str) -> tuple[str, ...]:
    return tuple(key for key in value.split(",") if key)


@dataclass(frozen=True)
class ParallelField:
    name: str  # ParallelRunConfig's parameter = RunConfig's attribute = the runner's --flag = setting, lower
    default: Any  # the setting's default (Settings, .env.example); RunConfig's are ParallelRunConfig's
    parse: Callable[[Any], Any]  # the setting's text -> its value; ValueError says what it expects
    help: str  # after "SETTING: " in the runner's --help
    local: Callable[[Any], Any] = _same  # the setting's value -> RunConfig's (e.g. "10KB" -> 10240)
    driver: str | None = "{}"  # how the ParallelRunStep driver passes it to the entry script; None: not
    shapes_output: bool = False  # in the resume fingerprint: changing it changes what a mini-batch makes
    v2: str | None = None  # parallel_run_function's argument; "retry_settings.<x>"; None: see pipeline_v2
    to_v2: Callable[[Any], Any] = _same
    to_v1: Callable[[Any], Any] = _same  # the setting's value -> ParallelRunConfig's argument

    @property
    def setting(self) -> str:
        return self.name.upper()


# In the order the ParallelRunStep driver puts them on the entry script's command line.
FIELDS = (
    ParallelField("mini_batch_size", "5", mini_batch_size_text,
                  "files per mini-batch, or bytes for tabular input (1024KB, 10MB)",
                  local=parse_mini_batch_size, shapes_output=True, v2="mini_batch_size",
                  to_v2=lambda v: str(parse_mini_batch_size(v))),
    ParallelField("error_threshold", 10, whole(-1), "failed items tolerated; -1 ignores all",
                  v2="error_threshold"),
    ParallelField("output_action", "append_row", one_of("append_row", "summary_only"),
                  "append_row or summary_only", shapes_output=True),  # v2: append_row_to
    ParallelField("logging_level", "INFO", one_of("DEBUG", "INFO", "WARNING"), "DEBUG, INFO or WARNING",
                  v2="logging_level"),
    ParallelField("run_invocation_timeout", 60, whole(1), "seconds one run() call may take",
                  v2="retry_settings.timeout"),
    # RUN_MAX_TRY counts attempts, max_retries counts retries (Learn: default 2, i.e. 3 attempts).
    ParallelField("run_max_try", 3, whole(1),
                  "attempts per mini-batch that raised, timed out or lost its worker",
                  v2="retry_settings.max_retries", to_v2=lambda v: v - 1),
    ParallelField("allowed_failed_count", -1, whole(-1), "failed mini-batches tolerated; -1 ignores all",
                  v2="mini_batch_error_threshold"),
    # No v2 field: the migration guide puts it into the program arguments.
    ParallelField("allowed_failed_percent", 100.0, percent,
                  "percent of failed mini-batches tolerated; 100 ignores", driver="{:g}",
                  v2="program_arguments", to_v2=lambda v: f"--allowed_failed_percent {v:g}"),
    ParallelField("append_row_file_name", "extraction_output.txt", file_name,
                  "the merged output file in --output",
                  driver=None, shapes_output=True),  # driver: only with append_row; v2: the output's path
    ParallelField("process_count_per_node", 2, whole(1), "emulated processes per node", driver=None,
                  v2="max_concurrency_per_instance"),  # driver: after --output
    ParallelField("node_count", 2, whole(1), "emulated nodes", driver=None, v2="instance_count"),
    # driver: `--partition_keys <JSON list>` after --process_count_per_node, only when set; v2 partitions
    # an MLTable's columns (a pipeline of folders cannot publish them: cloud.pipeline_v1/_v2 refuse them).
    ParallelField("partition_keys", "", key_list,
                  "keys of the input's PARTITION_FORMAT: one mini-batch per combination of their values "
                  "(MINI_BATCH_SIZE unused)", local=key_tuple, driver=None, shapes_output=True,
                  to_v1=lambda v: list(key_tuple(v)) or None),
)
FIELD_NAMES = tuple(f.name for f in FIELDS)
SETTING_DEFAULTS = {f.name: f.default for f in FIELDS}


def local_values(settings: Any) -> dict[str, Any]:
    """The fields' values for a local run, from an object with the settings as attributes."""
    return {f.name: f.local(getattr(settings, f.name)) for f in FIELDS}


def v1_values(settings: Any) -> dict[str, Any]:
    """ParallelRunConfig's keyword arguments as the settings hold them (the SDK parses them itself);
    with partition keys, no mini_batch_size: the SDK refuses the two together."""
    values = {f.name: f.to_v1(getattr(settings, f.name)) for f in FIELDS}
    if values["partition_keys"]:
        values["mini_batch_size"] = None
    return values


def v2_values(settings: Any) -> dict[str, Any]:
    """parallel_run_function's arguments; `retry_settings.x` grouped into a dict."""
    values: dict[str, Any] = {}
    for f in FIELDS:
        if f.v2 is None:
            continue
        value = f.to_v2(getattr(settings, f.name))
        group, _, key = f.v2.rpartition(".")
        if group:
            values.setdefault(group, {})[key] = value
        else:
            values[f.v2] = value
    return values


# ParallelRunStep refuses user arguments that collide with its own flags (its driver's own flags): every
# field it passes to the driver (NODE_COUNT is not), plus these.
RESERVED_ARGUMENTS = tuple(f.name for f in FIELDS if f.name != "node_count") + ("output",)


def reserved_arguments(arguments: tuple[str, ...]) -> list[str]:
    """The arguments ParallelRunStep refuses: `--<reserved>` or `--<reserved>=...`."""
    return [a for a in arguments if a.startswith("--") and a[2:].split("=", 1)[0] in RESERVED_ARGUMENTS]
