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


@pytest.mark.parametrize("command, file, content", [
    ("# it's a comment\necho x > ${{outputs.model}}/f.txt", "f.txt", "x\n"),
    ("cat > ${{outputs.model}}/g.txt <<EOF\nit's at ${{outputs.model}}\nEOF\n"
     "echo y >> ${{outputs.model}}/g.txt", "g.txt", "it's at {path}\ny\n"),
    ("cat > ${{outputs.model}}/h.txt <<'EOF'\nraw ${{outputs.model}}\nEOF", "h.txt", "raw {path}\n"),
    ("cat <<-EOF > ${{outputs.model}}/i.txt\n\tin ${{outputs.model}}\n\tEOF", "i.txt", "in {path}\n"),
])
def test_a_path_after_a_comment_or_in_a_here_document_is_written_where_it_points(tmp_path, command, file,
                                                                                 content):
    import subprocess

    folder = tmp_path / "it's my $out dir"
    folder.mkdir()
    text = substitute(command, {"outputs.model": str(folder)}.get, quoted=lambda name: True)
    subprocess.run(["bash", "-c", text], cwd=tmp_path, check=True)
    assert (folder / file).read_text() == content.format(path=folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder.name]  # nothing beside it
