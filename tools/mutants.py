"""Mutation check of the cloud harness: each cloud command, broken in one argument the service would
reject, must fail a test (`make mutants`).

The cloud tests first run on an unchanged copy of the repository and must all pass. Then each mutant,
one textual change to the code, is made in a fresh copy (never in this one) and the tests must fail on
it: a failed assertion, not a test that could not run. The report names the first test that caught each
mutant; a mutant no test catches is a gap in the harness, and the command exits 1.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from orchestration.commands import ArgumentParser, UsageError, last_line, run_command
from orchestration.errors import EXIT_FAILED, EXIT_OK

ROOT = Path(__file__).resolve().parent.parent
TESTS = ["tests/orchestration/cloud", "tests/orchestration/jobs/test_parity.py"]


@dataclass(frozen=True)
class Mutant:
    command: str  # the make target it breaks
    what: str  # what the service would get wrong
    file: str
    old: str
    new: str


V1, V2, WS1, WS2 = ("src/orchestration/cloud/pipeline_v1.py", "src/orchestration/cloud/pipeline_v2.py",
                    "src/orchestration/cloud/workspace_v1.py", "src/orchestration/cloud/workspace_v2.py")
CLI, BLOBS = "src/orchestration/cloud/cli.py", "src/orchestration/cloud/blob_store.py"

MUTANTS = [
    Mutant("provision", "the cluster's maximum node count is its minimum", WS1,
           'max_nodes=wanted["max_nodes"]', 'max_nodes=wanted["min_nodes"]'),
    Mutant("provision", "the datastore is registered without creating its container", WS1,
           "create_if_not_exists=True,", "create_if_not_exists=False,"),
    Mutant("upload", "the files land at the container's root, not under INPUT_DIR", BLOBS,
           "name = blob_name(prefix, relative)", 'name = blob_name("", relative)'),
    # (ParallelRunStep mounts its inputs whatever their mode, so the preparation's input is the one to break)
    Mutant("publish (v1)", "the preparation gets the raw folder downloaded, not mounted", V1,
           '"path_on_datastore": settings.input_dir.strip("/"), "mode": "mount"}]',
           '"path_on_datastore": settings.input_dir.strip("/"), "mode": "download"}]'),
    Mutant("publish (v1)", "the extraction has no output", V1,
           "inputs=[consumed], output=extracted,", "inputs=[consumed], output=None,"),
    Mutant("publish (v1)", "the training step runs on a renamed compute", V1,
           'compute_target=compute, runconfig=runconfig, allow_reuse=train_plan["allow_reuse"]',
           'compute_target="cpu-cluster-2", runconfig=runconfig, allow_reuse=train_plan["allow_reuse"]'),
    Mutant("publish (v1)", "the image build looks for the Dockerfile where the context has none", V1,
           "path=str(folder), dockerfile_path=dockerfile_path)",
           'path=str(folder), dockerfile_path="docker/Dockerfile")'),
    Mutant("run (v1)", "the run is submitted to another experiment", WS1,
           'endpoint.submit(plan["pipeline"]["experiment"])', 'endpoint.submit("default")'),
    Mutant("publish (v2)", "the extraction reads the prepared files downloaded, not mounted", V2,
           'inputs={"prepared": Input(type="uri_folder", mode="ro_mount")}',
           'inputs={"prepared": Input(type="uri_folder", mode="download")}'),
    Mutant("publish (v2)", "the parallel task's entry script is not the extraction's", V2,
           '"entry_script": ENTRY_SCRIPT,', '"entry_script": PREPARE_SCRIPT,'),
    Mutant("publish (v2)", "the image build looks for the Dockerfile where the context has none", WS2,
           "build=BuildContext(path=str(context), dockerfile_path=BUILD_DOCKERFILE),",
           'build=BuildContext(path=str(context), dockerfile_path="docker/Dockerfile"),'),
    Mutant("run (v2)", "the job runs on a renamed compute", V2,
           "compute=settings.aml_compute_cluster_name,", 'compute="cpu-cluster-2",'),
    Mutant("run (v2)", "the model output is written to the datastore's root", V2,
           'path=f"{outputs}/training")},', 'path=datastore_uri(store, ""))},'),
    Mutant("run (v2)", "the job runs the first component version, not the newest", WS2,
           'client.components.get(name, label="latest").version',
           'client.components.get(name, version="1").version'),
    Mutant("run (v2)", "the raw input is read from the container's root", V2,
           "path=datastore_uri(store, settings.input_dir))},", 'path=datastore_uri(store, ""))},'),
    Mutant("logs (v2)", "a failed step's logs are not downloaded", WS2,
           'client.jobs.download(child, download_path=str(target / "steps" / step), all=True)', "pass"),
    Mutant("registry", "docker-push is given a login server in another domain", WS1,
           'return f"{registry_id.rstrip(\'/\').rsplit(\'/\', 1)[1]}.azurecr.io"',
           'return f"{registry_id.rstrip(\'/\').rsplit(\'/\', 1)[1]}.azurecr.com"'),
    Mutant("logs (v1)", "the logs of another run are asked for", WS1,
           "return PipelineRun(Experiment(workspace, plan[\"pipeline\"][\"experiment\"]), run_id)",
           "return PipelineRun(Experiment(workspace, plan[\"pipeline\"][\"experiment\"]), run_id + \"x\")"),
]


def tracked_copy(target: Path) -> None:
    """The repository's tracked files (as they are in the working tree) in `target`."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    modules = ROOT / "tools" / "npm" / "node_modules"  # Azurite, installed by make, not tracked
    if modules.is_dir():
        (target / "tools" / "npm" / "node_modules").symlink_to(modules)


def mutate(mutant: Mutant, copy: Path) -> None:
    path = copy / mutant.file
    text = path.read_text()
    if text.count(mutant.old) != 1:
        raise UsageError(f"mutant {mutant.what!r}: its text is not once in {mutant.file}; "
                         "update tools/mutants.py")
    path.write_text(text.replace(mutant.old, mutant.new))


@dataclass(frozen=True)
class Outcome:
    failed: str | None  # the first test that failed
    errors: bool  # a test could not run (setup, collection): the run proves nothing


def run_tests(copy: Path, python: str, first_failure_only: bool) -> Outcome:
    environment = {**os.environ, "PYTHONPATH": f"{copy / 'src'}{os.pathsep}{copy}",
                   "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0", "-rfE",
                             *(["--maxfail=1"] if first_failure_only else []), *TESTS],
                            cwd=copy, env=environment, capture_output=True, text=True)
    failed = re.search(r"^FAILED (\S+)", result.stdout, re.MULTILINE)
    # pytest's summary lines (-rfE) name an errored test by its file; a captured log line starts with
    # "ERROR" too, and is not one
    errored = re.search(r"^ERROR \S+\.py\b", result.stdout, re.MULTILINE)
    errors = bool(errored) or result.returncode not in (0, 1)
    return Outcome(failed.group(1) if failed else None, errors)


def tests_on_copy(mutant: Mutant | None, python: str) -> Outcome:
    """The tests on a fresh copy of the repository with the mutant's change, or unchanged (None: the
    baseline, which must pass whole, or no mutant's failure means anything); a mutant's run stops at its
    first failure."""
    with tempfile.TemporaryDirectory(prefix="mutant-") as scratch:
        tracked_copy(Path(scratch))
        if mutant is not None:
            mutate(mutant, Path(scratch))
        return run_tests(Path(scratch), python, first_failure_only=mutant is not None)


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m tools.mutants", description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run the mutants whose description contains this text")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTANTS if not args.only or args.only in f"{m.command} {m.what}"]
    if not chosen:
        raise UsageError(f"--only: no mutant's command or description contains {args.only!r}")
    started = time.monotonic()
    unchanged = tests_on_copy(None, sys.executable)
    if unchanged.failed or unchanged.errors:
        print(last_line(EXIT_FAILED, f"the cloud tests do not pass on the unchanged code "
                        f"({unchanged.failed or 'a test could not run'}); fix that first (make test)"))
        return EXIT_FAILED
    survivors = []
    print("| command | mutant | caught by |\n|---|---|---|")
    for mutant in chosen:
        outcome = tests_on_copy(mutant, sys.executable)
        caught = outcome.failed and not outcome.errors  # a test that could not run caught nothing
        shown = f"`{outcome.failed}`" if caught else "**not caught**" + (" (a test errored)" * outcome.errors)
        print(f"| {mutant.command} | {mutant.what} | {shown} |", flush=True)
        if not caught:
            survivors.append(mutant)
    seconds = time.monotonic() - started
    if survivors:
        print(last_line(EXIT_FAILED, f"{len(survivors)} of {len(chosen)} mutants survived ({seconds:.0f} s): "
                        "the harness misses what the rows marked 'not caught' break; add a test for each"))
        return EXIT_FAILED
    print(last_line(EXIT_OK, f"every one of {len(chosen)} mutants was caught by a failing test, and the "
                    f"unchanged code passes them all ({seconds:.0f} s)"))
    return EXIT_OK


if __name__ == "__main__":
    run_command(main)
