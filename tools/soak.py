"""`make soak`: local-extract runs under random faults, each followed by resumes; no row may be lost.

Each run gets fresh inputs (ok, short, flaky and, sometimes, hanging items) and one fault: a worker
killed, the parent killed (-9), SIGINT or SIGTERM to the parent, a full disk (a small tmpfs where
mounting is allowed), or none. The run is then resumed until it ends. It must end exact — every row that
should be there exactly once, nothing else — or with a refusal that states its reason. Prints the runs,
the faults injected and the rows lost, which must be 0 (exit 1 otherwise).
"""
from __future__ import annotations

import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from orchestration.commands import ArgumentParser, UsageError, last_line, run_command, setup_logging
from orchestration.errors import EXIT_FAILED, EXIT_OK
from orchestration.paths import ROOT, SRC
from orchestration.stopping import StopLatch

log = logging.getLogger(__name__)

ENTRY_SCRIPT = Path(__file__).resolve().parent / "soak_entry.py"
BATCH = 3  # MINI_BATCH_SIZE of the soak's runs
# Attempts per mini-batch: a mini-batch of 3 flaky items needs 4, since each attempt fails at the next
# one; one more covers an attempt lost to an injected kill.
MAX_TRY = 5
FAULTS = ("none", "kill worker", "kill -9 parent", "SIGINT", "SIGTERM", "full disk")


def runner(inputs: Path, output: Path, resume: bool) -> list[str]:
    return [sys.executable, "-m", "orchestration.prs", "--entry_script", str(ENTRY_SCRIPT), "--input",
            str(inputs), "--output", str(output), "--mini_batch_size", str(BATCH), "--error_threshold", "-1",
            "--run_invocation_timeout", "1", "--run_max_try", str(MAX_TRY), "--node_count", "1",
            "--process_count_per_node", "2", "--local_max_workers", "2", *(["--resume"] if resume else [])]


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def inject(process: subprocess.Popen, fault: str, rng: random.Random) -> None:
    """Waits a little, then injects the fault into the running command."""
    time.sleep(rng.uniform(0.2, 0.8))
    if process.poll() is not None:
        return
    if fault == "kill worker":
        workers = children(process.pid)
        if workers:
            os.kill(rng.choice(workers), signal.SIGKILL)
    elif fault == "kill -9 parent":
        process.kill()
    elif fault in ("SIGINT", "SIGTERM"):
        process.send_signal(getattr(signal, fault))


def mount_small_disk(folder: Path) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
                          capture_output=True).returncode == 0


def one_run(number: int, rng: random.Random, scratch: Path, counts: Counter,
            check: Callable[[], None]) -> int:
    """One faulty run and its resumes; returns the rows lost (or duplicated). `check()` raises Stopped
    once Ctrl-C or SIGTERM has arrived: called after each command, never while one is waited for."""
    inputs, markers = scratch / f"in-{number}", scratch / f"markers-{number}"
    inputs.mkdir()
    markers.mkdir()
    kinds = rng.choices(["ok", "short", "flaky", "hang"], weights=[80, 8, 10, 1], k=rng.randint(30, 120))
    for index, kind in enumerate(kinds):
        (inputs / f"f{index:04d}.txt").write_text(kind + "\n")
    # A mini-batch (3 files, in name order) with a hanging item times out as a whole: none of its rows.
    expected = sorted(f"f{i:04d}.txt" for i, kind in enumerate(kinds) if kind in ("ok", "flaky")
                      and "hang" not in kinds[i - i % BATCH:i - i % BATCH + BATCH])
    fault = rng.choice(FAULTS)
    disk = scratch / f"disk-{number}"
    small = fault == "full disk" and mount_small_disk(disk)
    output = (disk if small else scratch) / f"out-{number}"
    counts[fault if fault != "full disk" or small else "none"] += 1
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(ROOT)]), "SOAK_MARKERS": str(markers)}
    try:
        process = subprocess.Popen(runner(inputs, output, False), env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        inject(process, fault, rng)
        process.wait(timeout=300)
        check()
        if small:  # the user frees space: the run moves to a roomy disk and resumes there
            shutil.copytree(output, scratch / f"moved-{number}", symlinks=True)
            output = scratch / f"moved-{number}"
        for _ in range(5):  # resume until the run ends one way or the other
            result = subprocess.run(runner(inputs, output, True), env=env, capture_output=True, text=True,
                                    timeout=300)
            check()
            if result.returncode == 0:
                break
            if result.returncode == 2:  # refused: it must say why
                counts["refused with a reason" if "refused" in result.stderr else "refused silently"] += 1
                return 0 if "refused" in result.stderr else len(expected)
        rows_file = output / "extraction_output.txt"
        rows = sorted(rows_file.read_text().split()) if rows_file.exists() else []
    finally:
        if small:
            subprocess.run(["umount", "-l", str(disk)], capture_output=True)
    lost = len(set(expected) - set(rows)) + (len(rows) - len(set(rows))) + len(set(rows) - set(expected))
    if lost:
        log.error("run %d (%s): %d rows lost, duplicated or unexpected: missing %s, unexpected %s (in %s)",
                  number, fault, lost, sorted(set(expected) - set(rows))[:5],
                  sorted(set(rows) - set(expected))[:5], output)
    return lost


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m tools.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120, help="stop starting runs after this long")
    parser.add_argument("--runs", type=int, default=0, help="stop after this many runs (0: no limit)")
    parser.add_argument("--seed", type=int, default=None, help="repeat a soak exactly (faults, inputs)")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument("--keep", action="store_true", help="keep the runs' folders, to look into them")
    args = parser.parse_args(argv)
    if args.seconds <= 0:
        raise UsageError("--seconds: expected a positive number")
    setup_logging("WARNING")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    rng, counts, lost, runs = random.Random(seed), Counter(), 0, 0
    deadline = time.monotonic() + args.seconds
    scratch = Path(tempfile.mkdtemp(prefix="soak-"))
    # Signals are only noted while the runs go on and their folders are removed: a raising handler
    # landing inside Popen.wait() would leave that Popen's lock taken (and the runner it started running
    # on, orphaned), one landing in the removal would leave the folders. The soak stops before its next
    # command, or after the one it waits for has ended (a terminal's Ctrl-C ends that command too).
    with StopLatch() as latch:
        try:
            while time.monotonic() < deadline and (not args.runs or runs < args.runs):
                latch.check()
                lost += one_run(runs, rng, scratch, counts, latch.check)
                runs += 1
        finally:
            if args.keep:
                print(f"the runs' folders are in {scratch}")
            else:
                shutil.rmtree(scratch, ignore_errors=True)
    faults = {fault: counts[fault] for fault in FAULTS if counts[fault]}
    refusals = {k: v for k, v in counts.items() if k.startswith("refused")}
    figures = {"seed": seed, "runs": runs, "faults": faults, "refusals": refusals, "rows_lost": lost}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    code = EXIT_OK if lost == 0 else EXIT_FAILED
    print(last_line(code, f"soak (seed {seed}): {runs} runs, faults {json.dumps(faults)}, refusals "
                          f"{json.dumps(refusals)}, rows lost {lost}"
                          + ("" if code == 0 else f"; replay with --seed {seed} --keep")))
    return code


if __name__ == "__main__":
    run_command(main)
