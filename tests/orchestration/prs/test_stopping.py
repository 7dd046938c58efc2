import os
import select
import signal
import subprocess
import threading

import pytest

from orchestration.errors import Stopped
from orchestration.prs.stopping import StopLatch


def test_signals_landing_inside_popen_poll_are_only_noted_so_a_later_wait_still_returns():
    """A raising handler that lands inside Popen.poll() leaves its lock taken and a later wait() hangs;
    under the latch, 200 signals during 'poll()' calls raise nothing there, and wait() returns."""
    child = subprocess.Popen(["sleep", "30"])
    with StopLatch() as latch:
        sender = threading.Thread(target=lambda: [os.kill(os.getpid(), signal.SIGTERM) for _ in range(200)])
        sender.start()
        polls = 0
        while sender.is_alive() or polls < 1000:
            assert child.poll() is None
            polls += 1
        sender.join()
        with pytest.raises(Stopped) as stopped:
            latch.check()
    assert (stopped.value.signal_name, stopped.value.exit_code) == ("SIGTERM", 143)
    child.kill()
    assert child.wait(timeout=10) == -signal.SIGKILL


def test_a_signal_wakes_the_loop_through_the_pipe_and_the_first_one_counts():
    with StopLatch() as latch:
        latch.check()  # nothing yet
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
        assert select.select([latch.fd], [], [], 10)[0] == [latch.fd]
        latch.drain()
        assert select.select([latch.fd], [], [], 0)[0] == []
        with pytest.raises(Stopped, match="SIGINT"):
            latch.check()


def test_the_previous_handlers_and_wakeup_fd_are_restored():
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    with StopLatch() as latch:
        assert signal.getsignal(signal.SIGINT) != before[signal.SIGINT]
        fd = latch.fd
    assert {sig: signal.getsignal(sig) for sig in before} == before
    assert signal.set_wakeup_fd(-1) == -1  # none left installed
    with pytest.raises(OSError):
        os.fstat(fd)  # the pipe is closed
