import json

import pytest

from steps.extract import FIELDS, MalformedRecordError, extract_file, parse_records, to_json_lines
from tests.conftest import record_text


def test_parses_records_in_order_with_numbers_as_numbers():
    records = parse_records(record_text(0) + "\n" + record_text(1, MedInc="1.5"))
    assert [r["id"] for r in records] == [0, 1]
    assert records[0] == {
        "id": 0, "MedInc": 8.3252, "HouseAge": 41.0, "AveRooms": 6.984126984126984,
        "AveBedrms": 1.0238095238095237, "Population": 322.0, "AveOccup": 2.5555555555555554,
        "Latitude": 37.88, "Longitude": -122.23, "MedHouseVal": 4.526,
    }
    assert records[1]["MedInc"] == 1.5
    assert list(records[0]) == list(FIELDS)


def test_tolerates_extra_blank_lines_and_spaces():
    text = "\n\n" + record_text(7).replace("MedInc: ", "MedInc :   ") + "\n\n\n"
    assert parse_records(text)[0]["MedInc"] == 8.3252


@pytest.mark.parametrize("text, message", [
    ("", "no records"),
    (record_text(0).replace("MedInc: 8.3252", "MedInc 8.3252"), "line 2: expected 'key: value'"),
    (record_text(0, MedInc="abc"), "line 2: MedInc is 'abc', expected a number"),
    (record_text(0, MedInc="nan"), "expected a finite number"),
    (record_text(0, id="1.5"), "id is '1.5', expected a whole number"),
    (record_text(0) + "MedInc: 1.0\n", "line 11: repeated key 'MedInc'"),
    (record_text(0, Latitude=""), "missing Latitude"),
    (record_text(0) + "Colour: red\n", "unknown key 'Colour'"),
])
def test_malformed_records_name_the_problem(text, message):
    with pytest.raises(MalformedRecordError, match=message.replace("(", r"\(")):
        parse_records(text)


def test_json_lines_round_trip():
    records = parse_records(record_text(3) + "\n" + record_text(4))
    lines = to_json_lines(records).split("\n")
    assert [json.loads(line) for line in lines] == records


def test_extract_file_rejects_binary(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(MalformedRecordError, match="not UTF-8"):
        extract_file(path)


def test_extract_file_reads_a_file(tmp_path):
    path = tmp_path / "ok.txt"
    path.write_text(record_text(5))
    assert json.loads(extract_file(path))["id"] == 5
