"""A local emulator of Azure ML's ParallelRunStep (v1) / parallel job (v2).

It runs an unchanged entry script (`init()` / `run(mini_batch)` / `shutdown()`) in worker processes over
mini-batches, with the runtime's accounting, retries, timeouts, thresholds, append_row output and logs
layout (see shared/docs/parallel-run-semantics.md), plus a local extra: resume.

Modules: `config` (what a run is asked to do), `planning` (inputs to mini-batches), `state` (the on-disk
record of every mini-batch), `worker` (one worker process), `scheduler` (the parent: leases, retries,
timeouts, thresholds, signals), `report` (merged output, summary and logs), `cli` (the command line).
"""
