"""`python -m orchestration.prs`: run an entry script locally like ParallelRunStep."""

if __name__ == "__main__":
    import signal
    import sys

    # Ctrl-C or SIGTERM while the command is still importing: a quiet exit with the signal's code, not
    # a traceback. The run installs its own handlers once it starts.
    signal.signal(signal.SIGINT, lambda signum, frame: sys.exit(130))
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))

    from orchestration.cli import run_command
    from orchestration.prs.cli import main

    run_command(main)
