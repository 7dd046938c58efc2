import json
import logging

from steps import extract_entry
from tests.conftest import record_text


def test_run_returns_one_element_per_good_file_and_logs_bad_ones(tmp_path, caplog):
    good = tmp_path / "good.txt"
    good.write_text(record_text(1) + "\n" + record_text(2))
    bad = tmp_path / "bad.txt"
    bad.write_text(record_text(3, MedInc="oops"))
    extract_entry.init()
    with caplog.at_level(logging.ERROR, logger="extraction"):
        result = extract_entry.run([str(good), str(bad)])
    assert len(result) == 1  # the runtime counts one succeeded item; bad.txt is a failed item
    assert [json.loads(line)["id"] for line in result[0].split("\n")] == [1, 2]
    assert "failed item" in caplog.text and "bad.txt" in caplog.text and "MedInc is 'oops'" in caplog.text
