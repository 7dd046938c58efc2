"""Mini-batch formation, the on-disk state and the backlog, without worker processes."""
import os
import random
from collections import deque

from orchestration.prs.backlog import Backlog
from orchestration.prs.config import RunConfig
from orchestration.prs.planning import _csv_slices, write_plan
from orchestration.prs.state import (
    FAILED, RECORD_SIZE, SUCCEEDED, BatchRecord, SlotTable, StatePaths, decode_task, iter_records,
    read_task_lines, write_records,
)


def test_plan_writes_one_task_and_one_pending_record_per_mini_batch(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for n in range(7):
        (folder / f"f{n}.txt").write_text("x")
    config = RunConfig(entry_script=tmp_path / "e.py", inputs=(folder,), output=tmp_path / "out",
                       mini_batch_size=3)
    state = StatePaths.of(config.output)
    published = []
    plan = write_plan(config, state, published.append, every=2)
    assert (plan.batches, plan.items) == (3, 7)
    assert published == [2, 3]
    with open(state.tasks, "rb") as tasks, open(state.tasks_index, "rb") as index:
        lines = read_task_lines(tasks.fileno(), index.fileno(), 1, 2)
    assert [decode_task(line, False) for line in lines] == [
        [str(folder / f"f{n}.txt") for n in (3, 4, 5)], [str(folder / "f6.txt")]
    ]
    assert [(r.status, r.items) for _, r in iter_records(state.batches)] == [(0, 3), (0, 3), (0, 1)]


def test_records_round_trip_and_consecutive_ones_are_written_together(tmp_path):
    path = tmp_path / "batches.bin"
    path.write_bytes(bytes(RECORD_SIZE * 5))
    record = BatchRecord(SUCCEEDED, 2, 5, 4, 7, 123456789012, 99, 3)
    assert BatchRecord.unpack(record.pack()) == record
    fd = os.open(path, os.O_WRONLY)
    write_records(fd, [(1, BatchRecord(SUCCEEDED, 1, 5, 5, 0, 0, 10, 1)),
                       (2, BatchRecord(SUCCEEDED, 1, 5, 4, 0, 10, 8, 1)),
                       (4, BatchRecord(FAILED, 3, 5))])
    os.close(fd)
    statuses = [(b, r.status, r.succeeded) for b, r in iter_records(path)]
    assert statuses == [(0, 0, 0), (1, 1, 5), (2, 1, 4), (3, 0, 0), (4, 2, 0)]


def test_slot_table_is_shared_through_the_file(tmp_path):
    writer = SlotTable(tmp_path / "slots", 2, create=True)
    reader = SlotTable(tmp_path / "slots", 2)
    writer.start(1, 42, 1234.5)
    assert reader.read(1) == (42, 1234.5) and reader.read(0)[0] == -1
    writer.clear(1)
    assert reader.read(1)[0] == -1


def test_backlog_hands_out_only_what_is_planned():
    backlog = Backlog.while_planning()
    assert backlog.take(10) is None  # nothing planned yet
    backlog.published = 5
    assert backlog.take(3) == (0, 3) and backlog.take(3) == (3, 2) and backlog.take(3) is None
    backlog.finish_planning(7)
    assert backlog.left == 2 and backlog.take(10) == (5, 2) and backlog.empty


def test_backlog_of_a_resumed_run_skips_finished_mini_batches(tmp_path):
    path = tmp_path / "batches.bin"
    statuses = [SUCCEEDED, 0, 0, SUCCEEDED, 0, FAILED]
    path.write_bytes(b"".join(BatchRecord(status=s).pack() for s in statuses))
    backlog = Backlog.pending_in(path)
    assert backlog.ranges == deque([range(1, 3), range(4, 5)]) and backlog.left == 3
    assert backlog.take(5) == (1, 2) and backlog.take(5) == (4, 1) and backlog.empty


def test_a_slot_being_written_is_never_read_as_a_running_mini_batch(tmp_path):
    import struct

    writer = SlotTable(tmp_path / "slots", 1, create=True)
    reader = SlotTable(tmp_path / "slots", 1)
    writer.start(0, 7, 100.0)
    writer.clear(0)
    # Tear the slot as a concurrent write would: odd sequence, new mini-batch, the old start time.
    with open(tmp_path / "slots", "r+b") as handle:
        handle.write(struct.pack("<Qqd", 5, 8, 0.0))
    assert reader.read(0) == (-1, 0.0)
    writer.start(0, 8, 200.0)  # the write completes
    assert reader.read(0) == (8, 200.0)


def test_csv_slices_end_after_a_newline_skip_blank_ones_and_count_a_last_line_without_one(tmp_path):
    table = tmp_path / "t.csv"
    table.write_bytes(b"h1,h2\n" + b"1,2\n333,4444\n" + b"   \n\n" + b"5,6")
    # 5 bytes a slice: the first is cut inside "333,4444" and completed; the second is blank space.
    assert list(_csv_slices(str(table), 5, header=True)) == [(6, 19, 2), (24, 27, 1)]
    assert list(_csv_slices(str(table), 5, header=True, block=2)) == [(6, 19, 2), (24, 27, 1)]
    assert list(_csv_slices(str(table), 100, header=False, block=4)) == [(0, 27, 6)]
    assert list(_csv_slices(str(table), 2**50, header=False)) == [(0, 27, 6)]  # no petabyte buffer


def test_csv_slices_never_cut_inside_a_quoted_field_and_count_rows_not_lines(tmp_path):
    import io

    import pandas as pd

    rng = random.Random(7)
    texts = ["plain", "two\nlines", 'say ""hi""', "a,b", "\n", '""', "end\n\nhere", ""]
    values = [rng.choice(texts).replace('""', '"') for _ in range(300)]
    frame = pd.DataFrame({"id": range(300), "text": values})
    table = tmp_path / "t.csv"
    frame.to_csv(table, index=False)
    data = table.read_bytes()
    header = data[:data.index(b"\n") + 1]
    for size, block in [(1, 1 << 24), (7, 3), (50, 1 << 24), (333, 16), (1 << 30, 64)]:
        slices = list(_csv_slices(str(table), size, header=True, quoted=True, block=block))
        assert [s[0] for s in slices[1:]] == [s[1] for s in slices[:-1]] and slices[-1][1] == len(data)
        parts = [pd.read_csv(io.BytesIO(header + data[start:stop]), keep_default_na=False)
                 for start, stop, _ in slices]
        assert [len(part) for part in parts] == [rows for _, _, rows in slices]
        pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), frame.fillna(""))
