import json
import re

import numpy as np
import pytest

from orchestration.local_pipeline import run_local_pipeline
from orchestration.settings import load_settings
from tools.make_data import load_bundled, write_files
from tests.conftest import invoke, run_module


def test_whole_pipeline_on_a_few_files(tmp_path):
    table = load_bundled()
    write_files(table, tmp_path / "store", count=12)
    result = run_local_pipeline(load_settings(), tmp_path / "store", tmp_path / "out")

    assert result.files == 12
    assert result.extraction.status == "Completed"
    assert result.extraction.items.succeeded == 12 and result.extraction.items.failed == 0
    rows = [json.loads(line) for line in
            (tmp_path / "out" / "extraction" / "extraction_output.txt").read_text().splitlines()]
    assert [r["id"] for r in rows] == list(range(20640))  # each record exactly once, in order
    assert np.array_equal(np.array([list(r.values())[1:] for r in rows]), table)
    metrics = json.loads((tmp_path / "out" / "training" / "metrics.json").read_text())
    assert metrics["r2"] == pytest.approx(0.5758, abs=5e-5)  # shared/data/README.md reference split
    assert metrics["rmse"] == pytest.approx(0.7456, abs=5e-5)
    assert (metrics["n_train"], metrics["n_test"]) == (16512, 4128)
    assert set(result.seconds) == {"preparation", "extraction", "training"}


def test_a_malformed_file_is_a_counted_failure_not_a_crash(tmp_path):
    write_files(load_bundled()[:30], tmp_path / "store", count=6)
    broken = tmp_path / "store" / "housing-2.txt"
    broken.write_text(broken.read_text().replace("MedInc: ", "MedInc ", 1))
    result = run_local_pipeline(load_settings(), tmp_path / "store", tmp_path / "out")

    assert result.extraction.status == "Completed"
    assert (result.extraction.items.succeeded, result.extraction.items.failed) == (5, 1)
    (failure,) = result.extraction.failures
    assert failure["reason"] == "run() returned 4 of 5 items"  # MINI_BATCH_SIZE 5: files 0-4
    assert [p.rsplit("/", 1)[1] for p in failure["items"]] == [f"housing-{i}.txt" for i in range(5)]
    ids = [json.loads(line)["id"] for line in
           (tmp_path / "out" / "extraction" / "extraction_output.txt").read_text().splitlines()]
    assert ids == [i for i in range(30) if i not in range(10, 15)]
    logs = "".join(p.read_text() for p in (tmp_path / "out" / "extraction" / "logs" / "user" /
                                           "entry_script_log").rglob("*.txt"))
    assert "housing-2.txt" in logs and "expected 'key: value'" in logs


def test_local_run_command_prints_the_summary(tmp_path):
    write_files(load_bundled()[:400], tmp_path / "store", count=4)  # the full data: the test above
    result = run_module(
        "orchestration.local_pipeline", "--data-dir", "store", "--output", "out", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "files prepared: 4" in result.stdout
    assert "items: 4 succeeded, 0 failed, 0 not processed of 4" in result.stdout
    assert re.search(r"training: test R² -?\d\.\d{4}, RMSE \d\.\d{4}", result.stdout)


def test_a_stopped_local_run_finishes_with_resume_on_the_files_it_prepared(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import clean_env

    # 10 records a file: extraction takes as long as with a file per record, preparation a tenth
    write_files(load_bundled(), tmp_path / "store", count=2064)
    command = [sys.executable, "-m", "orchestration", "orchestration.local_pipeline", "--data-dir", "store",
               "--output", "out"]
    process = subprocess.Popen(command, cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (tmp_path / "out" / "extraction" / ".prs-state" / "plan.json").exists():  # planned
        assert time.monotonic() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    assert "RESUME=1" in out.strip().splitlines()[-1], out
    prepared = tmp_path / "out" / "preparation" / "housing-0000.txt"
    before = prepared.stat().st_ctime_ns
    resumed = invoke("orchestration.local_pipeline", "--data-dir", "store", "--output", "out", "--resume",
                     cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming the run in" in resumed.stderr and prepared.stat().st_ctime_ns == before
    rows = (tmp_path / "out" / "extraction" / "extraction_output.txt").read_text().splitlines()
    assert [json.loads(row)["id"] for row in rows] == list(range(20640))


def test_the_preparation_replaces_only_what_a_local_preparation_wrote(tmp_path):
    write_files(load_bundled()[:20], tmp_path / "store", count=2)
    notes = tmp_path / "out" / "preparation" / "notes.md"
    notes.parent.mkdir(parents=True)
    notes.write_text("mine")
    refused = invoke("orchestration.local_pipeline", "--data-dir", "store", "--output", "out",
                     cwd=tmp_path)
    assert refused.returncode == 2 and "holds files that no local preparation wrote" in refused.stderr
    assert notes.read_text() == "mine"
    inside = invoke("orchestration.local_pipeline", "--data-dir", "out/preparation", "--output", "out",
                    cwd=tmp_path)
    assert inside.returncode == 2 and "overlap" in inside.stderr and notes.read_text() == "mine"
    notes.unlink()
    for _ in range(2):  # the second replaces the first's copy
        done = invoke("orchestration.local_pipeline", "--data-dir", "store", "--output", "out",
                      "--prepare-only", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "exit 0: prepared 2 files in out/preparation"
