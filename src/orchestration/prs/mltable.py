"""MLTable files, read in the parent: which files a table holds and how each is read into rows.

The documented subset that real MLTable files use (the `mltable` package needs azureml-dataprep, too heavy
for the image): `paths` (`file`, `folder`, `pattern` with `*` and `**`), then the transformations
`read_delimited` (delimiter, header, encoding, empty_as_string, include_path_column), `read_parquet`,
`read_json_lines` (encoding, include_path_column), `extract_columns_from_partition_format`,
`drop_columns` and `keep_columns`. Anything else is refused by name. The result is a JSON-ready spec that
planning splits into mini-batches and `tables.read_rows` applies in the workers.
"""
from __future__ import annotations

import glob
import os
import re
from pathlib import Path
from typing import Any

from orchestration.errors import UsageError

READERS = {"read_delimited": "delimited", "read_parquet": "parquet", "read_json_lines": "json_lines"}
ENCODINGS = {"utf8": "utf-8", "ascii": "ascii", "latin1": "latin-1", "iso88591": "latin-1",
             "windows1252": "cp1252", "utf8bom": "utf-8-sig"}
# from_first_file (only the first file has a header) is refused: its other files' first rows would be lost.
HEADERS = ("all_files_same_headers", "no_header", "all_files_different_headers")
FILE_NAME = "MLTable"


def load_mltable(folder: Path) -> dict[str, Any]:
    """The table of the MLTable file in `folder` (or `folder` is the file) as a JSON-ready spec.

    Raises:
        UsageError: naming the MLTable file and the key it cannot use.
    """
    import yaml

    file = folder if folder.is_file() else folder / FILE_NAME
    try:
        document = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UsageError(f"MLTable {file}: cannot be read ({exc})".replace("\n", " ")) from None
    if not isinstance(document, dict):
        raise UsageError(f"MLTable {file}: expected a mapping with `paths:` (got {type(document).__name__})")
    steps = document.get("transformations") or []
    if not isinstance(steps, list):
        raise UsageError(f"MLTable {file}: transformations: expected a list of `- name: options` entries")
    base = file.parent.resolve()
    spec: dict[str, Any] = {"root": str(base), "reader": None, "options": {}, "partition_format": None,
                            "drop": [], "keep": None, "include_path_column": False}
    supported = [*READERS, "extract_columns_from_partition_format", "drop_columns", "keep_columns"]
    files = resolve_paths(document.get("paths") or [], base, file)
    for step in steps:
        name, options = (next(iter(step.items())) if isinstance(step, dict) and step else (step, None))
        options = {} if options is None else options
        if name in READERS and not isinstance(options, dict):
            raise UsageError(f"MLTable {file}: {name}: expected a mapping of options (got {options!r})")
        if name == "extract_columns_from_partition_format" and not isinstance(options, (dict, str)):
            raise UsageError(f"MLTable {file}: {name}: expected a partition format such as "
                             f"{{year}}/{{file_name}}.csv (got {options!r})")
        columns_ok = isinstance(options, str) or (isinstance(options, list)
                                                  and all(isinstance(c, str) for c in options))
        if name in ("drop_columns", "keep_columns") and not columns_ok:
            raise UsageError(f"MLTable {file}: {name}: expected a column name or a list of them "
                             f"(got {options!r})")
        if name in READERS:
            spec["reader"] = READERS[name]
            spec["options"] = reader_options(name, options, file)
            spec["include_path_column"] = bool(options.get("include_path_column", False))
        elif name == "extract_columns_from_partition_format":
            spec["partition_format"] = options.get("partition_format") if isinstance(options, dict) \
                else options
        elif name in ("drop_columns", "keep_columns"):
            columns = [options] if isinstance(options, str) else list(options)
            if name == "drop_columns":
                spec["drop"] += columns
            else:
                spec["keep"] = columns
        else:
            raise UsageError(f"MLTable {file}: the transformation {name!r} is not supported locally "
                             f"(supported: {', '.join(supported)})")
    if spec["partition_format"] is not None and not isinstance(spec["partition_format"], str):
        raise UsageError(f"MLTable {file}: extract_columns_from_partition_format.partition_format: expected "
                         f"text such as {{year}}/{{file_name}}.csv (got {spec['partition_format']!r})")
    if spec["partition_format"]:
        spec["partition_columns"] = partition_columns(spec["partition_format"], file)
    folders = [f for f in files if Path(f).is_dir()]
    if folders and spec["reader"]:
        reader = next(name for name, kind in READERS.items() if kind == spec["reader"])
        raise UsageError(f"MLTable {file}: paths: {folders[0]} is a folder named by `- file:`; the mltable "
                         f"package gives it as one item, and {reader} fails on it (\"Is a directory (os "
                         "error 21)\"): name its files with `- folder:`")
    spec["files"] = files
    return spec


def partitioned_input(config: Any) -> dict[str, Any]:
    """A folder input with a partition format (SDK v1's `Dataset.File.from_files(path,
    partition_format=)`), as the table spec planning groups by partition keys: the folder's files as a
    plain run lists them (links to files followed, hidden files skipped; broken links and loops refused),
    each checked against the format before anything runs.

    Raises:
        UsageError: no format, a key the format does not name, a file it does not match, or not one
            folder of files.
    """
    from orchestration.prs.listing import sorted_listing
    from orchestration.prs.tables import partition_values

    keys, partition_format = config.partition_keys, config.partition_format
    if config.input_type != "file" or len(config.inputs) != 1 or not config.inputs[0].is_dir():
        raise UsageError("PARTITION_KEYS: expected one --input folder of files (a table is partitioned "
                         "through an MLTable: --job)")
    if not partition_format:
        raise UsageError("PARTITION_KEYS: needs the input's PARTITION_FORMAT (--partition_format), e.g. "
                         "{store}/{file_name}.csv, which names the keys")
    folder = config.inputs[0].absolute()
    columns = partition_columns(partition_format, folder, what="PARTITION_FORMAT")
    missing = [key for key in keys if key not in columns]
    if missing:
        raise UsageError(f"PARTITION_KEYS: {missing[0]!r} is not a key of PARTITION_FORMAT "
                         f"{partition_format!r} (it has: {', '.join(columns) or 'none'})")
    files = [path for names in sorted_listing(folder) for path in names]
    for path in files:
        values = partition_values(partition_format, os.path.relpath(path, folder))
        if not all(values.get(key) for key in keys):
            raise UsageError(f"PARTITION_FORMAT {partition_format!r}: {path} does not match it; move the "
                             "file out of the input or fix the format")
    return {"root": str(folder), "reader": None, "options": {}, "partition_format": partition_format,
            "partition_columns": columns, "drop": [], "keep": None, "include_path_column": False,
            "files": files}


def resolve_paths(entries: list[Any], base: Path, file: Path) -> list[str]:
    """Every file the `paths` name, each once, in sorted order; hidden files and MLTable itself left out.
    A folder named by `- file:` is one item, its own path, as the mltable package gives it."""
    found: set[str] = set()
    for entry in entries:
        single = isinstance(entry, dict) and len(entry) == 1
        kind, value = next(iter(entry.items())) if single else (None, None)
        if kind not in ("file", "folder", "pattern") or not isinstance(value, str):
            raise UsageError(f"MLTable {file}: paths: expected `- file:`, `- folder:` or `- pattern:` "
                             f"entries (got {entry!r})")
        if re.match(r"^[a-z][a-z0-9+.-]*://", value) and not value.startswith("file://"):
            raise UsageError(f"MLTable {file}: {value} is a cloud path; only local paths can be read here")
        local = value.removeprefix("file://")
        target = Path(local) if Path(local).is_absolute() else base / local
        if kind == "file":
            if not target.exists():
                raise UsageError(f"MLTable {file}: paths: file {value} does not exist")
            found.add(str(target.resolve()))  # a folder, too: the mltable package gives it as one item
        elif kind == "folder":
            found |= {str(p.resolve()) for p in pattern_matches(target / "**")}
        else:
            found |= {str(p.resolve()) for p in pattern_matches(target)}

    def hidden(path: str) -> bool:  # a dot-file, or under a dot-folder below the MLTable's own folder
        relative = Path(path).relative_to(base) if Path(path).is_relative_to(base) else Path(Path(path).name)
        return any(part.startswith(".") for part in relative.parts)

    return sorted(p for p in found if not hidden(p) and Path(p).name != FILE_NAME)


def pattern_matches(pattern: Path) -> list[Path]:
    """The files that match `pattern` (`*`, `?`, `[...]` within a name; `**` any folders, none included).
    Links to folders are followed, each folder once: a link loop is not a path without end."""
    parts = pattern.parts
    fixed = next((i for i, part in enumerate(parts) if glob.has_magic(part)), len(parts))
    root = Path(*parts[:fixed]) if fixed else Path(".")
    if fixed == len(parts):
        return [root] if root.is_file() else []
    regex = _pattern_regex(parts[fixed:])
    matches, seen = [], set()
    for folder, folders, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            folders[:] = []
            continue
        seen.add(real)
        relative = os.path.relpath(folder, root)
        prefix = "" if relative == "." else relative + "/"
        matches += [Path(folder, name) for name in files if regex.match(prefix + name)]
    return sorted(matches)


def _pattern_regex(parts: tuple[str, ...]) -> re.Pattern[str]:
    """A path pattern's components as one regular expression over paths relative to its fixed part."""
    text = ""
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part == "**":
            text += ".*" if last else "(?:[^/]+/)*"
            continue
        for piece in re.split(r"(\*|\?|\[[^\]]+\])", part):
            if piece == "*":
                text += "[^/]*"
            elif piece == "?":
                text += "[^/]"
            elif piece.startswith("[") and piece.endswith("]") and len(piece) > 2:
                inside = piece[1:-1].replace("\\", "\\\\")
                text += "[" + ("^" + inside[1:] if inside.startswith("!") else inside) + "]"
            else:
                text += re.escape(piece)
        text += "" if last else "/"
    return re.compile(text + r"\Z", re.DOTALL)


def reader_options(name: str, options: dict[str, Any], file: Path) -> dict[str, Any]:
    encoding = str(options.get("encoding", "utf8")).lower().replace("-", "").replace("_", "")
    if encoding not in ENCODINGS:
        raise UsageError(f"MLTable {file}: {name}.encoding {options.get('encoding')!r} is not supported "
                         f"locally (supported: {', '.join(ENCODINGS)})")
    header = options.get("header", "all_files_same_headers")
    if name == "read_delimited" and header not in HEADERS:
        raise UsageError(f"MLTable {file}: read_delimited.header {header!r} is not supported locally "
                         f"(supported: {', '.join(HEADERS)})")
    return {"delimiter": options.get("delimiter", ","), "header": header, "encoding": ENCODINGS[encoding],
            "empty_as_string": bool(options.get("empty_as_string", False))}


def partition_columns(partition_format: str, file: Path, what: str = "") -> list[str]:
    where = what or f"MLTable {file}: partition_format"
    names = re.findall(r"\{([^{}]+)\}", partition_format)
    typed = [n for n in names if ":" in n]
    if typed:
        raise UsageError(f"{where} {{{typed[0]}}}: typed (date) parts are not supported locally; "
                         "use {name}")
    bad = [n for n in names if not n.isidentifier()]
    if bad or len(set(names)) < len(names):
        raise UsageError(f"{where} {partition_format!r}: expected distinct {{names}} of letters, digits "
                         f"and '_', not starting with a digit (got {{{(bad or names)[0]}}})")
    return names
