"""The first step of every `python -m` entry point: SIGINT and SIGTERM are noted, not raised, until the
command's imports are done (`orchestration.cli.launch` then acts on them); and its last: once the command
has ended, they are ignored, so that none can change its exit code or print a traceback, even during the
interpreter's teardown (where Python puts back the default handlers, but leaves an ignored signal be).

A leaf that imports only the interpreter's built-in `_signal`, already loaded at start-up: `signal`
builds its enums and `typing` takes milliseconds more, and a Ctrl-C inside those imports would still be
a KeyboardInterrupt traceback.
"""
import _signal

STOP_SIGNALS = (_signal.SIGINT, _signal.SIGTERM)  # the signals that stop a command (Ctrl-C, `kill`)


def note_signals() -> list[int]:
    """Makes SIGINT and SIGTERM only append their numbers to the list returned."""
    noted: list[int] = []
    for number in STOP_SIGNALS:
        _signal.signal(number, lambda signum, frame: noted.append(signum))
    return noted


def ignore_signals() -> None:
    """Ignores SIGINT and SIGTERM for the rest of the process, in every thread. Processes started
    afterwards inherit it: only for a command that has ended."""
    for number in STOP_SIGNALS:
        _signal.signal(number, _signal.SIG_IGN)
