"""`make bench`: the local runner's speed against a serial loop and its peers, on the same data.

All contenders process the same mini-batches with the project's extraction entry script and write the
returned rows to one file, in this process (or its children), one after another:

- serial: import the entry script, call run() on each mini-batch in this process (the baseline);
- runner, 1 and 2 workers: `run_parallel`, end to end (listing, planning, scheduling, merge);
- Pool.imap with chunksize 1 and a tuned chunksize, and joblib, over the same mini-batches;
- cat: every file read by `cat`, the I/O floor.

Then the runner's scheduling overhead with a no-op entry script. Times are the best of --repeat rounds,
each round running every contender once (round robin), so that a slow spell hits them alike. The parent's
memory and whole-process timings are `tools/bench_processes.py`'s.
"""
from __future__ import annotations

import json
import logging
import multiprocessing
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestration.commands import (
    ArgumentParser, UsageError, at_least_one, last_line, run_command, setup_logging,
)
from orchestration.paths import SRC
from orchestration.prs.config import RunConfig
from orchestration.prs.listing import sorted_listing
from orchestration.prs.outputs import Summary
from orchestration.prs.scheduler import run_parallel
from tools import bench_peers

log = logging.getLogger(__name__)

ENTRY_SCRIPT = SRC / "steps" / "extract_entry.py"
NOOP_SCRIPT = """\
def run(mini_batch):
    return mini_batch
"""

_entry = None  # the entry script in a Pool/joblib worker, imported once per process


def _load_entry():
    global _entry
    if _entry is None:
        sys.path.insert(0, str(ENTRY_SCRIPT.parent.parent))
        from steps import extract_entry

        extract_entry.init()
        _entry = extract_entry
    return _entry


def _run_batch(batch: list[str]) -> list[str]:
    return _load_entry().run(batch)


def mini_batches(data_dir: Path, size: int) -> list[list[str]]:
    files = [path for names in sorted_listing(data_dir.resolve()) for path in names]
    return [files[i:i + size] for i in range(0, len(files), size)]


def write_rows(results, target: Path) -> None:
    with target.open("w", encoding="utf-8") as out:
        for rows in results:
            out.writelines(f"{row}\n" for row in rows)


def serial(batches: list[list[str]], out: Path) -> None:
    entry = _load_entry()
    write_rows((entry.run(b) for b in batches), out)


def pool(batches: list[list[str]], out: Path, workers: int, chunksize: int) -> None:
    """Pool's workers forked from a server that has imported this module: cheap to start, like fork,
    but safe beside Ray's threads in this process (a plain fork once hung in a lock a thread held)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    with context.Pool(workers) as workers_pool:
        write_rows(workers_pool.imap(_run_batch, batches, chunksize=chunksize), out)


def joblib_parallel(batches: list[list[str]], out: Path, workers: int) -> None:
    """joblib's default (loky) backend, started cold each time like the runner's workers."""
    from joblib import Parallel, delayed
    from joblib.externals.loky import get_reusable_executor

    write_rows(Parallel(n_jobs=workers)(delayed(_run_batch)(b) for b in batches), out)
    get_reusable_executor().shutdown(wait=True)


def run_locally(script: Path, inputs: Path, output: Path, workers: int, size: int, **extra: Any) -> Summary:
    """One run of the local runner as the tools time it: one node of `workers` processes, every failure
    tolerated, rows in OUTPUT/rows.txt; a run that does not complete stops the tool."""
    summary = run_parallel(RunConfig(
        entry_script=script, inputs=(inputs,), output=output, mini_batch_size=size, node_count=1,
        process_count_per_node=workers, max_workers=workers, error_threshold=-1,
        append_row_file_name="rows.txt", progress_interval=3600, **extra))
    if summary.status != "Completed":
        raise UsageError(f"{script.name} did not complete: {summary.reason}")
    return summary


def runner(data_dir: Path, out: Path, workers: int, size: int, script: Path = ENTRY_SCRIPT) -> None:
    run_locally(script, data_dir, out.parent / f"runner-{workers}", workers, size)


def cat_all(data_dir: Path) -> None:
    subprocess.run(
        f"find {data_dir} -type f -name '*.txt' -print0 | xargs -0 cat > /dev/null", shell=True, check=True
    )


def best_of(repeat: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder of generated data files")
    parser.add_argument("--mini-batch-size", type=int, default=5)
    parser.add_argument("--repeat", type=at_least_one, default=3)
    parser.add_argument("--chunksize", type=int, default=64, help="the tuned Pool.imap chunksize")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    setup_logging("WARNING")
    if not args.data.is_dir():
        raise UsageError(f"--data {args.data}: not a folder; run `make data` first")
    batches = mini_batches(args.data, args.mini_batch_size)
    files = sum(len(b) for b in batches)
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        scratch = Path(tmp)
        out = scratch / "rows.txt"
        contenders: dict[str, Callable[[], object]] = {
            "serial loop": lambda: serial(batches, out),
            "runner, 1 worker": lambda: runner(args.data, out, 1, args.mini_batch_size),
            "runner, 2 workers": lambda: runner(args.data, out, 2, args.mini_batch_size),
            "Pool(2).imap, chunksize 1": lambda: pool(batches, out, 2, 1),
            f"Pool(2).imap, chunksize {args.chunksize}": lambda: pool(batches, out, 2, args.chunksize),
            "joblib, 2 jobs": lambda: joblib_parallel(batches, out, 2),
            "cat (I/O floor)": lambda: cat_all(args.data),
        }
        # Where each contender's rows are (the runner's in its output folder; cat writes none).
        rows_of = {"runner, 1 worker": scratch / "runner-1" / "rows.txt",
                   "runner, 2 workers": scratch / "runner-2" / "rows.txt", "cat (I/O floor)": None}
        ray_start = None
        if bench_peers.available():  # the `bench` extra: make bench installs it
            contenders["Dask bag, 2 processes"] = lambda: write_rows(
                bench_peers.dask_files(batches, _run_batch), out)
            contenders["Ray Data map_batches, 2 CPUs"] = lambda: write_rows(
                bench_peers.ray_files(batches, _run_batch), out)
            ray_start = bench_peers.start_ray()
        else:
            log.warning("Dask and Ray are not installed (the bench extra): they are left out")
        # Round robin, the best of each: a slow spell of this machine hits every contender alike.
        serial_rows = b""
        for round_number in range(args.repeat):
            for name, work in contenders.items():
                seconds = best_of(1, work)
                figures[name] = min(figures.get(name, seconds), seconds)
                log.warning("round %d, %s: %.3f s", round_number + 1, name, seconds)
                written = rows_of.get(name, out)
                if name == "serial loop":
                    serial_rows = out.read_bytes()
                elif written is not None and written.read_bytes() != serial_rows:
                    raise RuntimeError(f"{name} wrote other rows than the serial loop")
        if ray_start is not None:
            bench_peers.stop_ray()
        noop = scratch / "noop_entry.py"
        noop.write_text(NOOP_SCRIPT)
        noop_time = best_of(args.repeat, lambda: runner(args.data, out, 1, args.mini_batch_size, noop))

    serial_time = figures["serial loop"]
    print(f"{files} files in {len(batches)} mini-batches of {args.mini_batch_size}; best of {args.repeat}")
    print(f"{'contender':32} {'seconds':>8} {'files/s':>9} {'vs serial':>10}")
    for name, seconds in figures.items():
        print(f"{name:32} {seconds:8.3f} {files / seconds:9.0f} {serial_time / seconds:9.2f}x")
    best_peer = min(v for k, v in figures.items() if k.startswith(("Pool", "joblib", "Dask", "Ray")))
    print(f"runner (2 workers) vs best peer: {best_peer / figures['runner, 2 workers']:.2f}x")
    if ray_start is not None:
        print(f"Ray's local cluster started in {ray_start:.1f} s, before (and not in) its timed runs")
    per_batch = (figures["runner, 1 worker"] - serial_time) / len(batches) * 1e6
    print(f"runner overhead, 1 worker vs serial loop: {per_batch:.1f} us per mini-batch")
    print(f"runner with a no-op script, 1 worker: {noop_time:.3f} s = "
          f"{noop_time / len(batches) * 1e6:.1f} us per mini-batch, everything included")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "files": files, "mini_batches": len(batches), "seconds": figures, "noop_seconds": noop_time,
        }, indent=2))
    print(last_line(0, f"benchmark done, every contender's rows identical to the serial loop's"
                    f"{f'; figures in {args.json}' if args.json else ''}"))
    return 0


if __name__ == "__main__":
    run_command(main)
