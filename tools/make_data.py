"""Generates the sample data: California housing records as `key: value` text files.

Each record is a block of `key: value` lines (`id` then scikit-learn's feature names and the target);
records are separated by a blank line. The 20,640 records (times SCALE, with unique ids) are spread over
COUNT files per copy, so COUNT=20640 gives one record per file, the original sample's shape.

    python -m tools.make_data --out data/datastore/raw --count 100 [--scale 1] [--source bundled|sklearn]
"""
from __future__ import annotations

import fcntl
import gzip
import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from tqdm import tqdm

from orchestration.commands import ArgumentParser, UsageError, last_line, run_command, setup_logging
from orchestration.paths import ROOT
from steps.extract import VALUE_FIELDS

log = logging.getLogger(__name__)

RAW_FILE = ROOT / "data" / "raw" / "cal_housing.data.gz"
RAW_SHA256 = "d3d8a1a722ae78f91134862727d27a70b1415e7d512a89140406248687f4b902"
RAW_ROWS = 20640
COLUMNS = VALUE_FIELDS  # the record schema of steps/extract.py: the table's columns, in order
# Marks a folder this tool wrote, so that a re-run may replace it and nothing else is ever deleted.
MARKER = ".generated-by-make-data"


class DataSourceError(Exception):
    """The raw data cannot be read from the chosen source."""


def load_bundled(path: Path = RAW_FILE) -> np.ndarray:
    """Reads the shipped raw file, checks its sha256 and derives scikit-learn's columns (see COLUMNS).

    Raises:
        DataSourceError: if the file is missing or its checksum differs.
    """
    try:
        raw = gzip.decompress(path.read_bytes())
    except OSError as exc:
        raise DataSourceError(f"cannot read the bundled raw data {path}: {exc}") from exc
    digest = hashlib.sha256(raw).hexdigest()
    if digest != RAW_SHA256:
        raise DataSourceError(f"{path} has sha256 {digest}, expected {RAW_SHA256}")
    table = np.loadtxt(raw.decode("ascii").splitlines(), delimiter=",")
    return derive_features(table)


def derive_features(raw: np.ndarray) -> np.ndarray:
    """Derives scikit-learn's frame from the raw StatLib columns, exactly as `fetch_california_housing`.

    Raw columns: longitude, latitude, housingMedianAge, totalRooms, totalBedrooms, population,
    households, medianIncome, medianHouseValue.
    """
    lon, lat, age, rooms, bedrooms, population, households, income, value = raw.T
    return np.column_stack([
        income, age, rooms / households, bedrooms / households, population,
        population / households, lat, lon, value / 100000.0,
    ])


def load_sklearn(data_home: str | None = None) -> np.ndarray:
    """Loads the same records through `sklearn.datasets.fetch_california_housing` (downloads once).

    Raises:
        DataSourceError: when the download fails (for example offline), naming SOURCE=bundled.
    """
    from sklearn.datasets import fetch_california_housing

    try:
        bunch = fetch_california_housing(data_home=data_home, as_frame=False)
    except OSError as exc:  # URLError and socket errors are OSErrors
        raise DataSourceError(
            f"SOURCE=sklearn could not download the data set ({exc}); "
            "use SOURCE=bundled, which needs no network"
        ) from exc
    return np.column_stack([bunch.data, bunch.target])


def format_record(record_id: int, values: np.ndarray) -> str:
    """One record as `key: value` lines; floats use repr, so parsing gives back the same values."""
    lines = [f"id: {record_id}"]
    lines += [f"{name}: {float(v)!r}" for name, v in zip(COLUMNS, values)]
    return "\n".join(lines) + "\n"


def file_slices(rows: int, count: int) -> list[tuple[int, int]]:
    """Splits `rows` records into `count` contiguous runs whose sizes differ by at most one."""
    bounds = np.linspace(0, rows, count + 1).round().astype(int)
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))


def write_files(table: np.ndarray, out_dir: Path, count: int, scale: int = 1) -> int:
    """Writes `scale` copies of `table` over `count` files each into a fresh `out_dir`.

    The folder is built beside `out_dir`, in a staging folder of this process's own, and swapped in,
    so a re-run replaces the previous files instead of mixing with them. Two runs at once (`make data &
    make data`) take turns: the folder's parent is locked for the swap. Returns the number of files.

    Raises:
        UsageError: for a bad count/scale, or an existing non-empty folder this tool did not write.
    """
    rows = len(table)
    if not 1 <= count <= rows:
        raise UsageError(f"COUNT: expected a whole number from 1 to {rows} (got {count})")
    if scale < 1:
        raise UsageError(f"SCALE: expected a whole number of at least 1 (got {scale})")
    check_ours(out_dir)
    total = count * scale
    width = len(str(total - 1))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=STAGING_SUFFIX, dir=out_dir.parent))
    try:
        (staging / MARKER).write_text("generated by tools/make_data.py; re-running replaces this folder\n")
        slices = file_slices(rows, count)
        with tqdm(total=total, unit="file", desc="make data", disable=None) as bar:
            for copy in range(scale):
                for index, (start, stop) in enumerate(slices):
                    number = copy * count + index
                    records = (
                        format_record(copy * rows + i, table[i]) for i in range(start, stop)
                    )
                    (staging / f"housing-{number:0{width}d}.txt").write_text("\n".join(records))
                    bar.update()
        with locked(out_dir.parent):
            check_ours(out_dir)  # again: another run may have swapped in meanwhile (its files are ours)
            if out_dir.exists():
                retired = staging.with_name(staging.name.replace(STAGING_SUFFIX, ".old"))
                out_dir.rename(retired)
                staging.rename(out_dir)
                shutil.rmtree(retired)
            else:
                staging.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already unless this run failed
    return total


STAGING_SUFFIX = ".tmp"


def check_ours(out_dir: Path) -> None:
    """Refuses a non-empty `out_dir` that this tool did not write."""
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / MARKER).exists():
        raise UsageError(f"DATA_DIR {out_dir} holds files this tool did not write; move them away or choose "
                         "an empty or new folder")
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"DATA_DIR {out_dir} is a file; expected a folder")


@contextmanager
def locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on `folder` itself (flock on its descriptor: no file is created)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to (re)create (DATA_DIR)")
    parser.add_argument("--count", type=int, default=100, help="files per copy of the data (COUNT)")
    parser.add_argument("--scale", type=int, default=1, help="copies of the data, unique ids (SCALE)")
    parser.add_argument("--source", choices=("bundled", "sklearn"), default="bundled", help="SOURCE")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        table = load_bundled() if args.source == "bundled" else load_sklearn()
    except DataSourceError as exc:
        raise UsageError(str(exc)) from None
    written = write_files(table, args.out, args.count, args.scale)
    print(last_line(0, f"wrote {len(table) * args.scale} records in {written} files to {args.out}"))
    return 0


if __name__ == "__main__":
    run_command(main)
