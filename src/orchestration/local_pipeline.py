"""`make local-run`: preparation -> extraction -> training on local folders, with a closing summary.

The same step code as in Azure ML: preparation copies the local datastore folder, extraction runs the
unchanged entry script through the local ParallelRunStep runner, training reads its append_row file.
No Azure account and no `.env` are needed; settings come from the environment / `.env` when present.
"""
from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import steps
from orchestration.commands import ArgumentParser, UsageError, last_line, run_command, setup_logging
from orchestration.prs.config import RunConfig
from orchestration.prs.container import container_problem
from orchestration.prs.outputs import Summary, format_summary, run_outcome
from orchestration.prs.scheduler import run_parallel
from orchestration.settings import Settings, load_settings
from steps.prepare import copy_files, iter_files

if TYPE_CHECKING:  # training imports scikit-learn and matplotlib (2 s): only a run that trains loads them
    from steps.train import Metrics

log = logging.getLogger(__name__)

ENTRY_SCRIPT = Path(steps.__file__).resolve().parent / "extract_entry.py"
PREPARED_MARKER = ".prepared-by-local-run"  # hidden: not an input of the extraction


@dataclass(frozen=True)
class PipelineResult:
    files: int
    extraction: Summary
    metrics: Metrics | None
    seconds: dict[str, float]


def run_local_pipeline(settings: Settings, data_dir: Path, out_root: Path,
                       resume: bool = False, container: str | None = None) -> PipelineResult:
    """Runs the three steps under `out_root` (preparation/, extraction/, training/). With `resume`, the
    extraction goes on from where the last one stopped, on the files that run prepared (a fresh copy
    would count as changed input). With `container`, the extraction's workers run in that image."""
    seconds: dict[str, float] = {}
    prepared = out_root / "preparation"
    started = time.perf_counter()
    if resume and (prepared / PREPARED_MARKER).exists():
        files = sum(1 for _ in iter_files(prepared))
        log.info("resuming: the %d files prepared by the last run are kept in %s", files, prepared)
    else:
        files = prepare(data_dir, prepared)
    seconds["preparation"] = time.perf_counter() - started

    started = time.perf_counter()
    config = RunConfig.from_settings(
        settings, entry_script=ENTRY_SCRIPT, inputs=(prepared,), output=out_root / "extraction",
        resume=resume, container=container,
    )
    extraction = run_parallel(config)
    seconds["extraction"] = time.perf_counter() - started
    if extraction.status != "Completed" or settings.output_action != "append_row":
        return PipelineResult(files, extraction, None, seconds)

    from steps.train import run_training

    started = time.perf_counter()
    metrics = run_training(config.output_file, out_root / "training")
    seconds["training"] = time.perf_counter() - started
    return PipelineResult(files, extraction, metrics, seconds)


def prepare(data_dir: Path, prepared: Path) -> int:
    """The preparation step into `prepared`, replacing what an earlier local run prepared there and
    nothing else: a folder that holds other files, a link, or one that overlaps the data is refused."""
    source, target = data_dir.resolve(), prepared.resolve()
    if source == target or source in target.parents or target in source.parents:
        raise UsageError(f"DATA_DIR {data_dir} and the preparation output {prepared} overlap: keep the "
                         "data outside LOCAL_OUTPUT_DIR")
    if prepared.is_symlink() or (prepared.exists() and not prepared.is_dir()):
        raise UsageError(f"{prepared} is a link or a file; expected a folder the preparation step writes")
    if prepared.is_dir() and any(prepared.iterdir()):
        if not (prepared / PREPARED_MARKER).exists():
            raise UsageError(f"{prepared} holds files that no local preparation wrote; move them away or "
                             "choose another LOCAL_OUTPUT_DIR")
        shutil.rmtree(prepared)
    try:
        files = copy_files(data_dir, prepared)
    except FileNotFoundError as exc:
        raise UsageError(f"{exc}; run `make data` first") from None
    (prepared / PREPARED_MARKER).write_text("written by the local preparation; the next one replaces it\n")
    return files


def format_result(result: PipelineResult) -> str:
    lines = [f"files prepared: {result.files}",
             "extraction: " + format_summary(result.extraction, with_last_line=False)]
    if result.metrics:
        m = result.metrics
        lines.append(
            f"training: test R² {m.r2:.4f}, RMSE {m.rmse:.4f}, MAE {m.mae:.4f} "
            f"(train {m.n_train}, test {m.n_test} records)"
        )
    lines.append("time: " + ", ".join(f"{step} {s:.2f} s" for step, s in result.seconds.items()))
    if result.metrics:
        lines.append("exit 0: the pipeline ran: preparation, extraction and training")
    else:
        lines.append(last_line(result.extraction.exit_code, run_outcome(result.extraction)))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m orchestration.local_pipeline",
                            description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="the local datastore folder")
    parser.add_argument("--output", type=Path, required=True, help="LOCAL_OUTPUT_DIR")
    parser.add_argument("--resume", action="store_true",
                        help="finish the last run's extraction (RESUME=1): its prepared files, its rows")
    parser.add_argument("--prepare-only", action="store_true", help="the preparation step alone")
    parser.add_argument("--container", metavar="IMAGE",
                        help="run the extraction's workers in this Docker image")
    args = parser.parse_args(argv)
    settings = load_settings()
    setup_logging(settings.logging_level)
    if args.prepare_only:
        files = prepare(args.data_dir, args.output / "preparation")
        print(f"exit 0: prepared {files} files in {args.output / 'preparation'}")
        return 0
    problem = container_problem(args.container, tabular=False) if args.container else ""
    if problem:  # before anything is prepared
        raise UsageError(problem)
    result = run_local_pipeline(settings, args.data_dir, args.output, resume=args.resume,
                                container=args.container)
    print(format_result(result))
    return result.extraction.exit_code if result.metrics is None else 0


if __name__ == "__main__":
    run_command(main)
