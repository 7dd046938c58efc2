"""The GitHub workflows (.github/workflows, docs/ci.md) run only what a developer can run, hold no secret,
cannot be turned against the repository by a pull request, and use actions that still run.

actionlint (make lint) checks their syntax, expressions and known actions' inputs; these are the rules it
has no word for.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestration.paths import ROOT

WORKFLOWS = sorted(path for path in (ROOT / ".github" / "workflows").iterdir()
                   if path.suffix in (".yml", ".yaml"))
# The first major of each action on the Node.js 24 runtime: GitHub removed Node.js 20 from its runners on
# 2026-09-16, and the actionlint that make lint runs predates that.
NODE24_MAJOR = {"actions/checkout": 5, "actions/setup-python": 6, "actions/cache": 5,
                "actions/upload-artifact": 6, "azure/login": 3}
SECRET_SHAPES = [
    re.compile(r"AccountKey=[^;$\s]+"),  # a storage connection string
    re.compile(r"[A-Za-z0-9+/]{40,}={0,2}"),  # a storage key, a token
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"),  # a tenant, an app id
    re.compile(r"[A-Za-z0-9_.-]{3}\dQ~[A-Za-z0-9_.~-]{31,}"),  # an Entra client secret
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"),  # a GitHub token
    re.compile(r"[?&]sig=[A-Za-z0-9%+/=]{10,}"),  # a SAS
]


def load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    document["on"] = document.pop(True, document.get("on"))  # YAML 1.1 reads the key `on` as true
    return document


def steps(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in document["jobs"].values() for step in job.get("steps", [])]


def make_targets_called(document: dict[str, Any]) -> set[str]:
    targets = set()
    for step in steps(document):
        for command in re.findall(r"(?:^|[;&|]\s*)make\s+([^\n;&|]+)", step.get("run", ""), re.MULTILINE):
            targets |= {word for word in command.split() if not word.startswith("-") and "=" not in word}
    return targets


def makefile_targets() -> set[str]:
    listed = subprocess.run(["make", "-qp"], cwd=ROOT, capture_output=True, text=True).stdout
    return set(re.findall(r"^([a-z][a-z0-9-]*):", listed, re.MULTILINE))


def secrets_in(text: str) -> list[str]:
    """Values in a workflow that look like secrets; `${{ secrets.NAME }}` references are the way. The
    `uses:` lines are left out: an action pinned to a commit is 40 hexadecimal digits, not a secret."""
    text = "\n".join(line for line in text.splitlines()
                     if not line.strip().removeprefix("- ").startswith("uses:"))
    return [match.group(0) for shape in SECRET_SHAPES for match in shape.finditer(text)]


def pull_request_target_risks(document: dict[str, Any]) -> list[str]:
    """A pull_request_target workflow runs with the repository's secrets and write token: checking out
    the pull request's code there runs a stranger's code with them."""
    triggers = document["on"]
    if "pull_request_target" not in (triggers if isinstance(triggers, (dict, list)) else [triggers]):
        return []
    return [str(step) for step in steps(document) if step.get("uses", "").startswith("actions/checkout")
            and "pull_request" in str(step.get("with", {}).get("ref", "")) + str(step.get("with", {}))]


def test_there_are_the_ci_and_publish_workflows():
    assert [path.name for path in WORKFLOWS] == ["ci.yml", "publish.yml"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_every_make_target_a_workflow_calls_exists(path):
    called = make_targets_called(load(path))
    assert called, "a workflow here runs make targets"
    assert called <= makefile_targets(), called - makefile_targets()


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_no_workflow_holds_a_secret_value(path):
    text = path.read_text()
    assert secrets_in(text) == []
    assert not re.search(r"client-secret|creds:", text)  # azure/login by federation, never a secret
    # a secret only ever reaches a step's environment, whole, never a command line or an input
    references = re.findall(r"^\s*(\S+): (.*\bsecrets\..*)$", text, re.MULTILINE)
    assert all(re.fullmatch(r"\$\{\{ secrets\.[A-Z_]+ \}\}", value) and name.isupper()
               for name, value in references), references


def test_the_secret_shapes_find_what_they_are_for():
    leaked = "AccountKey=Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA==;"
    assert secrets_in(f"env:\n  CONN: DefaultEndpointsProtocol=https;{leaked}")
    assert secrets_in("tenant-id: 72f988bf-86f1-41af-91ab-2d7cd011db47")
    assert secrets_in("key: ${{ secrets.AML_STORAGE_ACCOUNT_KEY }}") == []
    assert secrets_in("url: https://acct.blob.core.windows.net/c?sv=2024&sig=Zm9vYmFyYmF6cXV4%2B")
    assert secrets_in("token: ghp_abcdefghijklmnopqrstuvwxyz0123456789")
    assert secrets_in("- uses: actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8") == []


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_no_pull_request_target_runs_the_pull_requests_code(path):
    assert pull_request_target_risks(load(path)) == []
    assert "pull_request_target" not in load(path)["on"]


def test_a_pull_request_target_checkout_of_the_pull_request_is_found():
    risky = {"on": {"pull_request_target": None}, "jobs": {"a": {"steps": [
        {"uses": "actions/checkout@v5", "with": {"ref": "${{ github.event.pull_request.head.sha }}"}}]}}}
    assert pull_request_target_risks(risky)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_every_action_is_a_major_version_that_runs_on_node24(path):
    for step in steps(load(path)):
        if "uses" in step:
            action, _, version = step["uses"].partition("@")
            assert action in NODE24_MAJOR, f"{action}: add its first Node.js 24 major to NODE24_MAJOR"
            assert re.fullmatch(r"v\d+", version) and int(version[1:]) >= NODE24_MAJOR[action], step["uses"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_python_comes_from_python_version_and_the_token_is_read_only(path):
    document = load(path)
    for step in steps(document):
        if step.get("uses", "").startswith("actions/setup-python"):
            assert step["with"] == {"python-version-file": ".python-version"}
        if step.get("uses", "").startswith("actions/checkout"):
            assert step["with"]["persist-credentials"] is False
    assert document["permissions"]["contents"] == "read"
    for job in document["jobs"].values():  # no job asks for more than the workflow grants
        assert "permissions" not in job


def test_ci_runs_the_developers_checks_then_the_image_and_shows_the_plan():
    document = load(ROOT / ".github" / "workflows" / "ci.yml")
    assert set(document["on"]) == {"pull_request", "push"}
    jobs = document["jobs"]
    assert [step["run"] for step in jobs["test"]["steps"] if "run" in step] == ["make lint test"]
    assert jobs["docker-test"]["needs"] == "test"
    assert "make docker-test" in [step.get("run") for step in jobs["docker-test"]["steps"]]
    runs = " ".join(step.get("run", "") for step in jobs["plan"]["steps"])
    assert "make plan" in runs and "GITHUB_STEP_SUMMARY" in runs
    for name, job in jobs.items():  # each job its own cache: one that never fills ~/.npm saves no key first
        (cache,) = [step for step in job["steps"] if step.get("uses", "").startswith("actions/cache")]
        assert cache["with"]["key"].startswith(f"{name}-")
    assert "id-token" not in str(document["permissions"]) and "environment" not in jobs["plan"]


def test_publish_waits_for_the_environments_approval_and_logs_in_by_federation():
    document = load(ROOT / ".github" / "workflows" / "publish.yml")
    assert set(document["on"]) == {"workflow_dispatch", "push"}
    assert document["on"]["push"] == {"tags": ["v*"]}
    assert document["permissions"] == {"contents": "read", "id-token": "write"}
    (job,) = document["jobs"].values()
    assert job["environment"] == "azure"
    for login in (step for step in job["steps"] if step.get("uses", "").startswith("azure/login")):
        assert set(login["with"]) == {"client-id", "tenant-id", "subscription-id"}
        assert all(value.startswith("${{ vars.") for value in login["with"].values())
    runs = [step["run"] for step in job["steps"] if "run" in step and step["run"].startswith("make ")]
    assert runs == ["make install", "make provision", "make publish", "make run"]
    # each command that reaches Azure runs right after a login: the Azure CLI renews its tokens with
    # GitHub's token, which lives minutes
    names = [step.get("run") or step["uses"].split("@")[0] for step in job["steps"]]
    for command in ("make provision", "make publish", "make run"):
        assert names[names.index(command) - 1] == "azure/login"
    assert job["env"]["SDK"].endswith("|| '' }}")  # not chosen by hand: empty, and AML_SDK decides
    upload = job["steps"][-1]
    assert upload["uses"].startswith("actions/upload-artifact") and upload["if"] == "always()"
    assert upload["with"]["path"] == "outputs/azure/"
