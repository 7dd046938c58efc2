"""The toolkit's user-facing errors, in a leaf module: anything may raise them without importing more."""
from __future__ import annotations


class UsageError(Exception):
    """A bad argument or input given by the user (not a bug): reported without a traceback, exit 2."""


class SettingsError(Exception):
    """One or more settings are missing or invalid; `problems` holds one line per variable."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(
            "invalid settings:\n" + "\n".join(f"  - {p}" for p in problems)
        )
