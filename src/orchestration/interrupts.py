"""The first step of every `python -m` entry point: SIGINT, SIGTERM and SIGHUP are noted, not raised,
until the command's imports are done (`orchestration.commands.launch` then acts on them); and its last: once
the command has ended, they are ignored, so that none can change its exit code or print a traceback,
even during the interpreter's teardown (where Python puts back the default handlers, but leaves an
ignored signal be).

A leaf that imports only the interpreter's built-in `_signal`, already loaded at start-up: `signal`
builds its enums and `typing` takes milliseconds more, and a Ctrl-C inside those imports would still be
a KeyboardInterrupt traceback.
"""
import _signal

# The signals that stop a command: Ctrl-C, `kill`, and a closed terminal or dropped ssh session (SIGHUP),
# unless the command was started ignoring it (nohup): read before any handler is installed.
STOP_SIGNALS = (_signal.SIGINT, _signal.SIGTERM) + (
    () if _signal.getsignal(_signal.SIGHUP) == _signal.SIG_IGN else (_signal.SIGHUP,))


def note_signals() -> list[int]:
    """Makes the stop signals only append their numbers to the list returned."""
    noted: list[int] = []
    for number in STOP_SIGNALS:
        _signal.signal(number, lambda signum, frame: noted.append(signum))
    return noted


def ignore_signals() -> None:
    """Ignores the stop signals for the rest of the process, in every thread. Processes started
    afterwards inherit it: only for a command that has ended."""
    for number in STOP_SIGNALS:
        _signal.signal(number, _signal.SIG_IGN)
