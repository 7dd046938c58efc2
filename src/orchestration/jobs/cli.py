"""`python -m orchestration.prs --job FILE.yml`: an Azure ML v2 pipeline job (or a parallel
component), run locally node by node; `--deployment FILE.yml --input PATH`: a batch endpoint
deployment's scoring script over the input (jobs.deployment). The flags are the runner's
(`orchestration.prs.cli`), so `--help` shows all; the entry point sends a command line with `--job` or
`--deployment` here.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from orchestration.commands import UsageError, last_line, setup_logging
from orchestration.jobs.deployment import deployment_plan, load_deployment
from orchestration.jobs.locations import DATASTORES_FOLDER, Datastores
from orchestration.jobs.runner import Interpreter, job_outcome, run_job
from orchestration.prs.cli import SETTING_FLAGS, build_parser, chosen_python, parse_pairs, split_arguments
from orchestration.prs.container import container_problem
from orchestration.prs.outputs import format_summary
from orchestration.prs.scheduler import run_parallel
from orchestration.run_settings import RunSettings, read_run_settings

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    flags, arguments = split_arguments(list(sys.argv[1:] if argv is None else argv))
    args = build_parser().parse_args(flags)
    if args.job and args.deployment:
        raise UsageError("--job and --deployment: give one")
    if args.deployment:
        return run_deployment_command(args, arguments)
    return run_job_command(args, arguments)


# The runner's flags a job's or deployment's YAML sets instead: flag -> its argparse attribute.
YAML_SET_FLAGS = {"entry_script": "entry_script", "input": "inputs", "resume": "resume",
                  "environment_variables": "environment_variables", "partition_format": "partition_format",
                  **{flag: flag for flag in SETTING_FLAGS if flag != "local_max_workers"},
                  "model": "model", "set": "overrides", "datastore": "datastore"}


def refuse_run_flags(args: argparse.Namespace, arguments: list[str], flag: str, what: str,
                     allowed: tuple[str, ...]) -> None:
    """The runner's own flags that the YAML sets (all but `allowed`) are refused, named."""
    given = [f"--{name}" for name, attribute in YAML_SET_FLAGS.items()
             if name not in allowed and getattr(args, attribute) not in (None, [], False)]
    if args.input_type != "file":
        given.append("--input_type")
    if given or arguments:
        flags = ", ".join(given + (["arguments after --"] if arguments else []))
        raise UsageError(f"{flag}: {flags} cannot be given with {what}; its YAML sets them")


def run_settings_of(args: argparse.Namespace) -> RunSettings:
    """The run's settings (only LOCAL_MAX_WORKERS may come from a flag), with logging set up from them."""
    workers = {"local_max_workers": args.local_max_workers} if args.local_max_workers else {}
    settings = read_run_settings(**workers)
    setup_logging(settings.logging_level)
    return settings


def interpreter_of(args: argparse.Namespace, local_python: str) -> Interpreter:
    """--python (else LOCAL_PYTHON) or --container, checked."""
    python = chosen_python(args.python, "" if args.container else local_python)
    if python and args.container:
        raise UsageError(f"--python {python} and --container {args.container}: give one; the container runs "
                         "its own python")
    if args.container:
        problem = container_problem(args.container, tabular=False)
        if problem:
            raise UsageError(problem)
    return Interpreter(python or Path(sys.executable), foreign=python is not None, container=args.container)


def output_folder(args: argparse.Namespace) -> Path:
    output = args.output.resolve()
    if output.exists() and not output.is_dir():
        raise UsageError(f"--output {args.output}: a file is in the way; expected a folder")
    return output


def run_job_command(args: argparse.Namespace, arguments: list[str]) -> int:
    refuse_run_flags(args, arguments, "--job", "a job", ("set", "datastore"))
    settings = run_settings_of(args)
    output = output_folder(args)
    folders = parse_pairs(args.datastore, "--datastore")
    datastores = Datastores(output / DATASTORES_FOLDER, {k: Path(v) for k, v in folders.items()})
    interpreter = interpreter_of(args, settings.local_python)
    result = run_job(args.job, output, datastores, parse_pairs(args.overrides, "--set", prefix="inputs."),
                     settings.local_worker_cap, interpreter)
    print(last_line(result.exit_code, job_outcome(result, output)))
    return result.exit_code


def run_deployment_command(args: argparse.Namespace, arguments: list[str]) -> int:
    """--deployment FILE.yml --input PATH --output DIR [--model PATH]: the scoring script over the input."""
    refuse_run_flags(args, arguments, "--deployment", "a deployment", ("input", "model", "resume"))
    if not args.inputs:
        raise UsageError("--deployment: --input PATH required (the files the endpoint would be invoked with)")
    settings = run_settings_of(args)
    output = output_folder(args)
    interpreter = interpreter_of(args, settings.local_python)
    document = load_deployment(args.deployment)
    plan = deployment_plan(args.deployment, document, tuple(p.resolve() for p in args.inputs), output,
                           args.model, settings.local_worker_cap,
                           interpreter.executable if interpreter.foreign else None, interpreter.container,
                           resume=args.resume)
    for note in plan.notes:
        log.info("%s", note)
    if plan.model_dir:
        log.info("AZUREML_MODEL_DIR=%s (%s -> %s)", plan.model_dir, plan.model.name, plan.model)
    problems = plan.config.validate()
    if problems:
        raise UsageError.listing(problems)
    summary = run_parallel(plan.config, last=True)
    print(format_summary(summary))
    return summary.exit_code
