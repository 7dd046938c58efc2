"""`python -m orchestration.cloud provision|upload|publish|run|logs|registry`: the Azure side."""

if __name__ == "__main__":
    from orchestration.interrupts import note_signals

    noted = note_signals()  # before any other import: a Ctrl-C from here on ends in one line
    from orchestration.commands import launch

    launch("orchestration.cloud.cli", noted=noted)
