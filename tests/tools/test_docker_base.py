"""The base a local image build uses: the pinned Azure ML base when it can be had, else the stand-in, which
says it is one and carries this machine's trust."""
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import clean_env
from tools.docker_base import CA_VARIABLES, STAND_IN, STAND_IN_CA, Found, choose, import_changes, pinned_base

CA_BUNDLE_MISSING = Path("/nonexistent/ca.crt")


@pytest.mark.parametrize("found, step", [
    (Found(pinned_present=True, pull_error="", stand_in_present=True), "pinned"),
    (Found(pinned_present=False, pull_error="", stand_in_present=True), "pinned"),  # pulled
    (Found(pinned_present=False, pull_error="no such host", stand_in_present=True), "stand-in"),
    (Found(pinned_present=False, pull_error="no such host", stand_in_present=False), "make stand-in"),
])
def test_the_pinned_base_is_used_whenever_it_can_be_had(found, step):
    assert choose(found) == step


def test_the_stand_in_is_named_and_labelled_as_one_and_never_as_the_pinned_base():
    assert "stand-in" in STAND_IN and pinned_base().split(":")[0] not in STAND_IN
    (label,) = [change for change in import_changes(CA_BUNDLE_MISSING) if change.startswith("LABEL")]
    assert "stand-in for the Azure ML base image" in label  # docker-push refuses images that carry it


def test_the_stand_in_trusts_what_this_machine_trusts_where_it_has_a_bundle(tmp_path):
    bundle = tmp_path / "ca.crt"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    assert {f"ENV {name}={STAND_IN_CA}" for name in CA_VARIABLES} <= set(import_changes(bundle))
    assert not [change for change in import_changes(CA_BUNDLE_MISSING) if STAND_IN_CA in change]


def test_without_an_engine_it_says_what_to_run_first(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    done = subprocess.run([sys.executable, "-m", "orchestration", "tools.docker_base"], capture_output=True,
                          text=True, env=clean_env(PATH=str(empty)), timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines()[-1] == \
        "exit 2: no Docker engine answers: run `make docker-engine` first"
