"""A local emulator of Azure ML's ParallelRunStep (v1) / parallel job (v2).

It runs an unchanged entry script (`init()` / `run(mini_batch)` / `shutdown()`) in worker processes over
mini-batches, with the runtime's accounting, retries, timeouts, thresholds, append_row output and logs
layout (see docs/runner.md, and Learn's ParallelRunConfig reference), plus a local extra: resume.

Modules, one job each: `config` (what a run is asked to do), `listing` (an input folder's files, sorted),
`planning` (inputs to mini-batches), `mltable` and `tables` (MLTable inputs, parent and worker side),
`state` (the on-disk record of every mini-batch), `backlog` (the work still to hand out, leases),
`protocol` (the parent <-> worker wire), `worker` (one worker process), `executor` (the workers as
the loop sees them: the seam), `pool` (the worker processes, the runner's executor),
`warm` (workers started ahead of the command line's imports), `interpreter` and `container` (workers in
another Python or a Docker image), `accounting` (tallies, retries, thresholds), `claim` (the output
folder), `resume`, `progress`, `scheduler` (the parent's loop, signals, the end), `outputs` (merged
output, summary and logs), `cli` (the command line).

Its face, all that the layers above it (jobs, the local pipeline, the tools) import: `config.RunConfig`,
`scheduler.run_parallel` and `outputs.Summary` (with `format_summary`, `run_outcome`), plus the parts a
v2 job reuses: `cli` (the shared flags), `container` (the Docker calls), `mltable`, `claim`
(`RUNNER_ENTRIES`), and `listing` (the benchmarks' loops list as the runner does). tests/test_layering.py
holds the rest to it: the workers, the pool, the state, the accounting are the runner's inside.
"""

FACE = ("config", "scheduler", "outputs", "cli", "container", "mltable", "claim", "listing")
