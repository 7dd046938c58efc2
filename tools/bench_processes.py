"""`make bench`, whole processes: the runner as a user starts it against a serial loop started the same way.

Each contender is a fresh `python` process on the same files, timed from its start to its exit (wall
clock), with the CPU it and its children used:

- serial loop: a script that lists the files, imports the extraction entry script and calls run() on
  each mini-batch, writing the rows to one file (the baseline);
- runner: `python -m orchestration.prs` with 1 and 2 workers, settings from flags;
- two forked halves: the serial loop forked in two after its listing, each half of the mini-batches in
  its own process, no records, logs, retries or timeouts: the two-core ceiling on this machine, today;
- the machine itself: the same pure-Python arithmetic in one process, then split between two forked
  ones (no files, nothing shared): how much of two cores this machine's two vCPUs give at the moment.

Then the edit-run cycle of someone debugging an entry script, on 100 files: the time from the command to
the first finished mini-batch, and to the end of the run. Then the runner parent's peak memory, and the
time per file, on many empty files (100,000 and 1,000,000 by default).

The runner is also compared with the two forked halves round by round (the median of the rounds' paired
ratios), the figure that says how close it comes to this machine's ceiling for the work.

    python -m tools.bench_processes --data data/bench [--repeat 5] [--json figures.json]
"""
from __future__ import annotations

import json
import logging
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from orchestration.commands import (
    ArgumentParser, UsageError, at_least_one, last_line, run_command, setup_logging,
)
from orchestration.paths import SRC

log = logging.getLogger(__name__)

# The same mini-batches as the runner's: its own listing (scandir, no stat per file, sorted).
SERIAL_LOOP = """\
import sys
from pathlib import Path
sys.path.insert(0, {src!r})
from orchestration.prs.listing import sorted_listing
from steps import extract_entry

data, out, size = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
files = [path for names in sorted_listing(data) for path in names]
extract_entry.init()
with open(out, "w", encoding="utf-8") as rows:
    for start in range(0, len(files), size):
        rows.writelines(f"{{row}}\\n" for row in extract_entry.run(files[start:start + size]))
"""

# The two-core ceiling: the serial loop, forked after the listing into two halves of the mini-batches,
# each writing its own rows file, concatenated at the end; no records, logs, retries or timeouts.
FORKED_HALVES = """\
import os, shutil, sys
from pathlib import Path
sys.path.insert(0, {src!r})
from orchestration.prs.listing import sorted_listing
from steps import extract_entry

data, out, size = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
files = [path for names in sorted_listing(data) for path in names]
batches = [files[start:start + size] for start in range(0, len(files), size)]
half = len(batches) // 2
child = os.fork()
mine = batches[half:] if child == 0 else batches[:half]
extract_entry.init()
with open(f"{{out}}.{{int(child == 0)}}", "w", encoding="utf-8") as rows:
    for batch in mine:
        rows.writelines(f"{{row}}\\n" for row in extract_entry.run(batch))
if child == 0:
    os._exit(0)
os.waitpid(child, 0)
with open(out, "wb") as merged:
    for part in (f"{{out}}.0", f"{{out}}.1"):
        with open(part, "rb") as rows:
            shutil.copyfileobj(rows, merged)
"""

# The machine's own two-core scaling: ITERATIONS of arithmetic in one process, or split between two
# forked ones; nothing read, written or shared, so only the vCPUs set the ratio.
ARITHMETIC = """\
import os, sys

iterations, processes = int(sys.argv[1]), int(sys.argv[2])
child = os.fork() if processes == 2 else -1
total = 0
for number in range(iterations // processes):
    total += number * number % 7
if child == 0:
    os._exit(0)
if child > 0:
    os.waitpid(child, 0)
"""

# The extraction entry script, noting when its first run() returned (the first finished mini-batch).
FIRST_BATCH_ENTRY = """\
import os, sys, time
sys.path.insert(0, {src!r})
from steps.extract_entry import init, run as extract

def run(mini_batch):
    rows = extract(mini_batch)
    try:
        fd = os.open(os.environ["FIRST_BATCH_MARKER"], os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        return rows
    os.write(fd, repr(time.time()).encode())
    os.close(fd)
    return rows
"""

NOOP_ENTRY = "def run(mini_batch):\n    return mini_batch\n"


def runner_command(script: Path, data: Path, out: Path, workers: int, size: int,
                   action: str = "append_row") -> list[str]:
    return [sys.executable, "-m", "orchestration.prs", "--entry_script", str(script), "--input", str(data),
            "--output", str(out), "--mini_batch_size", str(size), "--node_count", "1",
            "--process_count_per_node", str(workers), "--local_max_workers", str(workers),
            "--error_threshold", "-1", "--output_action", action, "--append_row_file_name", "rows.txt"]


def timed(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds of the process and its children, start time as time.time())."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started_at, started = time.time(), time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, started_at


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(SRC)}


def round_order(names: list[str], round_number: int) -> list[str]:
    """The contenders' order in a round: the runner (2 workers) and the two forked halves side by side,
    the runner first in even rounds, the halves in odd ones."""
    at = names.index("runner, 2 workers")
    if names[at + 1] != "two forked halves":
        raise ValueError("the runner and the halves must be listed side by side")
    if round_number % 2 == 0:
        return names
    return [*names[:at], names[at + 1], names[at], *names[at + 2:]]


def whole_runs(data: Path, size: int, repeat: int, scratch: Path,
               iterations: int) -> tuple[dict[str, tuple[float, float]], list[float]]:
    """The best (wall, CPU) of each contender over `repeat` round-robin rounds, and per round the runner's
    speed (2 workers) as a share of the two forked halves' in that round: a paired ratio, which a slow
    spell of the machine moves far less than either time."""
    loop = scratch / "serial_loop.py"
    loop.write_text(SERIAL_LOOP.format(src=str(SRC)))
    halves = scratch / "forked_halves.py"
    halves.write_text(FORKED_HALVES.format(src=str(SRC)))
    arithmetic = scratch / "arithmetic.py"
    arithmetic.write_text(ARITHMETIC)
    entry = SRC / "steps" / "extract_entry.py"

    def runner(workers: int) -> tuple[float, float, float]:
        out = scratch / f"runner-{workers}"
        shutil.rmtree(out, ignore_errors=True)
        return timed(runner_command(entry, data, out, workers, size), scratch, environment())

    contenders = {
        "serial loop": lambda: timed(
            [sys.executable, str(loop), str(data), str(scratch / "serial.txt"), str(size)], scratch),
        "runner, 1 worker": lambda: runner(1),
        "runner, 2 workers": lambda: runner(2),
        "two forked halves": lambda: timed(
            [sys.executable, str(halves), str(data), str(scratch / "halves.txt"), str(size)], scratch),
        **{f"arithmetic, {n} process{'es' * (n > 1)}": (lambda n=n: timed(
            [sys.executable, str(arithmetic), str(iterations), str(n)], scratch)) for n in (1, 2)},
    }
    figures: dict[str, tuple[float, float]] = {}
    paired: list[float] = []
    for round_number in range(repeat):  # round robin: a slow spell hits every contender alike
        walls = {}
        for name in round_order(list(contenders), round_number):
            wall, cpu, _ = contenders[name]()
            walls[name] = wall
            if name not in figures or wall < figures[name][0]:
                figures[name] = (wall, cpu)
        paired.append(walls["two forked halves"] / walls["runner, 2 workers"])
    serial = (scratch / "serial.txt").read_bytes()
    for rows in (scratch / "runner-2" / "rows.txt", scratch / "halves.txt"):
        if rows.read_bytes() != serial:
            raise RuntimeError(f"{rows.name}: rows differ from the serial loop's")
    return {name: figures[name] for name in contenders}, paired


def interactive(repeat: int, scratch: Path) -> tuple[float, float]:
    """(seconds to the first finished mini-batch, seconds to the end) of a 100-file run, best of `repeat`."""
    from tools.make_data import load_bundled, write_files

    data = scratch / "hundred"
    write_files(load_bundled(), data, count=100)
    entry = scratch / "first_batch_entry.py"
    entry.write_text(FIRST_BATCH_ENTRY.format(src=str(SRC)))
    marker = scratch / "first-batch"
    results = []
    for _ in range(repeat):
        marker.unlink(missing_ok=True)
        out = scratch / "hundred-out"
        shutil.rmtree(out, ignore_errors=True)
        wall, _, started_at = timed(runner_command(entry, data, out, 2, 5), scratch,
                                    {**environment(), "FIRST_BATCH_MARKER": str(marker)})
        results.append((float(marker.read_text()) - started_at, wall))
    return min(r[0] for r in results), min(r[1] for r in results)


def peak_memory(files: int, scratch: Path) -> tuple[float, float]:
    """The runner parent's peak RSS (MB) and the run's seconds on `files` empty files, no-op script."""
    data = scratch / f"empty-{files}"
    data.mkdir()
    for number in range(files):
        (data / f"f{number:07d}").touch()
    script = scratch / "noop_entry.py"
    script.write_text(NOOP_ENTRY)
    out = scratch / f"memory-{files}"
    subprocess.run(runner_command(script, data, out, 2, 5, action="summary_only"), cwd=scratch,
                   env=environment(), check=True, capture_output=True)
    shutil.rmtree(data)
    summary = json.loads((out / "logs" / "summary.json").read_text())
    return summary["parent_peak_rss_mb"], summary["elapsed_s"]


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m tools.bench_processes", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder of generated data files")
    parser.add_argument("--mini-batch-size", type=int, default=5)
    parser.add_argument("--repeat", type=at_least_one, default=5,
                        help="rounds (at least 5 for the paired ratio)")
    parser.add_argument("--arithmetic-iterations", type=int, default=24_000_000,
                        help="the machine-scaling probe's work (about 2 s in one process here)")
    parser.add_argument("--cycle-rounds", type=at_least_one, default=5,
                        help="rounds of the 100-file edit-run cycle (its first-batch time is noisy)")
    parser.add_argument("--memory-files", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    setup_logging("WARNING")
    if not args.data.is_dir():
        raise UsageError(f"--data {args.data}: not a folder; run `make data` first")
    files = sum(1 for p in args.data.rglob("*") if p.is_file() and not p.name.startswith("."))
    with tempfile.TemporaryDirectory(prefix="bench-processes-") as tmp:
        scratch = Path(tmp)
        figures, paired = whole_runs(args.data.resolve(), args.mini_batch_size, args.repeat, scratch,
                                     args.arithmetic_iterations)
        first, whole = interactive(args.cycle_rounds, scratch)
        memory = {n: peak_memory(n, scratch) for n in args.memory_files}
    machine = {name.removeprefix("arithmetic, "): figures.pop(name) for name in list(figures)
               if name.startswith("arithmetic")}
    serial_wall, serial_cpu = figures["serial loop"]
    print(f"whole processes: {files} files, mini-batches of {args.mini_batch_size}; "
          f"best of {args.repeat} rounds")
    print(f"{'contender':24} {'wall s':>8} {'files/s':>9} {'vs serial':>10} {'CPU s':>7} "
          f"{'CPU vs serial':>14}")
    for name, (wall, cpu) in figures.items():
        print(f"{name:24} {wall:8.3f} {files / wall:9.0f} {serial_wall / wall:9.2f}x {cpu:7.2f} "
              f"{cpu / serial_cpu - 1:+13.1%}")
    scaling = machine["1 process"][0] / machine["2 processes"][0]
    inflation = machine["2 processes"][1] / machine["1 process"][1] - 1
    share = {name: serial_wall / figures[name][0] / scaling
             for name in ("runner, 2 workers", "two forked halves")}
    print(f"the machine itself (pure arithmetic, nothing shared): two processes {scaling:.2f}x one, the same "
          f"work costing {inflation:+.1%} CPU; of that scaling, the runner reaches "
          f"{share['runner, 2 workers']:.0%}, the two forked halves {share['two forked halves']:.0%}")
    ceiling = statistics.median(paired)
    print(f"the runner (2 workers) against the two forked halves, paired by round: median {ceiling:.2f} of "
          f"their speed (rounds: {', '.join(f'{ratio:.2f}' for ratio in paired)})")
    print(f"edit-run cycle, 100 files, 2 workers: first mini-batch done after {first:.3f} s, "
          f"whole run {whole:.3f} s")
    for count, (megabytes, seconds) in memory.items():
        print(f"runner parent peak memory, {count} files: {megabytes:.0f} MB; "
              f"{seconds / count * 1e6:.1f} µs per file (no-op run(), empty files)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "files": files, "wall_cpu_seconds": figures, "machine_wall_cpu_seconds": machine,
            "machine_two_core_scaling": scaling, "runner_vs_halves_by_round": paired,
            "runner_vs_halves_median": ceiling,
            "machine_cpu_inflation": inflation, "first_batch_seconds": first,
            "hundred_files_seconds": whole, "parent_peak_rss_mb": {str(k): v[0] for k, v in memory.items()},
            "seconds_per_file": {str(k): v[1] / k for k, v in memory.items()},
        }, indent=2))
    print(last_line(0, f"whole-process benchmark done{f'; figures in {args.json}' if args.json else ''}"))
    return 0


if __name__ == "__main__":
    run_command(main)
