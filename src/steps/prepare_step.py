"""Preparation step (PythonScriptStep in Azure ML SDK v1, a command node in v2; a plain command locally).

Copies the raw files from the datastore folder into the step's output folder. Locally the datastore is a
folder; in Azure ML it is the datastore folder that Azure ML mounts as the step's input (with the
datastore's registered credential), so this step never handles a storage credential and needs no Azure SDK.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

try:
    from steps.prepare import copy_files
    from steps import step_logging
except ImportError:  # Azure ML runs this file from a snapshot of src/ that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from steps.prepare import copy_files
    from steps import step_logging

log = logging.getLogger("preparation")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source-dir", type=Path, required=True,
                        help="the datastore folder (mounted by Azure ML, or a local folder)")
    parser.add_argument("--output", type=Path, required=True, help="the step's output folder")
    args, _ = parser.parse_known_args(argv)
    step_logging.configure()
    try:
        count = copy_files(args.source_dir, args.output)
    except (FileNotFoundError, FileExistsError) as exc:
        log.error("preparation failed: %s", exc)
        return 2
    print(f"prepared {count} files in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
