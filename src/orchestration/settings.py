"""The toolkit's settings: one typed object read from the environment, then `.env`, then defaults.

The process environment wins over `.env`, which wins over the defaults below. Nothing is read at import
time: call `load_settings()`. Every bad value is collected into one `SettingsError` that names each
variable and what it expects; secret values are never echoed.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from orchestration.errors import SettingsError
from orchestration.parallel_fields import FIELD_NAMES, parse_mini_batch_size
from orchestration.parallel_fields import SETTING_DEFAULTS as PARALLEL
from orchestration.run_settings import LOCAL, RUN_SETTINGS, not_utf8, worker_cap

log = logging.getLogger(__name__)

# Variables that only the Azure targets need; local targets run without them.
AZURE_WORKSPACE = ("SUBSCRIPTION_ID", "RESOURCE_GROUP", "WORKSPACE_NAME")
AZURE_STORAGE = ("AML_STORAGE_ACCOUNT_NAME", "AML_STORAGE_ACCOUNT_KEY")


class Settings(BaseSettings):
    """All settings of the toolkit; field names are the environment variable names, lower-cased."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    # --- Workspace
    subscription_id: str = ""
    resource_group: str = ""
    workspace_name: str = ""
    aml_env_name: str = "batch-toolkit-env"

    # --- Compute cluster
    aml_compute_cluster_name: str = Field("cpu-cluster", min_length=2, max_length=16)
    aml_compute_vm_size: str = "STANDARD_D2_V2"
    aml_compute_idle_time: int = Field(300, ge=0)
    aml_compute_min_nodes: int = Field(0, ge=0)
    aml_compute_max_nodes: int = Field(4, ge=1)

    # --- Blob datastore
    aml_blob_datastore_name: str = "california_housing"
    aml_storage_account_name: str = ""
    aml_blob_container_name: str = "california-housing"
    aml_storage_account_key: SecretStr = SecretStr("")
    azure_storage_connection_string: SecretStr = SecretStr("")

    # --- Service principal (CI); without it the Azure CLI login, else (v1) an interactive login
    azure_tenant_id: str = ""
    azure_client_id: str = ""
    azure_client_secret: SecretStr = SecretStr("")

    # --- Pipeline
    aml_sdk: str = "v1"  # v1: ParallelRunStep; v2: the azure-ai-ml parallel job
    pipeline_endpoint_name: str = "california-housing-endpoint"
    pipeline_name: str = "california-housing-pipeline"
    input_dir: str = "raw"
    partition_format: str = LOCAL["partition_format"].default  # the input's partitions, for PARTITION_KEYS

    # --- ParallelRunStep: the fields of orchestration.parallel_fields, their defaults and parsers
    mini_batch_size: str = PARALLEL["mini_batch_size"]
    error_threshold: int = PARALLEL["error_threshold"]
    allowed_failed_count: int = PARALLEL["allowed_failed_count"]
    allowed_failed_percent: float = PARALLEL["allowed_failed_percent"]
    node_count: int = PARALLEL["node_count"]
    process_count_per_node: int = PARALLEL["process_count_per_node"]
    run_invocation_timeout: int = PARALLEL["run_invocation_timeout"]
    run_max_try: int = PARALLEL["run_max_try"]
    output_action: str = PARALLEL["output_action"]
    append_row_file_name: str = PARALLEL["append_row_file_name"]
    logging_level: str = PARALLEL["logging_level"]
    partition_keys: str = PARALLEL["partition_keys"]

    # --- Local runs (no Azure counterpart); orchestration.run_settings reads them for the runner
    local_max_workers: int = LOCAL["local_max_workers"].default  # 0 = the machine's CPU count
    local_python: str = LOCAL["local_python"].default  # workers' and command nodes' interpreter

    @field_validator(*FIELD_NAMES, *LOCAL, mode="before")
    @classmethod
    def _parse_run_setting(cls, value: Any, info: ValidationInfo) -> Any:
        """The runner's settings are parsed as the runner itself reads them (orchestration.run_settings)."""
        return RUN_SETTINGS[info.field_name].parse(value)

    @field_validator("aml_sdk")
    @classmethod
    def _check_sdk(cls, value: str) -> str:
        if value.strip().lower() not in ("v1", "v2"):
            raise ValueError("expected v1 (ParallelRunStep) or v2 (the parallel job)")
        return value.strip().lower()

    @model_validator(mode="after")
    def _check_node_ranges(self) -> "Settings":
        if self.aml_compute_min_nodes > self.aml_compute_max_nodes:
            raise ValueError(
                "AML_COMPUTE_MIN_NODES: expected at most AML_COMPUTE_MAX_NODES "
                f"({self.aml_compute_max_nodes})"
            )
        return self

    @property
    def mini_batch_size_value(self) -> int:
        """MINI_BATCH_SIZE as an integer: files per mini-batch, or bytes for tabular inputs."""
        return parse_mini_batch_size(self.mini_batch_size)

    @property
    def local_worker_cap(self) -> int:
        """The most worker processes a local run starts (run_settings.worker_cap)."""
        return worker_cap(self.local_max_workers)

    def is_set(self, name: str) -> bool:
        """Whether the variable NAME has a non-empty value."""
        value = getattr(self, name.lower())
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        return value not in ("", None)

    def require(self, *names: str) -> None:
        """Checks that the named variables (e.g. the Azure ones) are set.

        Raises:
            SettingsError: listing every named variable that is empty.
        """
        missing = [f"{name}: required for this command but not set (see .env.example)"
                   for name in names if not self.is_set(name)]
        if missing:
            raise SettingsError(missing)


def _describe(error: dict[str, Any]) -> str:
    """One line per pydantic error: the variable, what it expects, and the value unless secret."""
    loc = [str(part) for part in error.get("loc", ()) if part != "__root__"]
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    message = message.removeprefix("Input should be ").removeprefix("String should ").removeprefix("have ")
    if not loc:  # model-level checks carry the variable name in their message
        return message
    name = loc[0].upper()
    field = Settings.model_fields.get(loc[0])
    secret = field is not None and field.annotation is SecretStr
    got = "" if secret or error.get("type") == "missing" else f" (got {error.get('input')!r})"
    if not message.startswith("expected"):
        message = f"expected {message}"
    return f"{name}: {message}{got}"


def warn_unknown_names(env_path: Path) -> None:
    """A misspelled name in .env (MINI_BATCH_SIZ=5) would be ignored silently: say so, with a guess."""
    from difflib import get_close_matches

    from dotenv import dotenv_values

    known = [name.upper() for name in Settings.model_fields]
    for name in dotenv_values(env_path):
        if name.upper() not in known:
            guess = get_close_matches(name.upper(), known, n=1)
            hint = f" (did you mean {guess[0]}?)" if guess else ""
            log.warning("%s: %s is not a setting of this toolkit and is ignored%s", env_path, name, hint)


def load_settings(env_file: str | Path | None = ".env", **overrides: Any) -> Settings:
    """Reads the settings from the environment, then `env_file`, then defaults.

    Args:
        env_file: the dotenv file to read if it exists; None reads no file.
        overrides: values that win over everything else (used by CLI flags and tests).

    Raises:
        SettingsError: listing every invalid variable.
    """
    env_path = Path(env_file) if env_file and Path(env_file).is_file() else None
    try:
        if env_path:
            warn_unknown_names(env_path)
        return Settings(_env_file=env_path, **overrides)
    except ValidationError as exc:
        raise SettingsError([_describe(e) for e in exc.errors()]) from None
    except UnicodeDecodeError as exc:
        raise SettingsError([not_utf8(env_path, exc)]) from None
