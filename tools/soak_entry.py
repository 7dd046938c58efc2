"""Entry script of `make soak`: each input file names what run() does with it; the row is the file's name.

ok: returns its row; short: returns nothing for it; flaky: fails its first attempt (marker in
SOAK_MARKERS); hang: sleeps far past the timeout the soak sets.
"""
import os
import time
from pathlib import Path


def run(mini_batch):
    rows = []
    for path in mini_batch:
        kind = Path(path).read_text().strip()
        name = Path(path).name
        if kind == "flaky":
            marker = Path(os.environ["SOAK_MARKERS"], name)
            if not marker.exists():
                marker.write_text("failed once\n")
                raise RuntimeError(f"first attempt at {name} fails")
        if kind == "hang":
            time.sleep(600)
        if kind != "short":
            rows.append(name)
    time.sleep(0.002)  # long enough for faults to land mid-run
    return rows
