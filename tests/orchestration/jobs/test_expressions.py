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


@pytest.mark.parametrize("command, words", [
    ("ls ${{outputs.model}}", ["ls", "/m o'd\"$x"]),
    ('ls "${{outputs.model}}/f"', ["ls", "/m o'd\"$x/f"]),
    ("ls '${{outputs.model}}'", ["ls", "/m o'd\"$x"]),
    ("ls \"$(echo ${{outputs.model}})\" x", ["ls", "/m o'd\"$x", "x"]),
])
def test_a_quoted_value_is_one_word_wherever_it_lands_in_bash(command, words):
    import subprocess

    text = substitute(command, {"outputs.model": "/m o'd\"$x"}.get, quoted=lambda name: True)
    printed = subprocess.run(["bash", "-c", f"set -- {text.replace('ls ', '', 1)}; printf '%s\\n' \"$@\""],
                             capture_output=True, text=True, check=True).stdout
    assert ["ls", *printed.splitlines()] == words


def test_an_unquoted_value_is_pasted_as_azure_pastes_it():
    assert substitute("echo ${{inputs.data}}", {"inputs.data": "a b"}.get) == "echo a b"


@pytest.mark.parametrize("command", [
    "# it's a comment\necho x > ${{outputs.model}}/f.txt",
    "cat > ${{outputs.model}}/g.txt <<EOF\nit's\nEOF",
    "tr a-z A-Z <<< 'x' >/dev/null; rm -rf ${{outputs.model}}/*",
    "echo ${GREETING:- #x} > ${{outputs.model}}/g",
    "x=`echo 'a`; touch ${{outputs.model}}",
    'echo "${v:-\'"\'}"; touch ${{outputs.model}}',
    "echo \"$(case a in a) echo \"'\";; esac)\"; touch ${{outputs.model}}",
    "echo a \\\n ${{outputs.model}}",
])
def test_a_path_that_needs_quoting_is_refused_where_bash_quoting_is_not_followed(command):
    from orchestration.jobs.expressions import UnsafePlacement

    with pytest.raises(UnsafePlacement, match="needs quoting, and the command uses"):
        substitute(command, {"outputs.model": "/tmp/my out"}.get, quoted=lambda name: True)
    safe = substitute(command, {"outputs.model": "/tmp/my_out"}.get, quoted=lambda name: True)
    assert safe == command.replace("${{outputs.model}}", "/tmp/my_out")  # pasted as Azure pastes it


def test_a_pasted_literal_that_opens_a_quote_is_followed_before_a_path_is_quoted(tmp_path):
    import subprocess

    folder = tmp_path / "out dir"
    folder.mkdir()
    values = {"inputs.note": "it's", "outputs.o": str(folder)}
    text = substitute("echo ${{inputs.note}} fine'; touch ${{outputs.o}}/x", values.get,
                      quoted=lambda name: name.startswith("outputs"))
    subprocess.run(["bash", "-c", text], cwd=tmp_path, check=True, capture_output=True)
    assert (folder / "x").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["out dir"]
