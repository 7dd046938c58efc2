"""How a step's own process logs, in Azure ML and locally: one format, to a stream the runtime collects."""
from __future__ import annotations

import logging
import sys
from typing import TextIO

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(level: str | int = logging.INFO, stream: TextIO | None = None, force: bool = False) -> None:
    """Sets up the root logger unless it is set up already; `force` replaces an earlier set-up (a worker
    whose standard streams were just redirected)."""
    logging.basicConfig(level=level, format=FORMAT, stream=stream or sys.stderr, force=force)
