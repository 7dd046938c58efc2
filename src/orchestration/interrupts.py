"""The first step of every `python -m` entry point: SIGINT and SIGTERM are noted, not raised, until the
command's imports are done (`orchestration.cli.launch` then acts on them).

A leaf that imports only the interpreter's built-in `_signal`, already loaded at start-up: `signal`
builds its enums and `typing` takes milliseconds more, and a Ctrl-C inside those imports would still be
a KeyboardInterrupt traceback.
"""
import _signal


def note_signals() -> list[int]:
    """Makes SIGINT and SIGTERM only append their numbers to the list returned."""
    noted: list[int] = []
    for number in (_signal.SIGINT, _signal.SIGTERM):
        _signal.signal(number, lambda signum, frame: noted.append(signum))
    return noted
