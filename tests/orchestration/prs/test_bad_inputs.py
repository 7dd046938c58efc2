"""Bad input files through the project's real extraction entry script: counted failures, no crash."""
import json

from orchestration.local_pipeline import ENTRY_SCRIPT
from orchestration.prs.config import RunConfig
from orchestration.prs.scheduler import run_parallel
from tests.conftest import record_text


def test_bad_files_are_failed_items_and_good_records_all_arrive(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a_good.txt").write_text(record_text(1) + "\n" + record_text(2))
    (folder / "b_empty.txt").write_text("")
    (folder / "c_binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    (folder / "d_no_colon.txt").write_text(record_text(3).replace("MedInc: ", "MedInc "))
    (folder / "e_not_number.txt").write_text(record_text(4, MedInc="lots"))
    (folder / "f_duplicate.txt").write_text(record_text(5) + "MedInc: 2.0\n")
    big = "\n".join(record_text(i) for i in range(100, 100 + 100_000))  # about 23 MB in one file
    (folder / "g_big.txt").write_text(big)
    summary = run_parallel(RunConfig(
        entry_script=ENTRY_SCRIPT, inputs=(folder,), output=tmp_path / "out", mini_batch_size=3,
        error_threshold=-1, max_workers=2, process_count_per_node=2,
    ))
    assert summary.status == "Completed"
    assert (summary.items.succeeded, summary.items.failed) == (2, 5)
    ids = [json.loads(line)["id"] for line in (tmp_path / "out" / "parallel_run_step.txt").open()]
    assert ids == [1, 2] + list(range(100, 100_100))
    messages = {}
    for log in (tmp_path / "out" / "logs" / "user" / "entry_script_log").rglob("*.txt"):
        for line in log.read_text().splitlines():
            if "failed item" in line:
                path, _, reason = line.split("failed item ", 1)[1].partition(": ")
                messages[path.rsplit("/", 1)[1]] = reason
    assert messages == {
        "b_empty.txt": "no records in file",
        "c_binary.txt": "not UTF-8 text (byte 0)",
        "d_no_colon.txt": "line 2: expected 'key: value', got 'MedInc 8.3252'",
        "e_not_number.txt": "line 2: MedInc is 'lots', expected a number",
        "f_duplicate.txt": "line 11: repeated key 'MedInc'",
    }
