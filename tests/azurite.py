"""The Azurite blob emulator as a test fixture: installed by `make test`, started on a free loopback port."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from orchestration.paths import ROOT

# `make test` installs it here (npm ci in tools/npm); AZURITE names another place.
AZURITE = ROOT / os.environ.get("AZURITE", "tools/npm/node_modules/.bin/azurite-blob")
# The lock's Node.js, as make links it (`make install`); a bare pytest run still finds it.
NODE = Path(sys.executable).parent.parent / "node" / "bin" / "node"
ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key (public, documented); not a secret.
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def connection_string(port: int, key: str = KEY) -> str:
    return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={key};"
            f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};")


def start_azurite(port: int) -> tuple[subprocess.Popen | None, str]:
    """(the running emulator, '') once it accepts connections on `port`, or (None, what it printed)."""
    process = subprocess.Popen(
        [str(NODE), str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence",
         "--disableTelemetry", "--skipApiVersionCheck", "--silent"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    deadline = time.monotonic() + 30
    while not listens(process.pid, port):  # itself: another test process's azurite may hold the port
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            return None, process.communicate()[0]
        time.sleep(0.05)
    return process, ""


def listens(pid: int, port: int) -> bool:
    """Whether process `pid` holds a socket listening on 127.0.0.1:`port` (read from /proc)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == f"0100007F:{port:04X}" and fields[3] == "0A":  # LISTEN
            inodes.add(f"socket:[{fields[9]}]")
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}") in inodes for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:  # it has exited
        return False


@pytest.fixture(scope="session")
def azurite() -> Iterator[int]:
    """Starts azurite-blob in memory on a free port; yields the port. Fails (never skips) if missing."""
    if not AZURITE.exists():
        pytest.fail(f"{AZURITE} is missing: run `make test`, which installs it (npm ci in tools/npm)")
    if not NODE.exists():
        pytest.fail(f"{NODE} is missing: run `make install`, which links the lock's Node.js there")
    for _ in range(3):  # a free port can be taken by another test process before azurite binds it
        port = free_port()
        process, output = start_azurite(port)
        if process is not None:
            break
    else:
        pytest.fail(f"azurite did not start: {output}")
    yield port
    process.terminate()
    process.wait(10)
