"""Local stand-in for `azureml_user.parallel_run.EntryScript`, put on sys.path of local workers only.

Like the real one it is a process-wide singleton with `logger`, `log_dir`, `output_dir`, `working_dir`
and `agent_name` (`processNNN`); the local worker configures it before importing the entry script.
"""
from __future__ import annotations

import logging
from pathlib import Path

_config: dict[str, str] = {}


def configure(*, log_dir: str, output_dir: str, working_dir: str, agent_name: str, level: str) -> None:
    """Called by the local worker; the values describe this worker process."""
    _config.update(
        log_dir=log_dir, output_dir=output_dir, working_dir=working_dir, agent_name=agent_name, level=level
    )
    EntryScript._instance = None


class EntryScript:
    """The process singleton: `EntryScript()` always returns the same instance."""

    _instance: "EntryScript | None" = None

    def __new__(cls) -> "EntryScript":
        if cls._instance is None:
            if not _config:
                raise RuntimeError("EntryScript is only available inside a (local) ParallelRunStep worker")
            instance = super().__new__(cls)
            instance._logger = None
            cls._instance = instance
        return cls._instance

    def __reduce__(self):  # picklable as "the instance of this process", like Microsoft's dummy
        return (EntryScript, ())

    @property
    def log_dir(self) -> str:
        return _config["log_dir"]

    @property
    def output_dir(self) -> str:
        return _config["output_dir"]

    @property
    def working_dir(self) -> str:
        return _config["working_dir"]

    @property
    def agent_name(self) -> str:
        return _config["agent_name"]

    @property
    def logger(self) -> logging.Logger:
        """Writes to logs/user/entry_script_log/<node>/<agent_name>.log.txt at the run's logging level."""
        if self._logger is None:
            logger = logging.getLogger("ParallelRunStep.EntryScript")
            logger.setLevel(_config["level"])
            logger.propagate = False
            Path(self.log_dir).mkdir(parents=True, exist_ok=True)
            handler = logging.FileHandler(Path(self.log_dir) / f"{self.agent_name}.log.txt", encoding="utf-8")
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            logger.handlers[:] = [handler]
            self._logger = logger
        return self._logger
