"""The base image a local build of docker/Dockerfile uses: the pinned Azure ML base, else a stand-in.

The pinned base (the Dockerfile's `BASE_IMAGE`) is used whenever it is present or can be pulled. Where it
cannot (no route to mcr.microsoft.com, as on the machines this project is built on), a **stand-in** is
made from Debian packages with debootstrap and `docker import`: bash, apt, ca-certificates and Debian's
python3.11 (the interpreter the Dockerfile takes where a base has no conda). It carries this machine's CA
bundle, as the machine's own tools use it, so that a build inside it reaches the same package registries.
Every line that names it says "stand-in"; docs/container.md says what it does and does not prove.

Prints the base to use (the one line a Makefile reads); says what it did in one line on stderr.

    python -m tools.docker_base [--pinned IMAGE]
"""
from __future__ import annotations

import logging
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from orchestration.commands import ArgumentParser, UsageError, last_line, run_command, setup_logging
from orchestration.paths import ROOT
from tools.docker_engine import apt_install

log = logging.getLogger(__name__)

STAND_IN = "azureml-batch-toolkit-base:stand-in-bookworm"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# What the pinned base has and the Dockerfile relies on (bash, apt, CA certificates), and in place of its
# conda, the Python version the lock is resolved for.
PACKAGES = ("ca-certificates", "python3.11", "python3.11-venv", "python3-distutils")  # venv needs distutils
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# Where the stand-in keeps this machine's CA bundle: outside /etc/ssl, so that no later
# update-ca-certificates in a build replaces it.
STAND_IN_CA = "/usr/local/share/stand-in/ca-certificates.crt"
CA_VARIABLES = ("SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS",
                "GIT_SSL_CAINFO")
SECONDS = 600  # debootstrap takes about 30 s here


@dataclass(frozen=True)
class Found:
    """What the engine holds or can fetch (read by `look`)."""
    pinned_present: bool
    pull_error: str  # '' when the pull worked (or was not needed)
    stand_in_present: bool


def choose(found: Found) -> str:
    """"pinned", "stand-in" (present), or "make stand-in". Pure: the tests decide every case with values."""
    if found.pinned_present or not found.pull_error:
        return "pinned"
    return "stand-in" if found.stand_in_present else "make stand-in"


def pinned_base(dockerfile: Path = ROOT / "docker" / "Dockerfile") -> str:
    (base,) = re.findall(r"^ARG BASE_IMAGE=(\S+)$", dockerfile.read_text(), flags=re.MULTILINE)
    return base


def docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)


def present(image: str) -> bool:
    return docker("image", "inspect", image).returncode == 0


def look(pinned: str) -> Found:
    if present(pinned):
        return Found(True, "", present(STAND_IN))
    pull = docker("pull", "--quiet", pinned, timeout=1800)
    reason = "" if pull.returncode == 0 else (pull.stderr.strip().splitlines() or ["no reason given"])[-1]
    return Found(False, reason, present(STAND_IN))


def import_changes(ca_bundle: Path) -> list[str]:
    """The image settings `docker import` adds to the debootstrapped tree."""
    changes = ["CMD [\"/bin/bash\"]", "ENV LANG=C.UTF-8",
               "LABEL org.opencontainers.image.description=\"stand-in for the Azure ML base image, made "
               "from Debian packages: no conda, no OpenMPI\""]
    if ca_bundle.is_file():
        changes += [f"ENV {name}={STAND_IN_CA}" for name in CA_VARIABLES]
    return changes


def make_stand_in(ca_bundle: Path = CA_BUNDLE) -> None:
    """Debootstraps Debian with PACKAGES and imports it as STAND_IN (about a minute here)."""
    if not shutil.which("debootstrap"):
        if not shutil.which("apt-get"):
            raise UsageError("the stand-in base needs debootstrap, and there is no apt to install it: "
                             "install debootstrap, or build where the pinned base can be pulled")
        log.info("installing debootstrap")
        apt_install("debootstrap")
    with tempfile.TemporaryDirectory(prefix="stand-in-") as folder:
        tree = Path(folder) / "root"
        log.info("making the stand-in base from Debian %s (about a minute)", SUITE)
        bootstrap = subprocess.run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
                                    SUITE, str(tree), MIRROR], capture_output=True, text=True,
                                   timeout=SECONDS)
        if bootstrap.returncode:
            last = (bootstrap.stderr.strip() or bootstrap.stdout.strip()).splitlines()[-1:]
            raise UsageError(f"debootstrap of the stand-in base failed: {' '.join(last)}")
        if ca_bundle.is_file():
            target = tree / STAND_IN_CA.lstrip("/")
            target.parent.mkdir(parents=True)
            shutil.copyfile(ca_bundle, target)
        shutil.rmtree(tree / "var" / "cache" / "apt" / "archives", ignore_errors=True)
        changes = [arg for change in import_changes(ca_bundle) for arg in ("--change", change)]
        tar = subprocess.Popen(["tar", "--numeric-owner", "-C", str(tree), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(["docker", "import", *changes, "-", STAND_IN], stdin=tar.stdout,
                                  capture_output=True, text=True, timeout=SECONDS)
        tar.stdout.close()
        tar.wait()
        if imported.returncode or tar.returncode:
            raise UsageError(f"docker import of the stand-in base failed: {imported.stderr.strip()}")


def resolve(pinned: str) -> tuple[str, str]:
    """The base to build on, and the one line that says why."""
    if not shutil.which("docker") or docker("version").returncode:
        raise UsageError("no Docker engine answers: run `make docker-engine` first")
    found = look(pinned)
    step = choose(found)
    if step == "pinned":
        return pinned, f"base: {pinned}, the pinned Azure ML base"
    if step == "make stand-in":
        make_stand_in()
    made = "made" if step == "make stand-in" else "already made"
    return STAND_IN, (f"base: {STAND_IN}, a stand-in for {pinned} ({made}), which cannot be pulled here: "
                      f"{found.pull_error}")


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pinned", default=None, help="the base to use when it can be had "
                        "(default: the Dockerfile's BASE_IMAGE)")
    args = parser.parse_args(argv)
    setup_logging()
    base, line = resolve(args.pinned or pinned_base())
    print(base)
    print(last_line(0, line), file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_command(main)
