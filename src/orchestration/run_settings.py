"""The settings a local run reads, without pydantic: every ParallelRunConfig field (parallel_fields),
LOCAL_MAX_WORKERS and LOCAL_PYTHON, from the arguments, then the environment, then `.env`, then the
defaults, names in any case: the order and rules of Settings, which parses these names with these same
parsers (so a value is refused the same way, in the same words, by either).

Why not Settings itself: importing pydantic and building Settings takes about 0.2 s, spent before the
run's first worker can start; on a two-second run that is a tenth of it.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from orchestration.errors import SettingsError
from orchestration.parallel_fields import FIELDS, whole

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSetting:
    default: Any
    parse: Callable[[Any], Any]  # text -> value; ValueError says what it expects


LOCAL = {
    "local_max_workers": RunSetting(0, whole(0)),  # 0: the machine's CPU count
    "local_python": RunSetting("", lambda value: str(value).strip()),  # "": the toolkit's own
    # The input's partition format, as Dataset.File.from_files(partition_format=) takes it: the dataset's,
    # not ParallelRunConfig's; PARTITION_KEYS name its columns.
    "partition_format": RunSetting("", lambda value: str(value).strip()),
}
RUN_SETTINGS = {**{f.name: RunSetting(f.default, f.parse) for f in FIELDS}, **LOCAL}


def worker_cap(local_max_workers: int) -> int:
    """The most worker processes a local run starts: LOCAL_MAX_WORKERS, or the CPU count."""
    return local_max_workers or os.cpu_count() or 1


class RunSettings(SimpleNamespace):
    """The values of RUN_SETTINGS, as attributes (as Settings has them)."""

    @property
    def local_worker_cap(self) -> int:
        return worker_cap(self.local_max_workers)


def not_utf8(path: Path, error: UnicodeDecodeError) -> str:
    return f"{path}: not UTF-8 text (byte {error.start}); expected KEY=value lines"


def read_env_file(path: Path) -> dict[str, str]:
    """A `.env` file's values, names upper-cased; {} unless it is a regular file (as Settings reads it)."""
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    try:
        values = dotenv_values(path, encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SettingsError([not_utf8(path, exc)]) from None
    return {name.upper(): value for name, value in values.items() if value is not None}


def read_run_settings(env_file: str | Path | None = ".env", **overrides: Any) -> RunSettings:
    """The run's settings.

    Raises:
        SettingsError: naming every invalid variable and what it expects.
    """
    dotenv = read_env_file(Path(env_file)) if env_file else {}
    environ = {name.upper(): value for name, value in os.environ.items()}
    values, problems = {}, []
    for name, setting in RUN_SETTINGS.items():
        key = name.upper()
        raw = overrides.get(name, environ.get(key, dotenv.get(key, setting.default)))
        try:
            values[name] = setting.parse(raw)
        except ValueError as exc:
            problems.append(f"{key}: {exc} (got {raw!r})")
    if problems:
        raise SettingsError(problems)
    for name in sorted(set(dotenv) - {name.upper() for name in RUN_SETTINGS}):
        near = get_close_matches(name, [n.upper() for n in RUN_SETTINGS], n=1, cutoff=0.85)
        if near:  # a setting the run reads, mistyped (other settings are Azure's: not read here)
            log.warning("%s: %s is not a setting of this toolkit and is ignored (did you mean %s?)",
                        env_file, name, near[0])
    return RunSettings(**values)
