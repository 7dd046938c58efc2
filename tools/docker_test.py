"""`make docker-test`: builds the runtime and dev images, then tests them (tests/docker/built).

Both are built from docker/Dockerfile on the base tools.docker_base chooses (the pinned Azure ML base, else
the offline stand-in), under fixed tags, so a rerun replaces them: the image a tag named before is removed
when the new build replaced it (the layers they share stay), and nothing else of the engine's is touched.
Ends in one line with the build and test times and what stays on disk.

    python -m tools.docker_test [--tag TAG]
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

from orchestration.commands import ArgumentParser, UsageError, last_line, run_command, setup_logging
from orchestration.errors import EXIT_FAILED
from orchestration.paths import ROOT
from tools.docker_base import docker, pinned_base, resolve

log = logging.getLogger(__name__)

IMAGE = "azureml-batch-toolkit"
TESTS = ROOT / "tests" / "docker" / "built"


def image_id(tag: str) -> str:
    found = docker("image", "inspect", "--format", "{{.Id}}", tag)
    return found.stdout.strip() if found.returncode == 0 else ""


def image_megabytes(tag: str) -> int:
    return int(docker("image", "inspect", "--format", "{{.Size}}", tag).stdout) // 2**20


def builder() -> dict[str, str]:
    """BuildKit where the buildx plugin is installed; else the legacy builder (Debian's docker.io has no
    buildx), which reads the root .dockerignore, the same as docker/Dockerfile.dockerignore."""
    buildx = subprocess.run(["docker", "buildx", "version"], capture_output=True)
    return {"DOCKER_BUILDKIT": "1" if buildx.returncode == 0 else "0"}


def build(target: str, tag: str, base: str) -> float:
    """Builds `target` as `tag`; removes the image the tag named before if this build replaced it."""
    before = image_id(tag)
    started = time.monotonic()
    log.info("building the %s image %s", target, tag)
    built = subprocess.run(["docker", "build", "--file", "docker/Dockerfile", "--build-arg",
                            f"BASE_IMAGE={base}", "--target", target, "--tag", tag, "."], cwd=ROOT,
                           env={**os.environ, **builder()}, stdout=sys.stderr)
    if built.returncode:
        raise UsageError(f"the {target} image did not build (its output is above); fix docker/Dockerfile")
    if before and before != image_id(tag):
        docker("image", "rm", before)  # fails if still in use: kept
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tag", default="docker-test", help="the tag of the images it builds and tests")
    args = parser.parse_args(argv)
    setup_logging()
    base, line = resolve(pinned_base())
    log.info("%s", line)
    runtime, dev = f"{IMAGE}:{args.tag}", f"{IMAGE}:{args.tag}-dev"
    # (the legacy builder builds the dev stage with the runtime target: the second build is then cached)
    seconds = {"build": build("runtime", runtime, base) + build("dev", dev, base)}
    started = time.monotonic()
    tested = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", str(TESTS),
                             "--runtime-image", runtime, "--dev-image", dev, "--base-image", base], cwd=ROOT)
    seconds["tests"] = time.monotonic() - started
    times = ", ".join(f"{name} {value:.0f} s" for name, value in seconds.items())
    if tested.returncode:
        print(last_line(EXIT_FAILED, f"the images' tests failed ({times}); their output is above"))
        return EXIT_FAILED
    kept = f"{runtime} {image_megabytes(runtime)} MB, {dev} {image_megabytes(dev)} MB (shared layers once)"
    which = "the stand-in" if base != pinned_base() else "the pinned"
    print(last_line(0, f"the runtime and dev images passed on {which} base ({times}); kept: {kept}"))
    return 0


if __name__ == "__main__":
    run_command(main)
