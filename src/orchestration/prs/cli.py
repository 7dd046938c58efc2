"""Command line of the local ParallelRunStep runner; flags are named after ParallelRunConfig.

Every flag defaults to its setting (environment, then `.env`, then the built-in default), and is
validated the same way; arguments after `--` are passed to the entry script, as ParallelRunStep's
`arguments` are. An unknown flag before `--` is an error. `python -m orchestration.prs --job FILE.yml`
runs an Azure ML v2 job instead, and `--deployment FILE.yml` a batch endpoint deployment: the entry point
sends them to orchestration.jobs.cli, which shares these flags (so `--help` shows all).
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from orchestration.commands import ArgumentParser, UsageError, setup_logging
from orchestration.parallel_fields import FIELDS
from orchestration.prs.config import RunConfig
from orchestration.prs.outputs import format_summary
from orchestration.prs.scheduler import run_parallel
from orchestration.run_settings import read_run_settings

# flag -> its help; each flag overrides the setting of the same name (upper case) when given.
SETTING_FLAGS = {f.name: f"{f.setting}: {f.help}" for f in FIELDS}
SETTING_FLAGS["local_max_workers"] = "LOCAL_MAX_WORKERS: most local worker processes; 0 = the CPU count"


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m orchestration.prs",
        description="Run a ParallelRunStep entry script locally over mini-batches, or an Azure ML v2 "
                    "pipeline job (--job).",
        epilog="Arguments after -- go to the entry script (read them with parse_known_args).",
    )
    parser.add_argument("--entry_script", type=Path, help="the entry script (init/run)")
    parser.add_argument("--input", type=Path, action="append", default=[], dest="inputs",
                        help="an input folder or file; repeat for several (never mixed in a mini-batch)")
    parser.add_argument("--output", type=Path, required=True, help="the step's (or the job's) output folder")
    parser.add_argument("--input_type", choices=("file", "tabular"), default="file",
                        help="file: lists of paths; tabular: DataFrames from .csv/.jsonl/.parquet")
    parser.add_argument("--environment_variables", action="append", default=[], metavar="KEY=VALUE",
                        help="set in every worker; repeat for several")
    parser.add_argument("--container", metavar="IMAGE", help="run the workers (and a job's nodes) in this "
                        "Docker image, as you, with the paths they use mounted; this process stays here")
    parser.add_argument("--partition_format", default=None,
                        help="PARTITION_FORMAT: the input folder's partition format, as Dataset.File."
                             "from_files takes it ({store}/{file_name}.csv), for --partition_keys")
    parser.add_argument("--resume", action="store_true",
                        help="skip mini-batches that succeeded before in --output (same inputs, settings)")
    for flag, text in SETTING_FLAGS.items():
        parser.add_argument(f"--{flag}", default=None, help=text)
    job = parser.add_argument_group("Azure ML v2 jobs and batch deployments")
    job.add_argument("--job", type=Path, help="a pipeline job YAML (type: pipeline) or a parallel component")
    job.add_argument("--deployment", type=Path, help="a batch endpoint deployment YAML: its scoring script "
                     "runs over --input, its output in --output")
    job.add_argument("--model", type=Path, help="--deployment's model, a local copy (for a registered "
                     "model: az ml model download)")
    job.add_argument("--set", action="append", default=[], metavar="inputs.NAME=VALUE", dest="overrides",
                     help="a job input's value (a path for path inputs); repeat for several")
    job.add_argument("--datastore", action="append", default=[], metavar="NAME=PATH",
                     help="the local folder of azureml://datastores/NAME (default OUTPUT/datastores/NAME)")
    job.add_argument("--python", type=Path, help="the interpreter for the workers and command nodes "
                     "(default: LOCAL_PYTHON, else this one)")
    return parser


def parse_pairs(pairs: list[str], flag: str, prefix: str = "") -> dict[str, str]:
    values = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key.removeprefix(prefix) or not key.startswith(prefix):
            raise UsageError(f"{flag}: expected {prefix}KEY=VALUE (got {pair!r})")
        values[key.removeprefix(prefix)] = value
    return values


def chosen_python(flag: Path | None, setting: str) -> Path | None:
    """--python, else LOCAL_PYTHON, else None (the toolkit's own); a bare name is looked up on PATH."""
    chosen = str(flag or setting or "")
    if not chosen:
        return None
    found = shutil.which(chosen) if os.sep not in chosen else chosen
    return Path(found or chosen).absolute()


def split_arguments(argv: list[str]) -> tuple[list[str], list[str]]:
    """(the runner's flags, the entry script's arguments after the first `--`)."""
    if "--" in argv:
        at = argv.index("--")
        return argv[:at], argv[at + 1:]
    return argv, []


def main(argv: list[str] | None = None) -> int:
    flags, arguments = split_arguments(list(sys.argv[1:] if argv is None else argv))
    args = build_parser().parse_args(flags)
    if args.job or args.deployment:  # `python -m orchestration.prs` sends them to orchestration.jobs.cli
        flag = "--job" if args.job else "--deployment"
        raise UsageError(f"{flag}: run it as python -m orchestration.prs {flag} FILE.yml")
    if args.model:
        raise UsageError("--model: only with --deployment")
    missing = [flag for flag, value in (("--entry_script", args.entry_script), ("--input", args.inputs))
               if not value]
    if missing:
        raise UsageError(f"{' and '.join(missing)} required (or --job FILE.yml)")
    overrides = {f: getattr(args, f) for f in (*SETTING_FLAGS, "partition_format")
                 if getattr(args, f) is not None}
    settings = read_run_settings(**overrides)
    setup_logging(settings.logging_level)
    config = RunConfig.from_settings(
        settings, entry_script=args.entry_script, inputs=tuple(args.inputs), output=args.output,
        input_type=args.input_type, arguments=tuple(arguments), resume=args.resume,
        environment_variables=parse_pairs(args.environment_variables, "--environment_variables"),
        python=chosen_python(args.python, "" if args.container else settings.local_python),
        container=args.container,
    )
    problems = config.validate()
    if problems:
        raise UsageError.listing(problems)
    summary = run_parallel(config, last=True)
    print(format_summary(summary))
    return summary.exit_code
