"""A local emulator of Azure ML's ParallelRunStep (v1) / parallel job (v2).

It runs an unchanged entry script (`init()` / `run(mini_batch)` / `shutdown()`) in worker processes over
mini-batches, with the runtime's accounting, retries, timeouts, thresholds, append_row output and logs
layout (see docs/runner.md, and Learn's ParallelRunConfig reference), plus a local extra: resume.

Modules, one job each: `config` (what a run is asked to do), `planning` (inputs to mini-batches),
`state` (the on-disk record of every mini-batch), `backlog` (the work still to hand out, leases),
`protocol` (the parent <-> worker wire), `worker` (one worker process), `pool` (the worker processes),
`warm` (workers started ahead of the command line's imports),
`accounting` (tallies, retries, thresholds), `resume`, `progress`, `scheduler` (the parent's loop,
signals, the end), `report` (merged output, summary and logs), `cli` (the command line).
"""
