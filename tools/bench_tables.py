"""`make bench-tables`: the runner on a table (a CSV and its parquet copy) against a chunked pandas loop.

The table repeats the California housing rows (with unique ids) up to --megabytes of CSV; the parquet copy
has row groups of about 10 MB of CSV each. The entry script computes, per row, a distance to the coast and
a few transforms, and returns them as a DataFrame (append_row writes them). Every contender processes the
same rows and writes one output file; times are in this process (the runner's workers are processes), the
best of --repeat rounds, each round running every contender once.

    python -m tools.bench_tables [--megabytes 500] [--repeat 3] [--json figures.json]
"""
from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from orchestration.commands import ArgumentParser, at_least_one, last_line, run_command, setup_logging
from tools import bench_peers
from tools.bench import best_of, run_locally

log = logging.getLogger(__name__)

MINI_BATCH = "10MB"
MINI_BATCH_BYTES = 10 * 1024 * 1024
ROW_GROUPS_PER_SLICE = 10  # Dask's parquet partitions: about 10 MB of CSV, as the runner's slices

# The per-row work: distance to a point on the coast (haversine), log income, rooms per person.
ENTRY_SCRIPT = """\
import numpy as np
import pandas as pd

def run(frame):
    lat, lon = np.radians(frame["Latitude"].to_numpy()), np.radians(frame["Longitude"].to_numpy())
    coast_lat, coast_lon = np.radians(36.6), np.radians(-121.9)
    a = (np.sin((lat - coast_lat) / 2) ** 2
         + np.cos(lat) * np.cos(coast_lat) * np.sin((lon - coast_lon) / 2) ** 2)
    return pd.DataFrame({
        "id": frame["id"].to_numpy(),
        "coast_km": np.round(2 * 6371 * np.arcsin(np.sqrt(a)), 3),
        "log_income": np.round(np.log1p(frame["MedInc"].to_numpy()), 5),
        "rooms_per_person": np.round(frame["AveRooms"].to_numpy() / frame["AveOccup"].to_numpy(), 5),
    })
"""


def make_table(folder: Path, megabytes: int) -> tuple[Path, Path, int]:
    """table.csv of about `megabytes` and table.parquet with the same rows; returns both and the row count."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tools.make_data import COLUMNS, load_bundled

    base = pd.DataFrame(load_bundled(), columns=list(COLUMNS))
    csv_path, parquet_path = folder / "csv" / "table.csv", folder / "parquet" / "table.parquet"
    csv_path.parent.mkdir(parents=True)
    parquet_path.parent.mkdir(parents=True)
    rows, copy, writer = 0, 0, None
    with csv_path.open("w", encoding="utf-8") as out:
        while out.tell() < megabytes * 1024 * 1024:
            frame = base.assign(id=np.arange(copy * len(base), (copy + 1) * len(base)))[["id", *COLUMNS]]
            frame.to_csv(out, header=copy == 0, index=False)
            table = pa.Table.from_pandas(frame, preserve_index=False)
            writer = writer or pq.ParquetWriter(parquet_path, table.schema)
            writer.write_table(table, row_group_size=len(base) // 2)  # about 1 MB of parquet, 10 MB of CSV
            rows += len(frame)
            copy += 1
    writer.close()
    return csv_path, parquet_path, rows


def serial_csv(path: Path, run: Callable, out: Path, rows_per_chunk: int) -> None:
    import pandas as pd

    with out.open("w", encoding="utf-8") as handle:
        for chunk in pd.read_csv(path, chunksize=rows_per_chunk):
            run(chunk).to_csv(handle, sep=" ", header=False, index=False)


def serial_parquet(path: Path, run: Callable, out: Path) -> None:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    with out.open("w", encoding="utf-8") as handle:
        for group in range(parquet.num_row_groups):
            run(parquet.read_row_group(group).to_pandas()).to_csv(handle, sep=" ", header=False, index=False)


def differing_lines(expected: list[bytes], actual: list[bytes]) -> int:
    return sum(a != b for a, b in zip(expected, actual)) + abs(len(expected) - len(actual))


def write_frames(frames: Iterable[Any], out: Path) -> None:
    with out.open("w", encoding="utf-8") as handle:
        for frame in frames:
            frame.to_csv(handle, sep=" ", header=False, index=False)


def runner(path: Path, script: Path, out: Path, workers: int) -> None:
    run_locally(script, path.parent, out, workers, MINI_BATCH_BYTES, input_type="tabular")


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m tools.bench_tables", description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=500, help="size of the CSV")
    parser.add_argument("--repeat", type=at_least_one, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    setup_logging("WARNING")
    with tempfile.TemporaryDirectory(prefix="bench-tables-") as tmp:
        scratch = Path(tmp)
        csv_path, parquet_path, rows = make_table(scratch / "data", args.megabytes)
        script = scratch / "table_entry.py"
        script.write_text(ENTRY_SCRIPT)
        namespace: dict = {}
        exec(compile(ENTRY_SCRIPT, str(script), "exec"), namespace)  # the serial loops' own import of it
        run = namespace["run"]
        rows_per_chunk = max(1, int(rows * MINI_BATCH_BYTES / csv_path.stat().st_size))
        # name -> (work, the runner's output folder, removed before each of its runs)
        contenders: dict[str, tuple[Callable[[], object], Path | None]] = {
            "CSV: pandas chunked loop": (
                lambda: serial_csv(csv_path, run, scratch / "s.txt", rows_per_chunk), None),
            "CSV: runner, 1 worker": (lambda: runner(csv_path, script, scratch / "r1", 1), scratch / "r1"),
            "CSV: runner, 2 workers": (lambda: runner(csv_path, script, scratch / "r2", 2), scratch / "r2"),
            "parquet: row-group loop": (lambda: serial_parquet(parquet_path, run, scratch / "p.txt"), None),
            "parquet: runner, 1 worker": (
                lambda: runner(parquet_path, script, scratch / "q1", 1), scratch / "q1"),
            "parquet: runner, 2 workers": (
                lambda: runner(parquet_path, script, scratch / "q2", 2), scratch / "q2"),
        }
        peers: dict[str, tuple[Callable[[], object], Path]] = {}
        ray_start = None
        if bench_peers.available():  # the `bench` extra: make bench-tables installs it
            for kind, path in (("CSV", csv_path), ("parquet", parquet_path)):
                suffix = kind.lower()
                peers[f"{kind}: Dask dataframe, 2 processes"] = (
                    lambda path=path, suffix=suffix: write_frames(
                        [bench_peers.dask_table(path, run, suffix, MINI_BATCH_BYTES, ROW_GROUPS_PER_SLICE)],
                        scratch / f"dask-{suffix}.txt"), scratch / f"dask-{suffix}.txt")
                peers[f"{kind}: Ray Data map_batches, 2 CPUs"] = (
                    lambda path=path, suffix=suffix: write_frames(
                        bench_peers.ray_table(path, run, suffix, rows_per_chunk),
                        scratch / f"ray-{suffix}.txt"),
                    scratch / f"ray-{suffix}.txt")
            ray_start = bench_peers.start_ray()
        else:
            log.warning("Dask and Ray are not installed (the bench extra): they are left out")
        contenders.update(peers)
        figures: dict[str, float] = {}
        for _ in range(args.repeat):
            for name, (work, own) in contenders.items():
                if own is not None and own.is_dir():
                    shutil.rmtree(own)
                seconds = best_of(1, work)
                figures[name] = min(figures.get(name, seconds), seconds)
                log.warning("%s: %.2f s", name, seconds)
        if peers:
            bench_peers.stop_ray()
        serial = (scratch / "s.txt").read_bytes().splitlines()
        outputs = {"parquet: row-group loop": scratch / "p.txt",
                   **{name: own / "rows.txt" for name, (_, own) in contenders.items()
                      if own is not None and own.is_dir()},
                   **{name: own for name, (_, own) in peers.items()}}
        differing = {name: differing_lines(serial, path.read_bytes().splitlines())
                     for name, path in outputs.items()}
        differing = {name: count for name, count in differing.items() if count}
        runners = [name for name in differing if "runner" in name]
        if runners:
            raise RuntimeError(f"the runner's rows differ from the serial loop's: {runners}")
        size_mb = csv_path.stat().st_size / 1e6
    print(f"{rows} rows, CSV {size_mb:.0f} MB; mini-batches of {MINI_BATCH}; best of {args.repeat} rounds; "
          "the runner's rows identical to the loops'")
    for name, count in differing.items():
        print(f"  {name}: {count} of {rows} rows differ from the loop's (its own CSV or float parsing)")
    print(f"{'contender':38} {'seconds':>8} {'MB/s (CSV)':>11} {'vs loop':>8}")
    for name, seconds in figures.items():
        loop = "CSV: pandas chunked loop" if name.startswith("CSV") else "parquet: row-group loop"
        baseline = figures[loop]
        print(f"{name:38} {seconds:8.2f} {size_mb / seconds:11.1f} {baseline / seconds:7.2f}x")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows, "csv_mb": size_mb, "seconds": figures}, indent=2))
    if ray_start is not None:
        print(f"Ray's local cluster started in {ray_start:.1f} s, before (and not in) its timed runs")
    print(last_line(0, f"table benchmark done{f'; figures in {args.json}' if args.json else ''}"))
    return 0


if __name__ == "__main__":
    run_command(main)
