"""Worker processes started before the runner's own imports, so that the two start-ups overlap.

`python -m orchestration.prs` spends about 0.12 s importing and reading its settings before it can start
a worker, and a worker spends about 0.07 s starting its interpreter and importing the worker module
before it can run init(). Started first, the workers import while the parent does, then
wait for their WorkerSpec; `Pool.spawn` adopts one per slot. Each is still a fresh interpreter that has
imported nothing of the entry script and runs init() once, after its spec arrives.

How many to start is predicted from the flags, the environment and `.env`: a plain `KEY=value` reading
here, as python-dotenv's import alone (30 ms) would cost half the time it saves; the settings' own
reading decides, and a test checks the two agree on the counts. A wrong guess costs only speed: a missing
worker starts cold, an extra one reads end-of-file instead of a spec and exits. At most one per CPU is
started ahead; only the toolkit's own interpreter is warmed (a `--python`/LOCAL_PYTHON or `--container`
run starts its workers cold).
"""
from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from orchestration.parallel_fields import SETTING_DEFAULTS
from orchestration.paths import SRC
from orchestration.secrets import SECRET_VARIABLES

# The worker's entry point; `-c` rather than `-m worker`, so that the worker module is imported under
# its package name, the name the pickled WorkerSpec refers to.
WORKER_COMMAND = "import sys; from orchestration.prs.worker import main; main(int(sys.argv[1]))"

# The settings' defaults, without importing pydantic; LOCAL_MAX_WORKERS's is 0, the CPU count.
DEFAULT_COUNTS = {"node_count": SETTING_DEFAULTS["node_count"],
                  "process_count_per_node": SETTING_DEFAULTS["process_count_per_node"],
                  "local_max_workers": 0}


def worker_environment() -> dict[str, str]:
    """A worker's environment: this one's without the secrets (Azure ML gives a node none), `src` first on
    PYTHONPATH."""
    environment = {k: v for k, v in os.environ.items() if k not in SECRET_VARIABLES}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), environment.get("PYTHONPATH")]))
    return environment


def start_worker(python: Path | None) -> tuple[subprocess.Popen, socket.socket]:
    """A fresh worker process waiting for its WorkerSpec, and this side of its connection."""
    ours, theirs = socket.socketpair()
    # A process group of its own: Ctrl-C on the terminal reaches the parent only, which stops the
    # workers itself, so no worker prints a KeyboardInterrupt while it is still starting.
    process = subprocess.Popen(
        [str(python or sys.executable), "-c", WORKER_COMMAND, str(theirs.fileno())],
        pass_fds=(theirs.fileno(),), env=worker_environment(), stdin=subprocess.DEVNULL, process_group=0,
    )
    theirs.close()
    return process, ours


def read_dotenv(path: Path) -> dict[str, str]:
    """`KEY=value` lines of a .env file, keys upper-cased; enough for a prediction. Only a regular file
    is read, as the settings do (a named pipe would block, /dev/zero would never end)."""
    try:
        if not path.is_file():
            return {}
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    values = {}
    for line in text.splitlines():
        key, equals, value = line.strip().removeprefix("export ").partition("=")
        if equals and not key.startswith("#"):
            values[key.strip().upper()] = value.split(" #")[0].strip().strip("'\"")
    return values


def flag_values(argv: list[str]) -> dict[str, str]:
    """`--name value` and `--name=value` pairs of a command line, up to `--`."""
    values: dict[str, str] = {}
    for at, word in enumerate(argv):
        if word == "--":
            break
        name, equals, value = word.partition("=")
        if name.startswith("--"):
            values[name[2:]] = value if equals else (argv[at + 1] if at + 1 < len(argv) else "")
    return values


def regular_run(argv: list[str]) -> bool:
    """Whether the command line runs an entry script with the toolkit's own interpreter."""
    if any(word in ("-h", "--help") for word in argv[:argv.index("--") if "--" in argv else None]):
        return False
    flags = flag_values(argv)
    return "entry_script" in flags and not {"job", "python", "container"} & set(flags)


def count(text: str | None) -> int | None:
    """A count as the settings would read it, or None; short, so that int() can never refuse it."""
    text = (text or "").strip()
    return int(text) if text.isdecimal() and text.isascii() and len(text) <= 6 else None


def predicted_workers(argv: list[str], environ: dict[str, str], dotenv: dict[str, str],
                      cpu_count: int) -> int:
    """How many workers a regular runner command line will start (0: none, or not a regular run)."""
    if not regular_run(argv) or environ.get("LOCAL_PYTHON") or dotenv.get("LOCAL_PYTHON"):
        return 0
    flags = flag_values(argv)
    counts = {}
    for name, default in DEFAULT_COUNTS.items():
        value = count(flags.get(name) or environ.get(name.upper()) or dotenv.get(name.upper()))
        counts[name] = default if value is None else value
    cap = counts["local_max_workers"] or cpu_count
    # At most one per CPU: more would slow the parent's imports, and a typo must not start thousands.
    return max(1, min(counts["node_count"] * counts["process_count_per_node"], cap, cpu_count))


@dataclass
class WarmWorkers:
    """The workers started ahead, in start order; `Pool.spawn` takes them one by one."""

    waiting: list[tuple[subprocess.Popen, socket.socket]] = field(default_factory=list)
    discarded: list[subprocess.Popen] = field(default_factory=list)

    def adopt(self, python: Path | None) -> tuple[subprocess.Popen, socket.socket] | None:
        """A waiting worker that is still alive, if they run this interpreter (None: the toolkit's own)."""
        if python is not None and python != Path(sys.executable).absolute():
            return None
        while self.waiting:
            process, ours = self.waiting.pop(0)
            if process.poll() is None:
                return process, ours
            ours.close()  # killed while it waited (the OOM killer, a user): reaped by poll()
        return None

    def discard(self) -> None:
        """Lets the workers nobody adopted go: they read end-of-file and exit (reaped by `reap`)."""
        for process, ours in self.waiting:
            ours.close()
            self.discarded.append(process)
        self.waiting = []

    def reap(self, deadline: float = 0.0) -> None:
        """Waits for every worker nobody adopted: until `deadline` (time.monotonic()) they may exit on
        their own, as the pool's workers may; then they are killed (they hold nothing yet: no spec, no
        entry script). None outlives the command, none is left a zombie."""
        self.discard()
        for process in self.discarded:
            try:
                process.wait(max(deadline - time.monotonic(), 0))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.discarded = []


_started = WarmWorkers()  # this process's; empty unless `start` ran (the runner's command line)


def start(argv: list[str]) -> None:
    """Starts the workers a runner command line will need, before anything else is imported; whatever
    ends the command (an error, a signal, the end of the run), the ones nobody adopted are reaped."""
    if not regular_run(argv):
        return
    workers = predicted_workers(argv, dict(os.environ), read_dotenv(Path(".env")), os.cpu_count() or 1)
    if workers:
        atexit.register(_started.reap)
    _started.waiting.extend(start_worker(None) for _ in range(workers))


def started() -> WarmWorkers:
    return _started
