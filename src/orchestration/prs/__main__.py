"""`python -m orchestration.prs`: run an entry script locally like ParallelRunStep."""

if __name__ == "__main__":
    import signal
    import sys

    # Ctrl-C or SIGTERM while the command is still importing is only noted: an exception raised inside
    # an import can be swallowed by a library's bare `except:`, and the run would then go on. It is acted
    # on as soon as the imports are done; from then on a signal ends the command at once, quietly, until
    # the run installs its own handlers.
    noted: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: noted.append(130))
    signal.signal(signal.SIGTERM, lambda signum, frame: noted.append(143))

    from orchestration.cli import run_command
    from orchestration.prs.cli import main

    if noted:
        sys.exit(noted[0])
    signal.signal(signal.SIGINT, lambda signum, frame: sys.exit(130))
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    run_command(main)
