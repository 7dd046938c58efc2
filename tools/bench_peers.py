"""Dask and Ray Data as peers of the runner in `make bench` and `make bench-tables` (the `bench` extra,
never in the runtime image). Each runs the same per-mini-batch function over the same data with 2 worker
processes and hands back results in input order, which the caller writes to one file.

Ray's local cluster is started once, before the timed runs (`start_ray`, a few seconds here) and its start
time reported apart: the timed figures are Ray at its best. Dask's process scheduler starts its pool on
every run, as the runner starts its workers.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

WORKERS = 2
PARTITION_BATCHES = 64  # mini-batches per Dask partition and per Ray batch, as Pool's tuned chunksize


def available() -> bool:
    try:
        import dask  # noqa: F401
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def start_ray() -> float:
    """Starts Ray's local cluster with 2 CPUs; returns the seconds it took."""
    import ray

    started = time.perf_counter()
    ray.init(num_cpus=WORKERS, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False,
             configure_logging=False)
    from ray.data import DataContext

    context = DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    for name in ("ray", "ray.data"):  # its per-dataset INFO lines, on the benchmark's table
        logging.getLogger(name).setLevel(logging.ERROR)
    return time.perf_counter() - started


def stop_ray() -> None:
    import ray

    ray.shutdown()


# --- files: one run() per mini-batch of paths
def dask_files(batches: list[list[str]], run: Callable[[list[str]], list[Any]]) -> Iterator[list[Any]]:
    import dask.bag

    bag = dask.bag.from_sequence(batches, partition_size=PARTITION_BATCHES).map(run)
    return iter(bag.compute(scheduler="processes", num_workers=WORKERS))


def ray_files(batches: list[list[str]], run: Callable[[list[str]], list[Any]]) -> Iterator[list[Any]]:
    import pandas as pd
    import ray.data

    def rows(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"rows": [run(list(paths)) for paths in frame["paths"]]})

    data = ray.data.from_items([{"paths": batch} for batch in batches])
    mapped = data.map_batches(rows, batch_size=PARTITION_BATCHES, batch_format="pandas")
    return (list(row["rows"]) for row in mapped.iter_rows())


# --- tables: one run() per slice of rows, results as DataFrames
def dask_table(path: Path, run: Callable, kind: str, slice_bytes: int, row_groups: int) -> Any:
    import dask.dataframe as dd
    import pandas as pd

    if kind == "csv":
        frame = dd.read_csv(path, blocksize=slice_bytes)
        meta = run(pd.read_csv(path, nrows=5)).iloc[:0]
    else:
        frame = dd.read_parquet(path, split_row_groups=row_groups)
        meta = run(pd.read_parquet(path).head(5)).iloc[:0]
    return frame.map_partitions(run, meta=meta).compute(scheduler="processes", num_workers=WORKERS)


def ray_table(path: Path, run: Callable, kind: str, rows_per_batch: int) -> Iterator[Any]:
    import ray.data

    data = ray.data.read_csv(str(path)) if kind == "csv" else ray.data.read_parquet(str(path))
    mapped = data.map_batches(run, batch_size=rows_per_batch, batch_format="pandas")
    return mapped.iter_batches(batch_size=None, batch_format="pandas")
