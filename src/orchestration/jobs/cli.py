"""`python -m orchestration.prs --job FILE.yml`: an Azure ML v2 pipeline job (or a parallel component),
run locally node by node. The flags are the runner's (`orchestration.prs.cli`), so `--help` shows both;
the entry point sends a command line with `--job` here.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from orchestration.commands import UsageError, last_line, setup_logging
from orchestration.jobs.locations import DATASTORES_FOLDER, Datastores
from orchestration.jobs.runner import Interpreter, job_outcome, run_job
from orchestration.prs.cli import SETTING_FLAGS, build_parser, chosen_python, parse_pairs, split_arguments
from orchestration.prs.container import container_problem
from orchestration.run_settings import read_run_settings


def main(argv: list[str] | None = None) -> int:
    flags, arguments = split_arguments(list(sys.argv[1:] if argv is None else argv))
    return run_job_command(build_parser().parse_args(flags), arguments)


def run_job_command(args: argparse.Namespace, arguments: list[str]) -> int:
    given = [f"--{flag.removesuffix('s') if flag == 'inputs' else flag}"
             for flag in ("entry_script", "inputs", "resume", "environment_variables", *SETTING_FLAGS)
             if getattr(args, flag) not in (None, [], False) and flag != "local_max_workers"]
    if args.input_type != "file":
        given.append("--input_type")
    if given or arguments:
        what = ", ".join(given + (["arguments after --"] if arguments else []))
        raise UsageError(f"--job: {what} cannot be given with a job; its YAML sets them")
    workers = {"local_max_workers": args.local_max_workers} if args.local_max_workers else {}
    settings = read_run_settings(**workers)
    setup_logging(settings.logging_level)
    output = args.output.resolve()
    if output.exists() and not output.is_dir():
        raise UsageError(f"--output {args.output}: a file is in the way; expected a folder")
    folders = parse_pairs(args.datastore, "--datastore")
    datastores = Datastores(output / DATASTORES_FOLDER, {k: Path(v) for k, v in folders.items()})
    python = chosen_python(args.python, "" if args.container else settings.local_python)
    if python and args.container:
        raise UsageError(f"--python {python} and --container {args.container}: give one; the container runs "
                         "its own python")
    if args.container:
        problem = container_problem(args.container, tabular=False)
        if problem:
            raise UsageError(problem)
    interpreter = Interpreter(python or Path(sys.executable), foreign=python is not None,
                              container=args.container)
    result = run_job(args.job, output, datastores, parse_pairs(args.overrides, "--set", prefix="inputs."),
                     settings.local_worker_cap, interpreter)
    print(last_line(result.exit_code, job_outcome(result, output)))
    return result.exit_code
