"""`make docker-engine`: makes sure a Docker engine answers, and says in one line what it did.

A running engine is used as it is. Otherwise, where this machine allows it (root, Debian's apt), Debian's
engine (`docker.io`) is installed if missing and `dockerd` is started in the background with the options a
machine like this one needs: overlay2 storage (vfs where overlay2 cannot mount), its own log file, and a
pid file, so that `make docker-engine-stop` stops only an engine this tool started. Anything else ends in
one line naming what is missing, exit 2.

    python -m tools.docker_engine [--stop] [--state DIR]
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from orchestration.commands import ArgumentParser, UsageError, last_line, run_command, setup_logging
from orchestration.paths import ROOT
from orchestration.processes import any_running

log = logging.getLogger(__name__)

STATE = ROOT / ".docker-engine"  # the pid file and log of an engine this tool started (kept by make clean)
START_SECONDS = 60  # how long a starting engine may take to answer
STORAGE_DRIVERS = ("overlay2", "vfs")  # vfs copies every layer in full: only where overlay2 fails


@dataclass(frozen=True)
class Machine:
    """What decides how to get an engine here (read by `look`)."""
    server_version: str | None  # the running engine's version, None when none answers
    has_dockerd: bool
    is_root: bool
    has_apt: bool


def next_step(machine: Machine) -> str:
    """What to do on `machine`: "use", "start", "install" (then start), or the reason nothing can be done.

    Pure: the tests decide every case with values."""
    if machine.server_version:
        return "use"
    if not machine.is_root:
        return ("no Docker engine answers, and starting one needs root: start your engine (Docker Desktop, "
                "`sudo systemctl start docker`), or run `sudo make docker-engine`")
    if machine.has_dockerd:
        return "start"
    if machine.has_apt:
        return "install"
    return ("no Docker engine answers, no dockerd is installed, and there is no apt to install Debian's: "
            "install Docker Engine (https://docs.docker.com/engine/install/)")


def server_version() -> str | None:
    """The version the engine reports, or None when none answers (within 10 s)."""
    if not shutil.which("docker"):
        return None
    try:
        answer = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True,
                                text=True, timeout=10)
    except subprocess.TimeoutExpired:
        return None
    version = answer.stdout.strip()
    return version if answer.returncode == 0 and version else None


def look() -> Machine:
    return Machine(server_version(), bool(shutil.which("dockerd")), os.geteuid() == 0,
                   bool(shutil.which("apt-get")))


def apt_install(*packages: str) -> None:
    """Installs Debian packages from the machine's package registry; one clear line if that fails."""
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"],
                    ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages]):
        done = subprocess.run(command, env=environment, capture_output=True, text=True)
        if done.returncode:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise UsageError(f"`{' '.join(command)}` failed ({last}); install {' '.join(packages)} by hand")


def start(state: Path) -> tuple[int, str]:
    """Starts dockerd detached (it is meant to outlive this command), trying each storage driver in turn;
    returns its pid and the driver that worked."""
    state.mkdir(parents=True, exist_ok=True)
    for driver in STORAGE_DRIVERS:
        log_file = state / "dockerd.log"
        with log_file.open("ab") as handle:
            process = subprocess.Popen(["dockerd", "--storage-driver", driver], stdout=handle, stderr=handle,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline and process.poll() is None and not server_version():
            time.sleep(0.5)
        if process.poll() is None and server_version():
            (state / "dockerd.pid").write_text(f"{process.pid}\n")
            return process.pid, driver
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)
        log.warning("dockerd with %s storage did not start (see %s)", driver, log_file)
    raise UsageError(f"dockerd did not start with {' or '.join(STORAGE_DRIVERS)} storage; its log is "
                     f"{state / 'dockerd.log'}")


def stop(state: Path) -> str:
    """Stops the engine this tool started (its pid file), and no other."""
    pid_file = state / "dockerd.pid"
    if not pid_file.exists():
        return "no engine started by make docker-engine is running; nothing stopped"
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_file.unlink()
        return f"the engine started by make docker-engine (pid {pid}) had already stopped"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any_running([pid]):
        time.sleep(0.2)
    pid_file.unlink()
    return f"stopped the engine make docker-engine started (pid {pid})"


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stop", action="store_true", help="stop the engine this tool started")
    parser.add_argument("--state", type=Path, default=STATE, help="its pid file and log")
    args = parser.parse_args(argv)
    setup_logging()
    if args.stop:
        print(last_line(0, stop(args.state)))
        return 0
    machine = look()
    step = next_step(machine)
    if step == "use":
        print(last_line(0, f"a Docker engine is running (server {machine.server_version}); nothing started"))
        return 0
    if step not in ("start", "install"):
        raise UsageError(step)
    if step == "install":
        log.info("installing Debian's docker.io (about a minute)")
        apt_install("docker.io")
    pid, driver = start(args.state)
    which = "Debian's newly installed" if step == "install" else "the installed"
    print(last_line(0, f"started {which} Docker engine {server_version()} ({driver} storage, pid {pid}, log "
                    f"{args.state / 'dockerd.log'}); make docker-engine-stop stops it"))
    return 0


if __name__ == "__main__":
    run_command(main)
