"""The toolkit's user-facing errors, in a leaf module: anything may raise them without importing more."""
from __future__ import annotations

import signal
from typing import NoReturn

# Every command's exit code, said in its last line (`exit N: ...`); a signal's is Stopped.EXIT_CODES.
EXIT_OK = 0
EXIT_FAILED = 1  # the service, or a check the command ran, said no
EXIT_USAGE = 2  # a bad setting or argument (UsageError, SettingsError), as argparse and make use 2
EXIT_RUN_FAILED = 42  # a local run ended Failed (a threshold, or no worker left): apart from the above


class UsageError(Exception):
    """A bad argument or input given by the user (not a bug): reported without a traceback, exit 2.

    `details`, one line each, are shown before the message (which is the command's last line)."""

    def __init__(self, message: str, details: tuple[str, ...] | list[str] = ()):
        super().__init__(message)
        self.details = tuple(details)

    @classmethod
    def listing(cls, problems: list[str]) -> "UsageError":
        """One problem as the message; several as details, counted in the message."""
        if len(problems) == 1:
            return cls(problems[0])
        return cls(f"{len(problems)} problems (listed above)", [f"error: {p}" for p in problems])


class SettingsError(Exception):
    """One or more settings are missing or invalid; `problems` holds one line per variable."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(
            "invalid settings:\n" + "\n".join(f"  - {p}" for p in problems)
        )


class Stopped(BaseException):
    """SIGINT, SIGTERM or SIGHUP. A BaseException, as KeyboardInterrupt is: code that catches Exception (a
    logging handler writing a line when the signal lands, for one) must not swallow it."""

    EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143, "SIGHUP": 129}

    def __init__(self, signal_name: str):
        super().__init__(signal_name)
        self.signal_name, self.exit_code = signal_name, self.EXIT_CODES[signal_name]

    @classmethod
    def raise_on(cls, signum: int, frame: object = None) -> NoReturn:
        """A signal handler: raises Stopped for the signal."""
        raise cls(signal.Signals(signum).name)
