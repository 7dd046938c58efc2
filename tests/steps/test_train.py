"""The training step. scikit-learn and pandas are imported by the tests that use them, not at collection:
every pytest-xdist worker collects every module, and only one runs these."""
import json

import pytest

from steps.extract import FIELDS


def write_rows(path, count, duplicate=False):
    lines = []
    for i in range(count):
        x = float(i)
        row = dict.fromkeys(FIELDS, 1.0)
        row.update(id=i, MedInc=x, HouseAge=(i * 7) % 13, MedHouseVal=2.0 * x + 1.0)
        lines.append(json.dumps(row))
    if duplicate:
        lines.append(lines[3])
    path.write_text("\n".join(reversed(lines)) + "\n")


def test_load_rows_sorts_by_id_and_drops_duplicates(tmp_path):
    from steps.train import load_rows

    path = tmp_path / "rows.txt"
    write_rows(path, 10, duplicate=True)
    frame, duplicates = load_rows(path)
    assert duplicates == 1
    assert frame["id"].tolist() == list(range(10))


def test_training_writes_model_metrics_and_plot(tmp_path):
    from steps.train import run_training

    rows = tmp_path / "rows.txt"
    write_rows(rows, 50)
    metrics = run_training(rows, tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved["n_train"] == 40 and saved["n_test"] == 10
    assert saved["r2"] == pytest.approx(1.0) and metrics.rmse == pytest.approx(0.0, abs=1e-9)
    assert (tmp_path / "out" / "model.joblib").stat().st_size > 0
    assert (tmp_path / "out" / "predicted_vs_actual.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_plot_frames_the_data_and_shows_the_residuals(tmp_path, monkeypatch):
    import matplotlib.figure
    import pandas as pd

    from steps.train import Metrics, plot_predictions

    drawn = {}
    save = matplotlib.figure.Figure.savefig

    def keep(figure, *args, **kwargs):
        drawn["axes"] = figure.axes
        return save(figure, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", keep)
    actual = pd.Series([0.5, 1.0, 2.0, 3.0, 5.0] * 40)
    predicted = actual.to_numpy() + 0.1
    predicted[0] = 11.5  # one wild prediction must not stretch the frame
    plot_predictions(actual, predicted, Metrics(0.5, 0.7, 0.5, 160, 200, 0), tmp_path / "plot.png")
    scatter, residuals = drawn["axes"]
    assert scatter.get_xlim()[1] < 6 and scatter.get_ylim()[1] < 6
    labels = [text.get_text() for text in scatter.get_legend().get_texts()]
    assert labels == ["test rows (1 predictions outside the frame, drawn at its edge)", "perfect prediction"]
    assert "capped values at 5.0" in scatter.get_xlabel() and residuals.get_ylabel() == "actual − predicted"


@pytest.mark.parametrize("content, message", [
    ("", "no rows"),
    ("{not json}\n", ":1: not JSON"),
    ('{"id": 1}\n', ":1: expected an object with id"),
])
def test_bad_rows_are_reported_with_their_line(tmp_path, content, message):
    from steps.train import TrainingDataError, load_rows

    path = tmp_path / "rows.txt"
    path.write_text(content)
    with pytest.raises(TrainingDataError, match=message):
        load_rows(path)


def test_step_reports_bad_input_with_exit_2(tmp_path):
    from steps import train_step

    (tmp_path / "extraction_output.txt").write_text("garbage\n")
    assert train_step.main(["--input", str(tmp_path), "--output", str(tmp_path / "t")]) == 2
    assert not (tmp_path / "t" / "model.joblib").exists()


def test_register_model_outside_azure_ml_does_nothing(tmp_path, caplog):
    import logging

    from steps import train_step

    with caplog.at_level(logging.INFO, logger="training"):
        train_step.register_model("m", tmp_path, {"r2": 0.5})
    assert "not running in Azure ML: model m not registered" in caplog.text
