"""What every command line of the toolkit shares: logging set-up and clean exits on bad settings."""
from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from orchestration.settings import SettingsError

EXIT_BAD_SETTINGS = 2

log = logging.getLogger(__name__)


class UsageError(Exception):
    """A bad argument or input given by the user (not a bug): reported without a traceback, exit 2."""


def setup_logging(level: str = "INFO") -> None:
    """Logs to stderr with timestamps; a command's own result goes to stdout."""
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


def run_command(main: Callable[[], int]) -> None:
    """Runs a command's `main`, turning settings and usage errors into one message and exit code 2."""
    try:
        code = main()
    except (SettingsError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = EXIT_BAD_SETTINGS
    sys.exit(code)
