"""What every command line of the toolkit shares: its start, logging, and its closing line.

Every command ends with one line, `exit N: what happened` (and on failure what to do next): make reports
2 for any failing recipe, so the command's own code must be in its last line.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
from collections.abc import Callable
from typing import NoReturn, TextIO

from orchestration.errors import EXIT_USAGE, SettingsError, Stopped, UsageError
from orchestration.interrupts import STOP_SIGNALS, ignore_signals, note_signals
from orchestration.secrets import mask

log = logging.getLogger(__name__)


# Libraries that log whole requests (URLs with SAS signatures, headers) at DEBUG.
CHATTY_LOGGERS = ("azure", "urllib3", "msal", "msrest", "adal-python", "azureml._vendor")


class RedactSecrets(logging.Filter):
    """Masks credential values in every record a handler writes, whichever library logged it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = mask(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def setup_logging(level: str = "INFO") -> None:
    """Logs to stderr with timestamps, secrets masked; a command's own result goes to stdout.

    Request-level loggers of the HTTP and Azure libraries stay at WARNING even at DEBUG: their records
    carry URLs and headers, and the toolkit's own DEBUG lines are what a user debugs with. The handler is
    added once, to whatever sys.stderr is now (a command run in-process by a test writes where it reads).
    """
    root = logging.getLogger()
    if not any(isinstance(handler, CommandHandler) for handler in root.handlers):
        root.addHandler(CommandHandler(sys.stderr))
    root.setLevel(level)
    for handler in root.handlers:
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(RedactSecrets())
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


class CommandHandler(logging.StreamHandler):
    """A command's log lines: `HH:MM:SS LEVEL logger: message`."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))


class ArgumentParser(argparse.ArgumentParser):
    """argparse, where a mistake (an unknown flag, a missing value) ends as any usage error does: one
    `exit 2:` line naming it."""

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        raise UsageError(f"{message} (see {self.prog} --help)")


def at_least_one(text: str) -> int:
    """An argparse type: a whole number of at least 1 (a count of rounds, say)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1 (got {text!r})")
    return value


def last_line(code: int, what: str) -> str:
    """A command's last line."""
    return f"exit {code}: {what}"


def run_command(main: Callable[[], int]) -> NoReturn:
    """Runs a command's `main` and exits with its code (see `run_main`)."""
    for stream in (sys.stdout, sys.stderr):  # a file name that is no UTF-8 must not fail the last line
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    code = run_main(main)
    # Not gc.freeze() here, though it made the exit 40 ms faster: objects it spares outlive their C
    # modules' teardown, and 3 of 20 `cloud publish --dry-run` runs died of SIGSEGV in azureml's.
    sys.exit(code)


def run_main(main: Callable[[], int]) -> int:
    """Runs `main`; returns its exit code. A bad setting or argument, Ctrl-C, SIGTERM or SIGHUP end it in one
    line, not a traceback."""
    try:
        return main()
    except SettingsError as exc:
        print("\n".join(f"error: {problem}" for problem in exc.problems), file=sys.stderr)
        count = len(exc.problems)
        print(last_line(EXIT_USAGE, f"{count} invalid setting{'s' * (count > 1)}; set "
                        f"{'them' if count > 1 else 'it'} in .env or the environment (see .env.example)"),
              file=sys.stderr)
        return EXIT_USAGE
    except UsageError as exc:
        for line in exc.details:
            print(line, file=sys.stderr)
        print(last_line(EXIT_USAGE, str(exc)), file=sys.stderr)
        return EXIT_USAGE
    except (Stopped, KeyboardInterrupt) as exc:
        code = exc.exit_code if isinstance(exc, Stopped) else Stopped.EXIT_CODES["SIGINT"]
        print(last_line(code, f"stopped by {getattr(exc, 'signal_name', 'SIGINT')}"), file=sys.stderr)
        return code


def launch(module: str, first: Callable[[list[str]], object] | None = None,
           noted: list[int] | None = None) -> NoReturn:
    """Imports `module` and runs its `main()` as a command (`python -m` entry points call this);
    `first(arguments)` runs before that import (the runner starts its workers there).

    Ctrl-C, SIGTERM or SIGHUP while the command is still importing is only noted (`noted`: the list of
    `interrupts.note_signals()`, which the entry point calls before its own imports): an exception raised
    inside an import can be swallowed by a library's bare `except:`, and the command would then go on.
    It is acted on as soon as the imports are done; from then on either signal raises Stopped, which ends
    the command in one line, unless the command installs its own handlers (the runner does). Once
    `main()` has returned or raised, signals are ignored: a second Ctrl-C must not interrupt the last
    line, or the exit, with a traceback or a death by signal.
    """
    if noted is None:
        noted = note_signals()
    if first is not None:
        first(sys.argv[1:])
    main = importlib.import_module(module).main

    def started() -> int:
        for sig in STOP_SIGNALS:
            signal.signal(sig, Stopped.raise_on)
        try:
            if noted:
                raise Stopped(signal.Signals(noted[0]).name)
            return main()
        finally:
            ignore_signals()  # the command has ended: a signal now changes nothing

    run_command(started)
