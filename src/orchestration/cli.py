"""What every command line of the toolkit shares: logging set-up and clean exits on bad settings."""
from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from orchestration.errors import SettingsError, UsageError
from orchestration.secrets import mask

EXIT_BAD_SETTINGS = 2

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
    carry URLs and headers, and the toolkit's own DEBUG lines are what a user debugs with.
    """
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(RedactSecrets())
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def run_command(main: Callable[[], int]) -> None:
    """Runs a command's `main`, turning settings and usage errors into one message and exit code 2."""
    try:
        code = main()
    except (SettingsError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = EXIT_BAD_SETTINGS
    sys.exit(code)
