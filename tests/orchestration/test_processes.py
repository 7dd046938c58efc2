"""Nothing a run starts outlives it: a command node's background processes, what run() starts and leaves
running, and what left its process group (setsid) are all stopped when the node or the run ends."""
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from orchestration.processes import adopt_orphans, children, stop_adopted
from tests.conftest import clean_env
from tests.orchestration.prs.test_resume import alive


def running(text):
    """The pids of live processes whose command line holds `text` (a zombie's is empty)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(entry.name))
        except OSError:  # it ended while it was looked at
            pass
    return found


def pids_in(folder):
    return [int(p.read_text()) for p in folder.glob("*.pid")]


def finish(command, tmp_path, timeout=60):
    """Runs a toolkit command as `make ... | tee log` would: its stdout a pipe read to the end."""
    process = subprocess.Popen(command, cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        out, err = process.communicate(timeout=timeout)  # hangs while a leftover holds the pipe
    finally:
        process.kill()
    return process.returncode, out, err


def test_a_command_node_that_leaves_processes_running_ends_with_them_stopped(tmp_path):
    (tmp_path / "job.yml").write_text(textwrap.dedent(f"""\
        type: pipeline
        jobs:
          starts:
            type: command
            command: >-
              sleep 987 & echo $! > {tmp_path}/a.pid;
              setsid sleep 988 & echo $! > {tmp_path}/b.pid;
              echo started
            environment: azureml:AzureML-sklearn-1.0@latest
        """))
    code, out, err = finish([sys.executable, "-m", "orchestration.prs", "--job", "job.yml", "--output",
                             "out"], tmp_path)
    assert code == 0, err
    assert "started" in out and out.strip().splitlines()[-1].startswith("exit 0: job job ran: starts")
    pids = pids_in(tmp_path)
    assert len(pids) == 2 and not any(alive(pid) for pid in pids)
    assert "jobs.starts: the command left 2 processes running" in err


SPAWNING = """\
import os, pathlib, subprocess, sys

def init():
    global folder
    folder = pathlib.Path(sys.argv[sys.argv.index("--pids") + 1])

def run(mini_batch):
    for item in mini_batch:
        name = pathlib.Path(item).stem
        grouped = subprocess.Popen(["sleep", "556"])
        escaped = subprocess.Popen(["sleep", "557"], start_new_session=True)
        (folder / f"{name}-a.pid").write_text(str(grouped.pid))
        (folder / f"{name}-b.pid").write_text(str(escaped.pid))
    return list(mini_batch)
"""


def test_processes_run_starts_and_leaves_running_are_stopped_when_the_run_ends(tmp_path):
    (tmp_path / "entry.py").write_text(SPAWNING)
    (tmp_path / "in").mkdir()
    for number in range(4):
        (tmp_path / "in" / f"f{number}.txt").write_text("x")
    (tmp_path / "pids").mkdir()
    code, out, err = finish([sys.executable, "-m", "orchestration.prs", "--entry_script", "entry.py",
                             "--input", "in", "--output", "out", "--mini_batch_size", "1",
                             "--process_count_per_node", "2", "--", "--pids", str(tmp_path / "pids")],
                            tmp_path)
    assert code == 0, err
    assert out.strip().splitlines()[-1].startswith("exit 0")
    pids = pids_in(tmp_path / "pids")
    assert len(pids) == 8 and not any(alive(pid) for pid in pids)
    assert "the entry script left 8 processes running" in err


def test_stop_adopted_stops_an_orphan_and_its_children_but_not_what_was_kept(tmp_path):
    assert adopt_orphans()
    kept = subprocess.Popen(["sleep", "30"])
    try:
        ours = children()
        # bash exits at once: its child (which has a child of its own) is orphaned, then adopted by us
        subprocess.run(["bash", "-c", f"(sleep 31 & echo $! > {tmp_path}/inner.pid; wait) & "
                                      f"echo $! > {tmp_path}/outer.pid"], check=True)
        deadline = time.monotonic() + 10
        while not (tmp_path / "inner.pid").exists() or not (tmp_path / "inner.pid").read_text():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        outer, inner = (int((tmp_path / f"{n}.pid").read_text()) for n in ("outer", "inner"))
        assert outer in children()
        stopped = stop_adopted(ours, grace=1)
        assert sorted(stopped) == sorted([outer, inner])
        assert not alive(outer) and not alive(inner) and kept.poll() is None
        assert outer not in children()  # reaped, not left a zombie
    finally:
        kept.kill()
        kept.wait()


RESPAWNING = """\
import os, pathlib, signal, sys, time
folder = pathlib.Path(sys.argv[1])
def heir(signum, frame):  # asked to stop, it leaves an heir in a new session and exits
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
    (folder / "forked").touch()
    if os.fork() == 0:
        os.setsid()
        (folder / f"{os.getpid()}.pid").write_text(str(os.getpid()))
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM])
        return
    os._exit(0)
signal.signal(signal.SIGTERM, heir)
(folder / f"{os.getpid()}.pid").write_text(str(os.getpid()))
time.sleep(120)
"""


def test_a_process_that_leaves_an_heir_when_asked_to_stop_is_stopped_with_its_heirs(tmp_path):
    (tmp_path / "respawn.py").write_text(RESPAWNING)
    (tmp_path / "pids").mkdir()
    (tmp_path / "job.yml").write_text(
        "type: pipeline\njobs:\n  j:\n    type: command\n"
        "    environment: azureml:AzureML-sklearn-1.0@latest\n"
        f"    command: setsid python3 {tmp_path}/respawn.py {tmp_path}/pids </dev/null >/dev/null 2>&1 & "
        f"while [ -z \"$(ls {tmp_path}/pids)\" ]; do sleep 0.01; done\n")
    code, out, err = finish([sys.executable, "-m", "orchestration.prs", "--job", "job.yml", "--output",
                             "out"], tmp_path)
    assert code == 0, err
    assert (tmp_path / "pids" / "forked").exists()  # it was asked to stop, and left at least one heir
    # Every process of the script, by its command line: an heir killed at once (SIGKILL, on a busy
    # machine) may not have written its pid file, or only part of it (both seen in CI).
    assert running(str(tmp_path / "respawn.py")) == []
