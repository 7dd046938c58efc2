"""Workers inside a container image (`--container IMAGE`): the parent stays here, so every runner semantic
(records, resume, thresholds, timeouts, signals, the lock) is the same as for workers on this machine.

Each worker is `docker run` of the image's `python`, as the calling user (so files it writes are that
user's), with what it reads and writes mounted at the same paths as here: the toolkit's code and the entry
script's folder read-only, the inputs read-only, the output writable. No fd crosses into a container, so a
worker connects back to the parent over a Unix socket in a folder mounted for it. The parent talks to the
`docker run` client as to any worker: signals reach the worker through it (`--init` passes them on); a
client killed (a timeout) leaves its container running, so the container is removed when its worker is
reaped, and every container of the run when the run ends.
"""
from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from orchestration.paths import SRC
from orchestration.prs.config import RunConfig
from orchestration.prs.interpreter import OLDEST, PROBE  # the same check as for --python

log = logging.getLogger(__name__)

# The worker's entry point in the container: the same `main` as on this machine, on a socket it connects.
WORKER_COMMAND = ("import socket, sys; from orchestration.prs.worker import main; "
                  "s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); main(s.detach())")
LABEL = "toolkit.run"  # every container of a run carries it, so the run's end finds what is left
CONNECT_SECONDS = 120  # a container's start (seconds), its interpreter's, and the worker module's imports
# What a worker gets from this machine's environment in the container (the run's own environment
# variables travel in its spec): its imports, and unbuffered output.
WORKER_VARIABLES = {"PYTHONPATH": str(SRC), "PYTHONUNBUFFERED": "1"}


def container_problem(image: str, tabular: bool) -> str:
    """Why workers cannot run in `image` here, or ''. Checked once before the run, so that a wrong image
    is one clear message rather than every worker failing to start."""
    if not shutil.which("docker"):
        return f"--container {image}: no docker command here; install Docker or run without --container"
    try:
        found = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", image],
                               capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return f"--container {image}: the Docker engine did not answer within 30 s"
    if found.returncode == 0:
        probe = subprocess.run(["docker", "run", "--rm", f"--volume={SRC}:{SRC}:ro",
                                f"--env=PYTHONPATH={SRC}", f"--user={os.getuid()}:{os.getgid()}",
                                "--env=HOME=/tmp", image, "python", "-c", PROBE.format(oldest=OLDEST),
                                *(["pandas"] if tabular else [])],
                               capture_output=True, text=True, timeout=300)
        if probe.returncode:
            lines = [line for line in probe.stderr.strip().splitlines()
                     if "docker run --help" not in line] or [f"exit code {probe.returncode}"]
            return f"--container {image} cannot run the workers: {lines[-1]}"
        return ""
    if "no such image" in found.stderr.lower():
        return (f"--container {image}: no such image here; build it (make docker-build) or pull it "
                "(docker pull)")
    return f"--container {image}: no Docker engine answers; start one (make docker-engine)"


def bind(path: Path, writable: bool) -> str:
    """A `--mount` bind of `path` at the same path: unlike `--volume`, any character (a `:`) is allowed,
    and a missing source is an error rather than a folder docker creates as root."""
    fields = [f"source={path}", f"target={path}"]
    quoted = [f'"{field}"' if ("," in field or '"' in field) else field
              for field in [field.replace('"', '""') for field in fields]]
    return ",".join(["--mount=type=bind", *quoted] + ([] if writable else ["readonly"]))


def docker_run(image: str, name: str, label: str, mounts: dict[Path, bool], workdir: Path,
               variables: list[str], argv: list[str]) -> list[str]:
    """The `docker run` command line of `argv` in `image`, as the calling user, with each of `mounts`
    (path: writable) at the same path. Only `variables` are passed in, by name: their values come from
    the client's environment, so none shows in a process list (this machine's PATH, HOME and Python
    settings would be wrong there anyway)."""
    return ["docker", "run", "--rm", "--init", f"--name={name}", f"--label={LABEL}={label}",
            f"--user={os.getuid()}:{os.getgid()}", "--env=HOME=/tmp", *(f"--env={key}" for key in variables),
            f"--workdir={workdir}", *(bind(path, writable) for path, writable in mounts.items()), image,
            *argv]


def argument_paths(arguments: tuple[str, ...]) -> list[Path]:
    """The existing absolute paths among `--flag value` and `--flag=value` arguments: what the entry
    script may read or write besides its input, mounted writable as it is here."""
    values = [word.partition("=")[2] if word.startswith("-") else word for word in arguments]
    paths = [Path(value) for value in values if value.startswith("/")]
    return [path for path in paths if len(path.parts) > 2 and path.exists()]  # never / or /usr over the image


def remove(*names: str) -> None:
    """Removes containers (still running when their `docker run` client was killed)."""
    if names:
        subprocess.run(["docker", "rm", "--force", *names], capture_output=True, timeout=120)


def mounts_of(read: list[Path], written: list[Path]) -> dict[Path, bool]:
    """One mount per path (resolved), writable where any use writes it."""
    mounts = {path.resolve(): False for path in read}
    mounts.update({path.resolve(): True for path in written})
    return mounts


@dataclass
class Containers:
    """The worker containers of one run."""
    image: str
    mounts: dict[Path, bool]  # path: writable, each mounted at the same path in the container
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    sockets: Path | None = None  # made with the first worker: a Unix socket's path is at most 107 bytes
    names: dict[int, str] = field(default_factory=dict)  # docker run client pid -> its container's name
    started: int = 0

    @classmethod
    def for_run(cls, config: RunConfig) -> "Containers":
        """What the run's workers read (the toolkit, the entry script's folder, the inputs, a
        deployment's model, an MLTable's folder and the folders of its files) and write (the output, the
        folder of an append_row_to file, and any existing path among the entry script's arguments: a
        model, an output of a job's node)."""
        assert config.container
        read = [SRC, config.entry_script.parent, *config.inputs, *config.read_paths]
        if config.table:
            read += [Path(config.table["root"])] + sorted({Path(f).parent for f in config.table["files"]})
        written = [config.output] + ([config.append_row_to.parent] if config.append_row_to else [])
        written += argument_paths(config.arguments)
        return cls(config.container, mounts_of(read, written))

    def command(self, name: str, socket_path: Path) -> list[str]:
        assert self.sockets
        return docker_run(self.image, name, self.run, {**self.mounts, self.sockets: True}, self.sockets,
                          list(WORKER_VARIABLES), ["python", "-c", WORKER_COMMAND, str(socket_path)])

    def start_worker(self) -> tuple[subprocess.Popen, socket.socket]:
        """A worker in a new container, and this side of its connection (closed if it never connected)."""
        if self.sockets is None:
            short = "/tmp" if Path("/tmp").is_dir() else None  # a long TMPDIR would not fit
            self.sockets = Path(tempfile.mkdtemp(prefix="tkw-", dir=short))
        self.started += 1
        name = f"toolkit-{self.run}-{self.started}"
        path = self.sockets / f"{self.started}.sock"
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(str(path))
        listener.listen(1)
        listener.settimeout(0.2)
        # A process group of its own, as every worker (prs.warm.start_worker).
        process = subprocess.Popen(self.command(name, path), stdin=subprocess.DEVNULL, process_group=0,
                                   env={**os.environ, **WORKER_VARIABLES})
        self.names[process.pid] = name
        deadline = time.monotonic() + CONNECT_SECONDS
        try:
            while True:
                try:
                    connection, _ = listener.accept()
                    connection.settimeout(None)
                    return process, connection
                except socket.timeout:
                    # Not poll(): a reaped client's pid could be another process's by the time the pool
                    # opens its pidfd. The pool reaps it, and counts a worker that never started.
                    exited = os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
                    if exited is not None or time.monotonic() > deadline:
                        log.error("worker container %s did not connect%s", name,
                                  f" (docker run exited {exited.si_status})" if exited else " in time")
                        ours, theirs = socket.socketpair()
                        theirs.close()
                        return process, ours  # the pool sees the worker gone
        finally:
            listener.close()
            path.unlink(missing_ok=True)

    def remove(self, pid: int) -> None:
        """Removes a worker's container: killing its `docker run` client would leave it running. Done
        before the client is killed (a timeout), so no row is written after the attempt is charged."""
        name = self.names.pop(pid, None)
        if name:
            remove(name)

    def remove_all(self) -> None:
        """Removes every container of the run that is left (a stop that is not graceful, the end)."""
        left = subprocess.run(["docker", "ps", "--all", "--quiet", "--filter", f"label={LABEL}={self.run}"],
                              capture_output=True, text=True, timeout=120).stdout.split()
        remove(*left)
        self.names.clear()

    def close(self) -> None:
        """Removes every container of the run that is left, and the sockets' folder."""
        self.remove_all()
        if self.sockets:
            shutil.rmtree(self.sockets, ignore_errors=True)
