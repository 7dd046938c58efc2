"""Command line of the local ParallelRunStep runner; flags are named after ParallelRunConfig.

Every flag defaults to its setting (environment, then `.env`, then the built-in default), and is
validated the same way; arguments after `--` are passed to the entry script, as ParallelRunStep's
`arguments` are.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from orchestration.cli import UsageError, setup_logging
from orchestration.parallel_fields import FIELDS
from orchestration.prs.config import RunConfig
from orchestration.prs.report import format_summary
from orchestration.prs.scheduler import run_parallel
from orchestration.settings import load_settings

# flag -> its help; each flag overrides the setting of the same name (upper case) when given.
SETTING_FLAGS = {f.name: f"{f.setting}: {f.help}" for f in FIELDS}
SETTING_FLAGS["local_max_workers"] = "LOCAL_MAX_WORKERS: most local worker processes; 0 = the CPU count"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m orchestration.prs",
        description="Run a ParallelRunStep entry script locally over mini-batches.",
        epilog="Arguments after -- go to the entry script (read them with parse_known_args).",
    )
    parser.add_argument("--entry_script", type=Path, required=True, help="the entry script (init/run)")
    parser.add_argument("--input", type=Path, action="append", required=True, dest="inputs",
                        help="an input folder or file; repeat for several (never mixed in a mini-batch)")
    parser.add_argument("--output", type=Path, required=True, help="the step's output folder")
    parser.add_argument("--input_type", choices=("file", "tabular"), default="file",
                        help="file: lists of paths; tabular: DataFrames from .csv/.jsonl/.parquet")
    parser.add_argument("--environment_variables", action="append", default=[], metavar="KEY=VALUE",
                        help="set in every worker; repeat for several")
    parser.add_argument("--resume", action="store_true",
                        help="skip mini-batches that succeeded before in --output (same inputs, settings)")
    for flag, text in SETTING_FLAGS.items():
        parser.add_argument(f"--{flag}", default=None, help=text)
    return parser


def parse_environment(pairs: list[str]) -> dict[str, str]:
    environment = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise UsageError(f"--environment_variables: expected KEY=VALUE (got {pair!r})")
        environment[key] = value
    return environment


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, arguments = parser.parse_known_args(argv)
    if arguments and arguments[0] == "--":
        arguments = arguments[1:]
    overrides = {f: getattr(args, f) for f in SETTING_FLAGS if getattr(args, f) is not None}
    settings = load_settings(**overrides)
    setup_logging(settings.logging_level)
    config = RunConfig.from_settings(
        settings, entry_script=args.entry_script, inputs=tuple(args.inputs), output=args.output,
        input_type=args.input_type, arguments=tuple(arguments), resume=args.resume,
        environment_variables=parse_environment(args.environment_variables),
    )
    problems = config.validate()
    if problems:
        raise UsageError("\n".join(problems))
    summary = run_parallel(config)
    print(format_summary(summary))
    return summary.exit_code
