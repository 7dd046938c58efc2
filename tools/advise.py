"""`make advise`: how to size the cloud run of an entry script, from a short local measurement.

It runs the entry script through the local runner on a sample of its inputs (file inputs), twice with one
worker (1 item per mini-batch, then 10) to separate the time inside run() from the fixed start-up
(interpreter, imports, init(), planning, merge) and the runner's own time per mini-batch, and the time of
run() per item from its time per call. From the time per item, its spread and the output size, it
recommends MINI_BATCH_SIZE, PROCESS_COUNT_PER_NODE and NODE_COUNT for a target wall time on a VM size,
stating every assumption. Then it checks its own arithmetic: it
predicts the local runner's time with 1 and 2 workers, runs both, and prints the error.

    python -m tools.advise --entry_script E --input SAMPLE [--items N] [--target-minutes 30] [--vm-size S]
"""
from __future__ import annotations

import csv
import math
import os
import resource
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from orchestration.commands import (
    ArgumentParser, UsageError, at_least_one, last_line, run_command, setup_logging,
)
from orchestration.prs.outputs import Summary
from orchestration.settings import load_settings
from tools.bench import best_of, run_locally

# vCPUs of common Azure ML CPU sizes (learn.microsoft.com/azure/virtual-machines/sizes: Dv2, Dsv3, Fsv2).
VM_CORES = {
    "STANDARD_D1_V2": 1, "STANDARD_D2_V2": 2, "STANDARD_D3_V2": 4, "STANDARD_D4_V2": 8, "STANDARD_D5_V2": 16,
    "STANDARD_DS2_V2": 2, "STANDARD_DS3_V2": 4, "STANDARD_DS4_V2": 8, "STANDARD_DS5_V2": 16,
    "STANDARD_D2S_V3": 2, "STANDARD_D4S_V3": 4, "STANDARD_D8S_V3": 8, "STANDARD_D16S_V3": 16,
    "STANDARD_F2S_V2": 2, "STANDARD_F4S_V2": 4, "STANDARD_F8S_V2": 8, "STANDARD_F16S_V2": 16,
}
# Assumed, stated in the output and overridable. No Azure document gives the service's time per mini-batch
# outside run(); it is measurable in a real run: logs/sys/node/<node>/<process>.txt gives each mini-batch's
# duration and its run method time (learn.microsoft.com/azure/machine-learning/how-to-debug-parallel-run-step)
# A node's start-up: "Creation of AmlCompute takes approximately 5 minutes" (Azure ML notebooks and docs).
BATCH_OVERHEAD_S = 1.0
NODE_STARTUP_S = 300.0
OVERHEAD_SHARE = 0.05  # the cloud overhead a mini-batch may add to its run() time
CALIBRATION_SIZES = (1, 10)
REPEAT = 3  # each local measurement: the fastest of 3


@dataclass(frozen=True)
class Measurement:
    items: int
    item_s: float  # time in run() per item, its time per call apart
    item_sd: float  # the standard deviation of run()'s time across one-item mini-batches
    call_s: float  # time in run() per call, whatever its items (and the attempt's own bookkeeping)
    startup_s: float  # wall time before the first and after the last mini-batch
    batch_wall_s: float  # the runner's wall time per mini-batch outside run(), one worker
    batch_cpu_s: float  # the CPU it spends per mini-batch outside run(), parent and worker together
    output_bytes_per_item: float


@dataclass(frozen=True)
class Plan:
    mini_batch_size: int
    processes_per_node: int
    nodes: int
    predicted_minutes: float
    reachable: bool  # the target is met within --max-nodes


def predict_local(m: Measurement, items: int, workers: int, mini_batch_size: int, cores: int) -> float:
    """Seconds for the local runner: fixed start-up, then the work shared by the workers, but no faster
    than the machine's cores can give the work and every process's CPU per mini-batch (the parent's too)."""
    batches = math.ceil(items / mini_batch_size)
    work = items * m.item_s + batches * m.call_s
    return m.startup_s + max((work + batches * m.batch_wall_s) / workers,
                             (work + batches * m.batch_cpu_s) / cores)


def recommend(m: Measurement, total_items: int, cores: int, target_s: float, max_nodes: int, timeout_s: int,
              batch_overhead_s: float = BATCH_OVERHEAD_S, node_startup_s: float = NODE_STARTUP_S) -> Plan:
    """The smallest mini-batch whose cloud overhead stays under OVERHEAD_SHARE of its run() time (capped so
    that a slow mini-batch, 3 standard deviations per item, stays under half of RUN_INVOCATION_TIMEOUT and
    every process gets at least 4 mini-batches); one process per core; the fewest nodes meeting the target."""
    per_item, per_batch = max(m.item_s, 1e-6), batch_overhead_s + m.call_s
    size = math.ceil(per_batch / (OVERHEAD_SHARE * per_item))
    slow_item = per_item + 3 * m.item_sd
    size = min(size, max(1, int(0.5 * timeout_s / slow_item)))
    work_s = total_items * per_item
    size = max(1, min(size, total_items // (4 * cores) or 1))
    per_process_s = work_s + math.ceil(total_items / size) * per_batch
    budget = target_s - node_startup_s - m.startup_s
    nodes = math.ceil(per_process_s / (cores * budget)) if budget > 0 else max_nodes
    reachable = budget > 0 and nodes <= max_nodes
    nodes = max(1, min(nodes, max_nodes))
    minutes = (node_startup_s + m.startup_s + per_process_s / (cores * nodes)) / 60
    return Plan(size, cores, nodes, minutes, reachable)


def measure(entry_script: Path, sample: Path, arguments: tuple[str, ...], scratch: Path,
            repeat: int = REPEAT) -> Measurement:
    """Two one-worker runs (1, then 10 items per mini-batch). The difference of their times outside run()
    is the cost per mini-batch (wall, and CPU of parent and worker together); the rest is start-up. The
    difference of their times inside run() is run()'s own cost per call; the rest is per item."""
    runs = []
    for size in CALIBRATION_SIZES:
        out = scratch / f"calibrate-{size}"
        trials = []
        for _ in range(repeat):  # the fastest of a few: this machine's noise is one-sided
            before = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            summary = local_run(entry_script, sample, arguments, out, workers=1, size=size)
            wall = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = sum(a.ru_utime + a.ru_stime - b.ru_utime - b.ru_stime for a, b in zip(after, before))
            with (out / "logs" / "sys" / "job_report" / "processed_mini-batches.csv").open() as report:
                times = [float(row["elapsed_s"]) for row in csv.DictReader(report)]
            output = out / "rows.txt"
            trials.append((wall, len(times), wall - sum(times), cpu - sum(times), times,
                           output.stat().st_size if output.exists() else 0))
        runs.append(min(trials)[1:])
        items = summary.items.total
    (batches_1, wall_1, cpu_1, times_1, output_bytes), (batches_n, wall_n, cpu_n, times_n, _) = runs
    spread = max(batches_1 - batches_n, 1)
    batch_wall, batch_cpu = max((wall_1 - wall_n) / spread, 0.0), max((cpu_1 - cpu_n) / spread, 0.0)
    call = max((sum(times_1) - sum(times_n)) / spread, 0.0)
    item = max((sum(times_n) - batches_n * call) / max(items, 1), 0.0)
    return Measurement(items, item, statistics.pstdev(times_1), call,
                       max(wall_n - batches_n * batch_wall, 0.0), batch_wall, batch_cpu,
                       output_bytes / max(items, 1))


def local_run(entry_script: Path, sample: Path, arguments: tuple[str, ...], out: Path, workers: int,
              size: int) -> Summary:
    shutil.rmtree(out, ignore_errors=True)
    return run_locally(entry_script, sample, out, workers, size, arguments=arguments)


def main(argv: list[str] | None = None) -> int:
    settings = load_settings()
    parser = ArgumentParser(prog="python -m tools.advise", description=__doc__.splitlines()[0])
    parser.add_argument("--entry_script", type=Path, required=True)
    parser.add_argument("--input", type=Path, required=True, help="a sample of the job's input files")
    parser.add_argument("--items", type=int, help="items in the whole cloud job (default: the sample's)")
    parser.add_argument("--target-minutes", type=float, default=30.0, help="wall time wanted in the cloud")
    parser.add_argument("--vm-size", default=settings.aml_compute_vm_size, help="AML_COMPUTE_VM_SIZE")
    parser.add_argument("--vm-cores", type=int, help="its vCPUs, for a size not in the built-in table")
    parser.add_argument("--max-nodes", type=int, default=settings.aml_compute_max_nodes)
    parser.add_argument("--batch-overhead-s", type=float, default=BATCH_OVERHEAD_S,
                        help="the cloud service's seconds per mini-batch outside run() (assumed)")
    parser.add_argument("--node-startup-s", type=float, default=NODE_STARTUP_S,
                        help="a node's start-up from zero, seconds (assumed)")
    parser.add_argument("--repeat", type=at_least_one, default=REPEAT,
                        help="each local measurement: the fastest of N")
    parser.add_argument("arguments", nargs="*", help="after --: the entry script's own arguments")
    args = parser.parse_args(argv)
    setup_logging("WARNING")
    cores = args.vm_cores or VM_CORES.get(args.vm_size.upper())
    if cores is None:
        raise UsageError(f"--vm-size {args.vm_size}: not in the built-in table; give --vm-cores")
    if not args.entry_script.is_file() or not args.input.exists():
        raise UsageError("--entry_script and --input: expected an existing script and sample folder")
    arguments = tuple(args.arguments)
    with tempfile.TemporaryDirectory(prefix="advise-") as tmp:
        scratch = Path(tmp)
        m = measure(args.entry_script, args.input, arguments, scratch, args.repeat)
        total = args.items or m.items
        plan = recommend(m, total, cores, args.target_minutes * 60, args.max_nodes,
                         settings.run_invocation_timeout, args.batch_overhead_s, args.node_startup_s)
        local_size = max(1, min(plan.mini_batch_size, m.items // 8 or 1))
        checks = []
        for workers in (1, 2):
            predicted = predict_local(m, m.items, workers, local_size, os.cpu_count() or 1)
            out = scratch / f"check-{workers}"
            measured = best_of(args.repeat, lambda: local_run(args.entry_script, args.input, arguments, out,
                                                              workers, local_size))
            checks.append((workers, predicted, measured))
    print(f"measured on {m.items} sample items ({args.entry_script}):")
    print(f"  run() per item {m.item_s * 1000:.2f} ms (sd {m.item_sd * 1000:.2f} ms, "
          f"cv {m.item_sd / max(m.item_s, 1e-9):.0%}), and {m.call_s * 1e6:.0f} us per call; "
          f"output {m.output_bytes_per_item:.0f} bytes per item")
    print(f"  start-up and init (worker start, imports, init(), planning, merge) {m.startup_s:.2f} s; the "
          f"runner's own time per mini-batch {m.batch_wall_s * 1e6:.0f} us "
          f"(CPU {m.batch_cpu_s * 1e6:.0f} us)")
    print("assumed (override with the flags named):")
    print(f"  {args.vm_size}: {cores} vCPUs, one process per vCPU (run() single-threaded, CPU-bound) "
          "(--vm-cores)")
    print(f"  the cloud service's time per mini-batch outside run(): {args.batch_overhead_s:g} s "
          "(--batch-overhead-s)")
    print(f"  a node's start-up from zero: {args.node_startup_s:g} s (--node-startup-s); at most "
          f"{args.max_nodes} nodes (--max-nodes); RUN_INVOCATION_TIMEOUT {settings.run_invocation_timeout} s")
    print(f"  a mini-batch's overhead at most {OVERHEAD_SHARE:.0%} of its run() time; its run() under half "
          "the timeout at 3 standard deviations per item; at least 4 mini-batches per process")
    print(f"recommended for {total} items within {args.target_minutes:g} minutes:")
    print(f"  MINI_BATCH_SIZE={plan.mini_batch_size}\n  PROCESS_COUNT_PER_NODE={plan.processes_per_node}\n"
          f"  NODE_COUNT={plan.nodes}\n  AML_COMPUTE_VM_SIZE={args.vm_size.upper()}")
    print(f"  predicted cloud wall time {plan.predicted_minutes:.1f} min; output about "
          f"{m.output_bytes_per_item * total / 1e6:.1f} MB"
          + ("" if plan.reachable else f"; the target is not reachable with {args.max_nodes} nodes"))
    print(f"check against the local runner ({m.items} items, mini-batches of {local_size}):")
    worst = 0.0
    for workers, predicted, measured in checks:
        error = predicted / measured - 1
        worst = max(worst, abs(error))
        print(f"  {workers} worker{'s' * (workers > 1)}: predicted {predicted:.2f} s, measured "
              f"{measured:.2f} s ({error:+.0%})")
    verdict = "within 15 %" if worst <= 0.15 else "off by more than 15 %: use a larger sample"
    print(last_line(0, f"advice printed; the local prediction is {verdict}"))
    return 0


if __name__ == "__main__":
    run_command(main)
