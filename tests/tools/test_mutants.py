"""The harness's mutation check stays aimed: each mutant's text is in its file exactly once, so a mutant
always changes the code (a rename elsewhere makes this fail, not `make mutants` pass by default)."""
import pytest

from orchestration.paths import ROOT
from tools.mutants import MUTANTS


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: f"{m.command}: {m.what}")
def test_each_mutant_changes_its_file_in_one_place(mutant):
    text = (ROOT / mutant.file).read_text()
    assert text.count(mutant.old) == 1


def test_every_cloud_command_has_a_mutant():
    from orchestration.cloud.cli import COMMANDS

    assert {mutant.command.split(" ")[0] for mutant in MUTANTS} == set(COMMANDS)
