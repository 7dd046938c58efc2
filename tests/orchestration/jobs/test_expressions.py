"""`${{...}}` bindings, as Azure substitutes them."""
import pytest

from orchestration.jobs.expressions import BindingError, substitute, whole_reference

VALUES = {"inputs.data": "/d", "outputs.model": "/m", "inputs.unset": None}


def test_expressions_are_replaced_and_optional_parts_kept_only_when_bound():
    text = "train --data ${{inputs.data}} $[[--extra ${{inputs.unset}}]] --model ${{ outputs.model }}$[[ -v]]"
    assert substitute(text, VALUES.get) == "train --data /d  --model /m -v"


def test_an_unbound_expression_is_named():
    with pytest.raises(BindingError, match=r"\$\{\{inputs.missing\}\} has no value"):
        substitute("--x ${{inputs.missing}}", VALUES.get)


def test_a_whole_reference_is_only_an_expression_alone():
    assert whole_reference(" ${{parent.jobs.a.outputs.b}} ") == "parent.jobs.a.outputs.b"
    assert whole_reference("x/${{name}}") is None and whole_reference(5) is None
