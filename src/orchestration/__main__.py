"""`python -m orchestration MODULE [ARGS...]`: runs a toolkit command's `main()` with a clean start and
end (see `commands.launch`); the Makefile starts most commands this way."""

if __name__ == "__main__":
    import sys

    from orchestration.interrupts import note_signals

    noted = note_signals()  # before any other import: a Ctrl-C from here on ends in one line
    from orchestration.commands import launch

    if len(sys.argv) < 2:
        sys.exit("usage: python -m orchestration MODULE [ARGS...]")
    module = sys.argv.pop(1)
    sys.argv[0] = f"python -m {module}"
    launch(module, noted=noted)
