"""`python -m orchestration.prs`: run an entry script locally like ParallelRunStep."""

if __name__ == "__main__":
    from orchestration.interrupts import note_signals

    noted = note_signals()  # before any other import: a Ctrl-C from here on ends in one line
    from orchestration.cli import launch
    from orchestration.prs import warm

    # The workers start first: their start-up overlaps the runner's own imports.
    launch("orchestration.prs.cli", first=warm.start, noted=noted)
