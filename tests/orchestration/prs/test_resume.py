"""Interrupting a run keeps what was finished; RESUME runs only the rest and refuses changed input."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestration.prs.resume import ResumeRefused
from tests.conftest import clean_env
from tests.orchestration.prs.conftest import FAULTY, make_inputs, output_rows, run


def cli(tmp_path, markers, *extra):
    return [sys.executable, "-m", "orchestration.prs", "--entry_script", str(FAULTY), "--input",
            str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--mini_batch_size", "1",
            "--error_threshold", "-1", "--local_max_workers", "2", "--node_count", "1",
            "--process_count_per_node", "2", *extra, "--", "--marker_dir", str(markers)]


def worker_pids(markers):
    return [int(p.name.split("-")[1]) for p in markers.glob("init-*")]


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().split()[2] != "Z"


@pytest.mark.parametrize("signal_number, exit_code",
                         [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129)])
def test_a_signal_stops_every_worker_and_resume_finishes_the_job(tmp_path, markers, signal_number, exit_code):
    make_inputs(tmp_path / "in", ["ok"] * 6 + ["hang"] + ["ok"] * 5)
    process = subprocess.Popen(cli(tmp_path, markers), env=clean_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until 6 rows are done and a worker hangs
        if (tmp_path / "out" / ".prs-state" / "parts").exists() and len(worker_pids(markers)) == 2:
            rows = b"".join(p.read_bytes() for p in (tmp_path / "out" / ".prs-state" / "parts").glob("*"))
            if rows.count(b"\n") >= 6:
                break
        time.sleep(0.05)
    pids = worker_pids(markers)
    process.send_signal(signal_number)
    stopped = time.monotonic()
    out, err = process.communicate(timeout=30)
    assert process.returncode == exit_code
    assert time.monotonic() - stopped < 8  # within seconds
    assert not any(alive(pid) for pid in pids)  # no orphan worker
    assert "Interrupted: stopped by " + signal.Signals(signal_number).name in out
    assert not (tmp_path / "out" / "parallel_run_step.txt").exists()
    done_before = int(out.split("items: ")[1].split(" succeeded")[0])
    assert done_before >= 6

    (tmp_path / "in" / "f06.txt").write_text("ok\n")  # a changed file is refused on resume ...
    refused = subprocess.run(cli(tmp_path, markers, "--resume"), env=clean_env(), capture_output=True,
                             text=True)
    assert refused.returncode == 2 and "f06.txt changed after that run started" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_resume_runs_only_the_rest_and_equals_a_clean_run(tmp_path, markers):
    make_inputs(tmp_path / "in", ["ok"] * 4 + ["raise"] + ["ok"] * 5)
    first = run(tmp_path, markers, mini_batch_size=1, error_threshold=0, run_max_try=1, max_workers=1,
                process_count_per_node=1)
    assert first.exit_code == 42
    # Thresholds do not shape what a mini-batch produces, so raising one is allowed on resume.
    for marker in markers.glob("init-*"):
        marker.unlink()
    resumed = run(tmp_path, markers, mini_batch_size=1, error_threshold=-1, run_max_try=1, resume=True)
    assert resumed.status == "Completed"
    assert resumed.items.succeeded == 9 and resumed.items.failed == 1
    resumed_rows = output_rows(tmp_path)
    clean = run(tmp_path, markers, mini_batch_size=1, error_threshold=-1, run_max_try=1)
    assert output_rows(tmp_path) == resumed_rows == [f"f{i:02d}.txt" for i in range(10) if i != 4]
    assert clean.items == resumed.items


def test_resume_after_completion_runs_nothing(tmp_path, markers):
    make_inputs(tmp_path / "in", ["ok"] * 4)
    run(tmp_path, markers)
    again = run(tmp_path, markers, resume=True)
    assert again.items.succeeded == 4 and output_rows(tmp_path) == [f"f{i:02d}.txt" for i in range(4)]
    assert again.attempts["SUCCESS"] == 0  # nothing ran


def test_resume_refuses_changed_settings_and_added_files(tmp_path, markers):
    make_inputs(tmp_path / "in", ["ok"] * 4)
    run(tmp_path, markers)
    with pytest.raises(ResumeRefused, match=r"out: MINI_BATCH_SIZE differs from that run"):  # that one only
        run(tmp_path, markers, resume=True, mini_batch_size=3)
    with pytest.raises(ResumeRefused, match=r"out: the entry script's arguments, the inputs differ"):
        run(tmp_path, markers, resume=True, inputs=(tmp_path / "in", tmp_path / "in"), arguments=("--x",))
    (tmp_path / "in" / "new.txt").write_text("ok\n")
    with pytest.raises(ResumeRefused, match="added, removed or renamed"):
        run(tmp_path, markers, resume=True)


def test_resume_without_a_previous_run_starts_fresh(tmp_path, markers):
    make_inputs(tmp_path / "in", ["ok"] * 2)
    assert run(tmp_path, markers, resume=True).items.succeeded == 2


def test_a_resumed_run_is_judged_on_the_whole_job_as_a_clean_run_is(tmp_path, markers):
    """Short returns recorded before the stop still count: the verdict equals a clean run's."""
    make_inputs(tmp_path / "in", ["short"] * 4 + ["ok"] * 4 + ["short"] * 4 + ["ok"] * 4)
    settings = dict(mini_batch_size=1, process_count_per_node=1, max_workers=1)
    clean = run(tmp_path, markers, error_threshold=5, output=tmp_path / "clean", **settings)
    assert (clean.exit_code, clean.reason) == (42, "ERROR_THRESHOLD=5 exceeded: 6 items failed")

    stopped = run(tmp_path, markers, error_threshold=3, **settings)  # stops early: 4 short returns
    assert stopped.exit_code == 42 and stopped.items.succeeded < 8
    resumed = run(tmp_path, markers, error_threshold=5, resume=True, **settings)
    assert (resumed.exit_code, resumed.reason) == (42, "ERROR_THRESHOLD=5 exceeded: 6 items failed")


def importing(pid, markers):
    """The parent has started its warm workers and is importing (no worker has its spec yet, so none has
    run init()): the launcher's window."""
    try:
        started = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return False
    return bool(started) and not worker_pids(markers)


PHASES = {
    "importing": importing,
    "starting workers": lambda pid, markers: bool(worker_pids(markers)),
    "running": lambda pid, markers: any(markers.glob("hanging-*")),
}


@pytest.mark.parametrize("phase", PHASES)
def test_ctrl_c_on_the_terminal_at_any_moment_ends_without_a_traceback(tmp_path, markers, phase):
    """A terminal's Ctrl-C goes to the whole foreground process group, the workers' included. Each phase
    is waited for as an event. (Within the interpreter's own first milliseconds, before any code of the
    toolkit runs, Python itself reports the interrupt: no program can catch it there.)"""
    make_inputs(tmp_path / "in", ["ok"] * 20 + ["hang"])  # the run cannot finish on its own
    process = subprocess.Popen(cli(tmp_path, markers), env=clean_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while not PHASES[phase](process.pid, markers) and process.poll() is None:
        assert time.monotonic() < deadline, f"the run never reached {phase}"
        time.sleep(0.001)
    os.killpg(process.pid, signal.SIGINT)
    try:
        out, err = process.communicate(timeout=60)
    finally:  # a run that ignored the signal must not outlive the test
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert "Traceback" not in err and "KeyboardInterrupt" not in err and "Logging error" not in err
    assert process.returncode == 130
    assert not [pid for pid in worker_pids(markers) if alive(pid)]


def test_a_fixed_entry_script_resumes_and_runs_only_what_failed(tmp_path, markers):
    """The exit-42 line says: fix, then resume. Editing the entry script in place is that fix."""
    script = tmp_path / "entry.py"
    script.write_text(
        "import pathlib, sys\n"
        "def init():\n    pass\n"
        "def run(mini_batch):\n"
        f"    log = pathlib.Path({str(markers)!r}) / 'runs.txt'\n"
        "    for item in mini_batch:\n"
        "        log.open('a').write(pathlib.Path(item).name + '\\n')\n"
        "        if pathlib.Path(item).read_text().strip() == 'raise':\n"
        "            raise ValueError('a bug, fixed below')\n"
        "    return [pathlib.Path(item).name for item in mini_batch]\n")
    make_inputs(tmp_path / "in", ["ok"] * 5 + ["raise"])
    settings = dict(mini_batch_size=1, error_threshold=-1, allowed_failed_count=0, arguments=(),
                    process_count_per_node=1, max_workers=1)  # in order: the failure comes last
    failed = run(tmp_path, markers, script=script, **settings)
    assert failed.exit_code == 42
    ran_before = (markers / "runs.txt").read_text().splitlines()
    script.write_text(script.read_text().replace("raise ValueError('a bug, fixed below')", "pass"))
    other = tmp_path / "other.py"
    other.write_text(script.read_text())
    with pytest.raises(ResumeRefused, match="the entry script differs"):  # another file is not a fix
        run(tmp_path, markers, script=other, resume=True, **settings)
    resumed = run(tmp_path, markers, script=script, resume=True, **settings)
    assert resumed.exit_code == 0 and resumed.items.succeeded == 6
    assert ran_before == [f"f{n:02d}.txt" for n in range(6)]
    assert (markers / "runs.txt").read_text().splitlines()[6:] == ["f05.txt"]  # only what failed
    assert sorted(output_rows(tmp_path)) == [f"f{n:02d}.txt" for n in range(6)]


@pytest.mark.parametrize("damage", ["plan.json", "batches"])
def test_a_resume_from_damaged_state_is_refused_with_the_reason(tmp_path, markers, damage):
    from orchestration.prs.state import StatePaths

    make_inputs(tmp_path / "in", ["ok"] * 4)
    run(tmp_path, markers)
    state = StatePaths.of(tmp_path / "out")
    if damage == "plan.json":
        state.plan.write_text("")
    else:
        state.batches.write_bytes(state.batches.read_bytes()[:5])
    with pytest.raises(ResumeRefused, match="its state in .* cannot be read"):
        run(tmp_path, markers, resume=True)
