import pytest

from steps import prepare_step
from steps.prepare import copy_files, iter_files


def test_copies_every_file_keeping_relative_paths(tmp_path):
    source = tmp_path / "store"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_text("A")
    (source / "sub" / "b.txt").write_text("B")
    (source / ".hidden").write_text("H")
    assert copy_files(source, tmp_path / "out") == 2
    assert (tmp_path / "out" / "sub" / "b.txt").read_text() == "B"
    assert [str(p) for p in iter_files(tmp_path / "out")] == ["a.txt", "sub/b.txt"]


def test_refuses_a_non_empty_output(tmp_path):
    (tmp_path / "store").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "stale.txt").write_text("old")
    with pytest.raises(FileExistsError):
        copy_files(tmp_path / "store", tmp_path / "out")


def test_step_reports_a_missing_source_with_exit_2(tmp_path, caplog):
    assert prepare_step.main(["--source-dir", str(tmp_path / "nope"), "--output", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()
    assert "preparation failed: input folder" in caplog.text


def test_a_link_to_nothing_is_skipped_with_a_warning(tmp_path, caplog):
    source = tmp_path / "store"
    source.mkdir()
    (source / "a.txt").write_text("A")
    (source / "gone.txt").symlink_to(tmp_path / "nowhere")
    assert copy_files(source, tmp_path / "out") == 1
    assert "skipping" in caplog.text and "gone.txt" in caplog.text
