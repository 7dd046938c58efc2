"""Training step (PythonScriptStep in Azure ML; a plain command locally).

Reads the extraction's append_row file and writes model.joblib, metrics.json and
predicted_vs_actual.png to the output folder.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path

try:
    from steps.train import TrainingDataError, run_training
    from steps import step_logging
except ImportError:  # Azure ML runs this file from a snapshot of src/ that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from steps.train import TrainingDataError, run_training
    from steps import step_logging

log = logging.getLogger("training")


def rows_file(path: Path, file_name: str) -> Path:
    """The extraction output: `path` itself, or `path/<file_name>` when `path` is the step's folder."""
    return path / file_name if path.is_dir() else path


def register_model(name: str, out_dir: Path, metrics: dict[str, float]) -> None:
    """Inside an Azure ML run: registers model.joblib with the metrics as tags; locally does nothing."""
    from azureml.core import Model, Run

    run = Run.get_context()
    if run.id.startswith("OfflineRun"):  # the SDK's documented marker of a run outside Azure ML
        log.info("not running in Azure ML: model %s not registered", name)
        return
    for key, value in metrics.items():
        run.log(key, value)
    model = Model.register(
        workspace=run.experiment.workspace, model_path=str(out_dir / "model.joblib"), model_name=name,
        tags={k: f"{v:.6g}" for k, v in metrics.items()},
    )
    log.info("registered model %s version %s", model.name, model.version)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, required=True, help="extraction output file or folder")
    parser.add_argument("--append-row-file-name", default="extraction_output.txt")
    parser.add_argument("--output", type=Path, required=True, help="folder for model, metrics and plot")
    parser.add_argument("--register-model", metavar="NAME", help="Azure ML: register the model under NAME")
    args, _ = parser.parse_known_args(argv)
    step_logging.configure()
    source = rows_file(args.input, args.append_row_file_name)
    try:
        metrics = run_training(source, args.output)
    except (OSError, TrainingDataError) as exc:
        log.error("cannot train on %s: %s", source, exc)
        return 2
    if args.register_model:
        register_model(args.register_model, args.output, asdict(metrics))
    print(json.dumps(asdict(metrics)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
