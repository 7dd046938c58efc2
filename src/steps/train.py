"""Training logic: a LinearRegression on the extracted rows, its metrics and a plot. No Azure ML.

The split is fixed and documented: rows sorted by id, then `train_test_split(test_size=0.2,
random_state=42)` — the reference split (test R² 0.5758, RMSE 0.7456; README.md, Quick start).
Sorting first makes the split independent of the order in which ParallelRunStep appended the rows.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import train_test_split

from steps.extract import FIELDS, TARGET

log = logging.getLogger(__name__)

FEATURES = [f for f in FIELDS if f not in ("id", TARGET)]
TEST_SIZE = 0.2
RANDOM_STATE = 42


class TrainingDataError(ValueError):
    """The extraction output cannot be trained on; the message says which line or column."""


@dataclass(frozen=True)
class Metrics:
    r2: float
    rmse: float
    mae: float
    n_train: int
    n_test: int
    duplicates_dropped: int


def load_rows(path: Path) -> tuple[pd.DataFrame, int]:
    """Reads the append_row file (one JSON object per line) sorted by id, without duplicate ids.

    ParallelRunStep delivers at least once, so a mini-batch may appear twice; its rows are dropped by id.
    Returns the frame and the number of duplicates dropped.

    Raises:
        TrainingDataError: for a line that is not a JSON object with every field, or an empty file.
    """
    rows = []
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TrainingDataError(f"{path}:{line_no}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict) or set(FIELDS) - row.keys():
                raise TrainingDataError(f"{path}:{line_no}: expected an object with {', '.join(FIELDS)}")
            rows.append(row)
    if not rows:
        raise TrainingDataError(f"{path}: no rows to train on")
    frame = pd.DataFrame.from_records(rows, columns=list(FIELDS))
    unique = frame.drop_duplicates(subset="id").sort_values("id", kind="stable").reset_index(drop=True)
    return unique, len(frame) - len(unique)


def split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    """The fixed split: 80 % train, 20 % test, random_state 42."""
    return train_test_split(
        frame[FEATURES], frame[TARGET], test_size=TEST_SIZE, random_state=RANDOM_STATE
    )


def train(x_train: pd.DataFrame, y_train: pd.Series) -> LinearRegression:
    return LinearRegression().fit(x_train, y_train)


def evaluate(y_true: pd.Series, y_pred: np.ndarray, n_train: int, duplicates: int = 0) -> Metrics:
    return Metrics(
        r2=float(r2_score(y_true, y_pred)),
        rmse=math.sqrt(mean_squared_error(y_true, y_pred)),
        mae=float(mean_absolute_error(y_true, y_pred)),
        n_train=n_train,
        n_test=len(y_true),
        duplicates_dropped=duplicates,
    )


def plot_predictions(y_true: pd.Series, y_pred: np.ndarray, metrics: Metrics, path: Path) -> None:
    """Predicted against actual test values, with the identity line, and the residuals beside them.

    The axes are framed on the data's range (0.5th to 99.5th percentile of the predictions), so that a
    few extreme predictions do not shrink the cloud; those outside are counted in the legend.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    actual, predicted = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    low = float(min(actual.min(), np.percentile(predicted, 0.5)))
    high = float(max(actual.max(), np.percentile(predicted, 99.5)))
    outside = int(((predicted < low) | (predicted > high)).sum())
    fig, (scatter, residuals) = plt.subplots(1, 2, figsize=(11, 5.5))
    scatter.scatter(actual, predicted.clip(low, high), s=4, alpha=0.3,
                    label=f"test rows ({outside} predictions outside the frame, drawn at its edge)")
    scatter.plot([low, high], [low, high], color="black", linewidth=1, label="perfect prediction")
    scatter.set_xlim(low, high)
    scatter.set_ylim(low, high)
    scatter.set_xlabel("actual MedHouseVal (100k USD; the census capped values at 5.0)")
    scatter.set_ylabel("predicted MedHouseVal (100k USD)")
    scatter.set_title(f"LinearRegression, test R² {metrics.r2:.4f}, RMSE {metrics.rmse:.4f}")
    scatter.legend(loc="upper left", fontsize="small")
    residual = actual - predicted
    residuals.scatter(predicted.clip(low, high), residual, s=4, alpha=0.3)
    residuals.axhline(0.0, color="black", linewidth=1)
    residuals.set_xlim(low, high)
    residuals.set_ylim(float(np.percentile(residual, 0.5)) - 0.25,
                       float(np.percentile(residual, 99.5)) + 0.25)
    residuals.set_xlabel("predicted MedHouseVal (100k USD)")
    residuals.set_ylabel("actual − predicted")
    residuals.set_title("residuals (the straight line: actual values capped at 5.0)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_training(rows_file: Path, out_dir: Path) -> Metrics:
    """Trains on `rows_file` and writes model.joblib, metrics.json and predicted_vs_actual.png."""
    import joblib

    frame, duplicates = load_rows(rows_file)
    if duplicates:
        log.warning("dropped %d duplicate rows (same id) from %s", duplicates, rows_file)
    x_train, x_test, y_train, y_test = split(frame)
    model = train(x_train, y_train)
    predictions = model.predict(x_test)
    metrics = evaluate(y_test, predictions, len(x_train), duplicates)
    out_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, out_dir / "model.joblib")
    (out_dir / "metrics.json").write_text(json.dumps(asdict(metrics), indent=2) + "\n")
    plot_predictions(y_test, predictions, metrics, out_dir / "predicted_vs_actual.png")
    return metrics
