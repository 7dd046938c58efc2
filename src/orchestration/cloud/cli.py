"""The commands of `python -m orchestration.cloud provision|upload|publish|run|logs|registry`.

With --dry-run (make ... DRY_RUN=1), provision, upload, publish and run make no network call and need no
workspace: they print (or write to --plan-file) what would be created, uploaded, published or submitted.
logs and registry only read what exists in Azure, so they refuse --dry-run rather than reach it.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from orchestration.commands import ArgumentParser, UsageError, last_line, setup_logging
from orchestration.errors import EXIT_FAILED, EXIT_OK
from orchestration.cloud.blob_store import BlobStoreError, container_for, upload_folder
from orchestration.cloud.pipeline_v1 import (
    ROOT, build_environment, build_steps, check_for_azure, check_storage, pipeline_plan,
)
from orchestration.secrets import mask
from orchestration.settings import AZURE_STORAGE, AZURE_WORKSPACE, Settings, load_settings
from steps.prepare import iter_files

log = logging.getLogger("orchestration.cloud")

HIDDEN = "<hidden>"


def provisioning_plan(settings: Settings) -> dict[str, Any]:
    """What `provision` creates where missing; the account key is named, never shown."""
    check_for_azure(settings)
    return {
        "workspace": {"subscription_id": settings.subscription_id, "resource_group": settings.resource_group,
                      "name": settings.workspace_name},
        "compute": {"name": settings.aml_compute_cluster_name, "type": "AmlCompute",
                    "vm_size": settings.aml_compute_vm_size, "min_nodes": settings.aml_compute_min_nodes,
                    "max_nodes": settings.aml_compute_max_nodes,
                    "idle_seconds_before_scaledown": settings.aml_compute_idle_time},
        "datastore": {"name": settings.aml_blob_datastore_name, "type": "AzureBlobDatastore",
                      "account_name": settings.aml_storage_account_name,
                      "container_name": settings.aml_blob_container_name,
                      "account_key": HIDDEN if settings.aml_storage_account_key.get_secret_value() else "",
                      "create_if_not_exists": True},
    }


def emit(text: str, plan_file: Path | None, what: str) -> None:
    """A dry run's plan, to the plan file or to stdout (then the closing line goes to stderr)."""
    if plan_file:
        try:
            plan_file.write_text(text)
        except OSError as exc:
            raise UsageError(f"PLAN_FILE: cannot write {plan_file} ({exc.strerror})") from None
        print(last_line(0, f"dry run: wrote {what} to {plan_file}; nothing was sent to Azure"))
    else:
        sys.stdout.write(text)
        print(last_line(0, f"dry run: {what} above; nothing was sent to Azure"), file=sys.stderr)


def provision(settings: Settings, args: argparse.Namespace) -> int:
    plan = provisioning_plan(settings)
    if args.dry_run:
        missing = [name for name in AZURE_WORKSPACE + AZURE_STORAGE if not settings.is_set(name)]
        if missing:  # before the plan: the command's last line is its closing line
            log.warning("a real provision also needs %s (see .env.example)", ", ".join(missing))
        emit(json.dumps({"dry_run": True, "would_create_if_missing": plan}, indent=2) + "\n", args.plan_file,
             "what provision would create")
        return 0
    from orchestration.cloud import workspace_v1

    ws = workspace_v1.connect(settings)
    _, compute_diff = workspace_v1.ensure_compute(ws, plan["compute"])
    _, store_diff = workspace_v1.ensure_datastore(ws, settings)
    for what, diff in (("compute", compute_diff), ("datastore", store_diff)):
        for key, (actual, wanted) in diff.items():
            log.warning("existing %s differs from the settings: %s is %s, settings say %s",
                        what, key, actual, wanted)
    print(last_line(0, f"compute {plan['compute']['name']} and datastore {plan['datastore']['name']} "
                    "are ready"))
    return 0


def upload_plan(settings: Settings, source: Path) -> dict[str, Any]:
    """What `upload` would send: the local files only (which blobs are unchanged needs the service)."""
    if not source.is_dir():
        raise UsageError(f"DATA_DIR: expected a folder of files to upload (got {source}); run `make data` "
                         "first")
    files = list(iter_files(source))
    return {"from": str(source), "to": f"{settings.aml_blob_container_name}/{settings.input_dir}/",
            "files": len(files), "bytes": sum((source / f).stat().st_size for f in files),
            "unchanged_blobs": "skipped by a real upload; not checked here (a dry run makes no network call)"}


def upload(settings: Settings, args: argparse.Namespace) -> int:
    check_storage(settings)
    if args.dry_run:
        plan = {"dry_run": True, "would_upload": upload_plan(settings, args.data_dir)}
        emit(json.dumps(plan, indent=2) + "\n", args.plan_file, "what upload would send")
        return 0
    try:
        uploaded = upload_folder(container_for(settings), args.data_dir, settings.input_dir)
    except BlobStoreError as exc:
        raise UsageError(str(exc)) from None
    print(last_line(0, f"uploaded {uploaded.transferred} files ({uploaded.bytes} bytes), {uploaded.skipped} "
                       f"already up to date, to {settings.aml_blob_container_name}/{settings.input_dir}/"))
    return 0


def publish_v2(settings: Settings, args: argparse.Namespace) -> int:
    from orchestration.cloud import workspace_v2
    from orchestration.cloud.pipeline_v2 import build_pipeline_component

    if args.dry_run:
        component = build_pipeline_component(
            settings, workspace_v2.image_environment(args.image) if args.image else None)
        emit(v2_yaml(component, args.plan_file), args.plan_file,
             "the pipeline component publish would register")
        return 0
    client = workspace_v2.connect(settings)
    if args.image:
        environment = workspace_v2.image_environment(args.image)
    else:
        environment = workspace_v2.build_environment(client, settings)
    component = workspace_v2.publish(client, build_pipeline_component(settings, environment))
    print(last_line(0, f"registered pipeline component {component.name}:{component.version}; "
                       "make run SDK=v2 runs it"))
    return 0


def v2_yaml(entity: Any, plan_file: Path | None) -> str:
    """A v2 component or job as the YAML the SDK would send (it dumps to a file only), its `code:` folders
    relative to where the YAML is written (the plan file's folder, else the working folder), as a YAML's
    paths are: the file loads from a clone anywhere, not only from this one."""
    import yaml

    with tempfile.TemporaryDirectory() as scratch:
        entity.dump(str(Path(scratch) / "entity.yml"))
        document = yaml.safe_load((Path(scratch) / "entity.yml").read_text())
    base = (plan_file.parent if plan_file else Path.cwd()).resolve()

    def relative(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: os.path.relpath(value, base) if key == "code" and isinstance(value, str)
                    and os.path.isabs(value) else relative(value) for key, value in node.items()}
        return [relative(item) for item in node] if isinstance(node, list) else node

    return yaml.safe_dump(relative(document), sort_keys=False, allow_unicode=True)


def finish_run(what: str, status: str, succeeded: bool, failed_steps: Callable[[], Iterable[str]],
               logs_at: Path, done: str) -> int:
    """A run's last line and exit code: its status; on failure its failed steps and where its logs are."""
    if not succeeded:
        failed = ", ".join(failed_steps()) or "none reported"
        print(last_line(EXIT_FAILED, f"{what} {status} (failed steps: {failed}); read the logs in {logs_at}"))
        return EXIT_FAILED
    print(last_line(EXIT_OK, f"{what} {status}; {done}"))
    return EXIT_OK


def finish_run_v2(result: Any, target: Path) -> int:
    return finish_run(f"job {result.name}", result.status, result.status == "Completed",
                      lambda: result.failed_steps, target, f"results in {target}")


def run_v2(settings: Settings, args: argparse.Namespace) -> int:
    from orchestration.cloud import workspace_v2
    from orchestration.cloud.pipeline_v2 import build_run_job, component_reference

    if args.dry_run:
        job = build_run_job(settings, component_reference(settings))
        emit(v2_yaml(job, args.plan_file), args.plan_file, "the pipeline job that run would submit")
        return 0
    client = workspace_v2.connect(settings)
    version = workspace_v2.published_version(client, settings)
    job = build_run_job(settings, component_reference(settings, version))
    name = workspace_v2.submit_and_wait(client, job)
    target = ROOT / "outputs" / "azure" / name
    return finish_run_v2(workspace_v2.download(client, name, target), target)


def publish(settings: Settings, args: argparse.Namespace) -> int:
    if args.sdk == "v2":
        return publish_v2(settings, args)
    plan = pipeline_plan(settings, args.image)
    if args.dry_run:
        build_steps(plan, build_environment(plan))  # the real SDK objects, offline: they must construct
        emit(json.dumps({"dry_run": True, "sdk": "v1", **plan}, indent=2) + "\n", args.plan_file,
             "the pipeline plan")
        return 0
    from orchestration.cloud import workspace_v1

    ws = workspace_v1.connect(settings)
    compute = workspace_v1.compute_target(ws, plan["compute_target"])
    store = workspace_v1.datastore(ws, plan["datastore"]["name"])
    steps = build_steps(plan, build_environment(plan, ws), compute, store)
    published, endpoint = workspace_v1.publish(ws, plan, steps)
    print(last_line(0, f"published pipeline {published.id} as the default of endpoint {endpoint.name}"))
    return 0


def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.image:
        raise UsageError("IMAGE: run runs what `make publish` published, in the image it was published "
                         "with; publish with IMAGE=..., then run")
    if args.sdk == "v2":
        return run_v2(settings, args)
    from orchestration.cloud import workspace_v1

    plan = pipeline_plan(settings)
    if args.dry_run:
        submission = {"endpoint": plan["pipeline"]["endpoint"], "experiment": plan["pipeline"]["experiment"],
                      "pipeline": "the endpoint's default (published by make publish)"}
        emit(json.dumps({"dry_run": True, "sdk": "v1", "would_submit": submission}, indent=2) + "\n",
             args.plan_file, "what run would submit")
        return 0
    ws = workspace_v1.connect(settings)
    pipeline_run = workspace_v1.submit(ws, plan)
    log.info("submitted run %s: %s", pipeline_run.id, pipeline_run.get_portal_url())
    pipeline_run.wait_for_completion(show_output=True, raise_on_error=False)
    status = pipeline_run.get_status()
    target = ROOT / "outputs" / "azure" / pipeline_run.id
    steps = workspace_v1.step_runs(pipeline_run)
    workspace_v1.download_results(steps, target, settings.append_row_file_name)
    return finish_run(f"run {pipeline_run.id}", status, status == "Finished",
                      lambda: workspace_v1.failed_steps(steps), target / "logs", f"results in {target}")


def logs(settings: Settings, args: argparse.Namespace) -> int:
    if not args.run_id:
        raise UsageError("RUN_ID: expected the id of a pipeline run (make logs RUN_ID=...)")
    if args.sdk == "v2":
        from orchestration.cloud import workspace_v2

        target = ROOT / "outputs" / "azure" / args.run_id
        client = workspace_v2.connect(settings)
        return finish_run_v2(workspace_v2.download(client, args.run_id, target), target)
    from orchestration.cloud import workspace_v1

    plan = pipeline_plan(settings)
    ws = workspace_v1.connect(settings)
    pipeline_run = workspace_v1.find_run(ws, plan, args.run_id)
    target = ROOT / "outputs" / "azure" / args.run_id / "logs"
    steps = workspace_v1.step_runs(pipeline_run)
    workspace_v1.download_logs(steps, target)
    status = pipeline_run.get_status()
    return finish_run(f"run {args.run_id}", status, status == "Finished",
                      lambda: workspace_v1.failed_steps(steps), target, f"logs in {target}")


def registry(settings: Settings, args: argparse.Namespace) -> int:
    from orchestration.cloud import workspace_v1

    print(workspace_v1.registry_login_server(workspace_v1.connect(settings)))
    return 0


COMMANDS = {
    "provision": provision, "upload": upload, "publish": publish, "run": run, "logs": logs,
    "registry": registry,
}
# Those whose dry run shows a plan without a network call; the others only read Azure and refuse it.
DRY_RUNS = ("provision", "upload", "publish", "run")


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m orchestration.cloud",
                            description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=COMMANDS)
    parser.add_argument("--dry-run", action="store_true", help="show what would happen; no network call")
    parser.add_argument("--plan-file", type=Path, help="write the dry-run plan here (JSON; with SDK v2, "
                        "publish writes the pipeline component's YAML and run the job's YAML)")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data" / "datastore" / "raw",
                        help="upload: the folder to upload")
    parser.add_argument("--image", help="publish: run the steps in this pushed image, not one built from "
                        "docker/")
    parser.add_argument("--run-id", help="logs: the pipeline run's id (SDK v2: the job's name)")
    parser.add_argument("--sdk", choices=("v1", "v2"),
                        help="publish, run, logs: SDK v1 (ParallelRunStep, a published pipeline) or SDK v2 "
                        "(a parallel job in a registered pipeline component); default: AML_SDK")
    args = parser.parse_args(argv)
    if args.dry_run and args.command not in DRY_RUNS:
        raise UsageError(f"DRY_RUN: {args.command} only reads what already exists in Azure, so it has no dry "
                         f"run (one without a network call); run it without DRY_RUN=1")
    if args.plan_file and not args.dry_run:
        raise UsageError("PLAN_FILE: only written by a dry run; add DRY_RUN=1")
    if args.plan_file and (args.plan_file.is_dir() or not args.plan_file.parent.is_dir()):
        raise UsageError(f"PLAN_FILE: expected a file in an existing folder (got {args.plan_file})")
    settings = load_settings(**({"AML_SDK": args.sdk} if args.sdk else {}))
    args.sdk = settings.aml_sdk
    setup_logging(settings.logging_level)
    logging.getLogger("azure.ai.ml._utils._experimental").setLevel(logging.ERROR)  # "experimental" notices
    try:
        return COMMANDS[args.command](settings, args)
    except Exception as exc:
        if not is_service_error(exc):
            raise
        print(f"error: {args.command} failed: {service_message(exc)}", file=sys.stderr)
        print(last_line(EXIT_FAILED, f"{args.command} failed; check the Azure login (az login, or the "
                        "AZURE_* service principal variables) and the workspace settings; "
                        "LOGGING_LEVEL=DEBUG shows more"), file=sys.stderr)
        return EXIT_FAILED


# The packages whose exceptions mean "the service or the way to it said no": one line, not a traceback.
SERVICE_PACKAGES = ("azureml", "azure", "msrest", "msal", "requests", "urllib3")


def is_service_error(exc: BaseException) -> bool:
    return any(cls.__module__.split(".")[0] in SERVICE_PACKAGES for cls in type(exc).__mro__[:-2])


def service_message(exc: BaseException) -> str:
    """What the service said, in one line, secrets masked.

    azureml-core's exceptions carry it in `.message` ("ClassName:" heads their text); azure-ai-ml's
    validation errors are JSON documents with a list of errors.
    """
    text = str(getattr(exc, "message", "") or exc).strip()
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if isinstance(document, dict):
        messages = [e.get("message", "") for e in document.get("errors", []) if isinstance(e, dict)]
        text = "; ".join(m for m in messages if m) or text
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not re.fullmatch(r"\w+:|[{\[]", line)]  # headers, JSON
    message = lines[0].removeprefix("Message:").strip() if lines else type(exc).__name__
    return mask(message)[:500]
