"""Test entry script: each input file says what to do with it; the result row is the file's name."""
import argparse
import ctypes
import os
import sys
import time
from pathlib import Path

from azureml_user.parallel_run import EntryScript

_args = None
SECRET_WORDS = ("KEY", "SECRET", "CONNECTION")


def init():
    global _args
    parser = argparse.ArgumentParser()
    parser.add_argument("--marker_dir")
    _args, _ = parser.parse_known_args()
    if os.environ.get("FAIL_INIT"):
        raise RuntimeError("init exploded on purpose")
    entry = EntryScript()
    Path(_args.marker_dir, f"init-{os.getpid()}").write_text(
        "\n".join([entry.agent_name, entry.log_dir, entry.output_dir, entry.working_dir, os.getcwd(),
                   " ".join(sys.argv), os.environ.get("AZUREML_BI_OUTPUT_PATH", ""),
                   os.environ.get("GREETING", ""),
                   ",".join(sorted(k for k in os.environ if any(w in k for w in SECRET_WORDS)))])
    )
    entry.logger.info("init done in %s", entry.agent_name)


def run(mini_batch):
    rows = []
    for path in mini_batch:
        kind = Path(path).read_text().strip()
        name = Path(path).name
        if kind == "raise":
            raise ValueError(f"cannot handle {name}")
        if kind == "interrupt":
            raise KeyboardInterrupt(f"interrupted at {name}")
        if kind == "hang":
            Path(_args.marker_dir, f"hanging-{name}").write_text("asleep")
            time.sleep(600)
        if kind == "exit":
            os._exit(3)
        if kind == "segv":
            ctypes.string_at(0)
        if kind == "flaky":
            marker = Path(_args.marker_dir, f"flaky-{name}")
            if not marker.exists():
                marker.write_text("failed once")
                raise RuntimeError(f"first attempt at {name} fails")
        if kind == "short":
            continue
        if kind == "unpicklable":
            rows.append(lambda: None)
            continue
        if kind == "huge":
            rows.append("x" * (8 * 1024 * 1024))
            continue
        rows.append(name)
    return rows


def shutdown():
    Path(_args.marker_dir, f"shutdown-{os.getpid()}").write_text("bye")
