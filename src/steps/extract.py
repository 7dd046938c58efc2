"""Extraction logic: `key: value` record blocks to JSON rows. Pure functions, no Azure ML.

A file holds records separated by blank lines; each record has exactly the keys in FIELDS. Anything
else (a line without a colon, an unknown, missing or repeated key, a value that is not a finite number,
text that is not UTF-8, a file without records) raises MalformedRecordError naming the line.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

FIELDS = (
    "id", "MedInc", "HouseAge", "AveRooms", "AveBedrms", "Population", "AveOccup",
    "Latitude", "Longitude", "MedHouseVal",
)
TARGET = "MedHouseVal"  # what training predicts
VALUE_FIELDS = FIELDS[1:]  # a record's values after its id: the features, then the target
_FIELD_SET = frozenset(FIELDS)

Record = dict[str, int | float]


class MalformedRecordError(ValueError):
    """The input does not follow the record format; the message says where and why."""


def _parse_value(key: str, text: str, line_no: int) -> int | float:
    try:
        value: int | float = int(text) if key == "id" else float(text)
    except ValueError:
        kind = "a whole number" if key == "id" else "a number"
        raise MalformedRecordError(f"line {line_no}: {key} is {text!r}, expected {kind}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise MalformedRecordError(f"line {line_no}: {key} is {text!r}, expected a finite number")
    return value


def _finish(record: Record, start_line: int) -> Record:
    if len(record) != len(FIELDS):
        missing = ", ".join(k for k in FIELDS if k not in record)
        raise MalformedRecordError(f"record at line {start_line}: missing {missing}")
    return {key: record[key] for key in FIELDS}


def parse_records(text: str) -> list[Record]:
    """Parses every record of one file's text, in file order, with keys in FIELDS order.

    Raises:
        MalformedRecordError: at the first problem; the file yields no rows then.
    """
    records: list[Record] = []
    current: Record = {}
    start_line = 0
    for line_no, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        if not line:
            if current:
                records.append(_finish(current, start_line))
                current = {}
            continue
        key, colon, value = line.partition(":")
        key = key.strip()
        if not colon:
            raise MalformedRecordError(f"line {line_no}: expected 'key: value', got {line[:40]!r}")
        if key not in _FIELD_SET:
            raise MalformedRecordError(f"line {line_no}: unknown key {key[:40]!r}")
        if key in current:
            raise MalformedRecordError(f"line {line_no}: repeated key {key!r}")
        if not current:
            start_line = line_no
        current[key] = _parse_value(key, value.strip(), line_no)
    if current:
        records.append(_finish(current, start_line))
    if not records:
        raise MalformedRecordError("no records in file")
    return records


def to_json_lines(records: list[Record]) -> str:
    """The records as compact JSON objects, one per line (no trailing newline)."""
    return "\n".join(json.dumps(r, separators=(",", ":")) for r in records)


def extract_file(path: str | Path) -> str:
    """Reads one input file and returns its records as JSON lines.

    Raises:
        MalformedRecordError: if the file is not UTF-8 text in the record format.
        OSError: if the file cannot be read (a system problem, retried by the runner).
    """
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedRecordError(f"not UTF-8 text (byte {exc.start})") from None
    return to_json_lines(parse_records(text))
