"""Another Python for the workers (LOCAL_PYTHON, --python): one that holds the entry script's packages.

The worker side needs only the standard library (pandas, and pyarrow for parquet, for tabular inputs),
and runs on Python 3.8 or newer. Checked once before the run, so a wrong interpreter is one clear message
rather than every worker failing to start.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

from orchestration.prs.warm import worker_environment

OLDEST = (3, 8)
PROBE = """\
import sys
if sys.version_info < {oldest}:
    sys.exit("it is Python %d.%d; the worker needs %d.%d or newer" % (sys.version_info[:2] + {oldest}))
import orchestration.prs.worker
for package in sys.argv[1:]:
    try:
        __import__(package)
    except ImportError:
        sys.exit("tabular inputs need %s in that interpreter (pip install %s)" % (package, package))
"""


def interpreter_problem(python: Path, tabular: bool) -> str:
    """Why `python` cannot run the workers, or ''."""
    packages = ["pandas"] if tabular else []  # pyarrow only for parquet: its mini-batches say so if missing
    try:  # in the environment the workers will have
        probe = subprocess.run([str(python), "-c", PROBE.format(oldest=OLDEST), *packages],
                               env=worker_environment(), capture_output=True, text=True, timeout=60,
                               stdin=subprocess.DEVNULL)
    except OSError as exc:
        return f"--python {python} cannot be started: {exc.strerror}"
    except subprocess.TimeoutExpired:
        return f"--python {python} did not answer within 60 s"
    if probe.returncode:
        lines = probe.stderr.strip().splitlines() or [f"exit code {probe.returncode}"]
        return f"--python {python} cannot run the workers: {lines[-1]}"
    return ""
