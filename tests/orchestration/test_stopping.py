import os
import select
import signal
import subprocess
import threading
import time

import pytest

from orchestration.errors import Stopped
from orchestration.interrupts import STOP_SIGNALS
from orchestration.processes import stop_groups
from orchestration.stopping import StopLatch
from tests.orchestration.prs.test_resume import alive


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
    before = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    with StopLatch() as latch:
        assert signal.getsignal(signal.SIGINT) != before[signal.SIGINT]
        fd = latch.fd
    assert {sig: signal.getsignal(sig) for sig in before} == before
    assert signal.set_wakeup_fd(-1) == -1  # none left installed
    with pytest.raises(OSError):
        os.fstat(fd)  # the pipe is closed


def test_stopping_a_group_kills_what_ignores_sigterm_once_the_grace_is_over(tmp_path):
    leader = subprocess.Popen(["bash", "-c", "trap '' TERM; sleep 60 & echo $! > child.pid; wait"],
                              cwd=tmp_path, process_group=0)
    pid_file = tmp_path / "child.pid"
    while not (pid_file.exists() and pid_file.read_text().strip()):
        time.sleep(0.01)
    started = time.monotonic()
    assert stop_groups([leader.pid], grace=0.3)
    leader.wait()
    assert time.monotonic() - started >= 0.3  # SIGTERM was ignored: SIGKILL after the grace
    assert leader.returncode == -signal.SIGKILL
    # bash's child too, once stop_groups returns: it waits for the kill to take effect, however busy the
    # machine (a zombie at most, if PID 1 never reaps it)
    assert not alive(int(pid_file.read_text()))


def test_a_latch_that_ignores_on_exit_never_puts_the_raising_handlers_back():
    """The runner's command ends with its run: once the logs are written, a signal must not raise
    Stopped in the few calls left (the summary's print) and contradict them."""
    before = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    try:
        with StopLatch(ignore_on_exit=True):
            pass
        assert {sig: signal.getsignal(sig) for sig in before} == dict.fromkeys(before, signal.SIG_IGN)
        os.kill(os.getpid(), signal.SIGTERM)  # to any thread of this process: ignored by all
        time.sleep(0.05)
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
