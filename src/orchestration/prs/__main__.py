"""`python -m orchestration.prs`: run an entry script locally like ParallelRunStep, or with `--job` an
Azure ML v2 job, with `--deployment` a batch endpoint deployment (orchestration.jobs.cli: an entry point
may dispatch to the layer above it)."""

if __name__ == "__main__":
    import sys

    from orchestration.interrupts import note_signals

    noted = note_signals()  # before any other import: a Ctrl-C from here on ends in one line
    from orchestration.commands import launch
    from orchestration.prs import warm

    flags = sys.argv[1:sys.argv.index("--")] if "--" in sys.argv else sys.argv[1:]
    names = [flag.split("=")[0] for flag in flags]
    # --job or --deployment, or what argparse takes for them (--jo, --dep, --job=FILE)
    job = any(len(name) > 3 and "--job".startswith(name) or len(name) > 3 and "--deployment".startswith(name)
              for name in names)
    # The workers start first: their start-up overlaps the runner's own imports.
    launch("orchestration.jobs.cli" if job else "orchestration.prs.cli", first=warm.start, noted=noted)
