"""A cars-like table (seeded, built here) with a number to predict and a date column: ingested with a
declared date format, trained on a normalised label, gated on rmse, published; the export answers
stock-TF-Serving-style named requests (the date as ISO text) with a value in the label's units; a
second week is compared with the champion on per-row errors; drift scores the date and the label."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from pathlib import Path

import numpy as np
import pytest

from harness.project import write_config
from modelops.core import stats
from modelops.core.config import load_config
from modelops.core.errors import ConfigError
from modelops.core.store import ModelStore
from modelops.trainer import drift
from modelops.trainer.cli import status_lines
from modelops.trainer.data import csv_rows, layout
from modelops.trainer.retrain import run

pytestmark = pytest.mark.slow

FEATURES = {
    "Origin": {"type": "category", "values": ["USA", "Europe", "Japan"]},
    "Cylinders": {"type": "int", "min": 3, "max": 8},
    "Horsepower": {"type": "float", "min": 40, "max": 240, "optional": True},
    "Weight_in_lbs": {"type": "float", "min": 1500, "max": 5500},
    "Year": {"type": "date", "format": "%d/%m/%Y"},
}
LABEL = {"column": "Miles_per_Gallon", "type": "number", "min": 0, "max": 80}


def cars(n: int, seed: int, shift: float = 0.0) -> list[dict]:
    """Miles per gallon falls with weight and horsepower and rises over the years; blanks in Horsepower,
    an extra Name column, dates as the data ships them (day/month/year)."""
    rng = np.random.default_rng(seed)
    origin = rng.choice(["USA", "Europe", "Japan"], n, p=[0.6, 0.2, 0.2])
    cylinders = rng.choice([4, 6, 8], n)
    weight = rng.uniform(1600, 5000, n)
    horsepower = 40 + cylinders * 15 + rng.normal(0, 10, n)
    year = rng.integers(1970, 1983, n)
    mpg = (55 - weight / 200 - horsepower / 20 + (year - 1970) * 0.8 + np.where(origin == "Japan", 3.0, 0.0)
           + rng.normal(0, 1.0, n) + shift)
    blank = rng.random(n) < 0.08
    return [{"Name": f"car {seed}-{i}", "Origin": origin[i], "Cylinders": int(cylinders[i]),
             "Horsepower": "" if blank[i] else f"{horsepower[i]:.1f}", "Weight_in_lbs": f"{weight[i]:.0f}",
             "Year": dt.date(int(year[i]), int(rng.integers(1, 13)), 1).strftime("%d/%m/%Y"),
             "Miles_per_Gallon": f"{max(mpg[i], 1.0):.2f}"} for i in range(n)]


def write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture
def project(tmp_path):
    config = load_config(write_config(tmp_path, features=FEATURES, label=LABEL,
                                      gate={"max_rmse": 6.0, "min_eval_rows": 50, "min_slice_rows": 5,
                                            "slices": [{"feature": "Year"}, {"feature": "Origin"}]},
                                      train={"epochs": 60, "learning_rate": 0.01}))
    write_csv(layout.incoming_dir(config) / "week-0.csv", cars(700, seed=0))
    return config


def named_feeds(instances: list[dict]) -> dict[str, np.ndarray]:
    """What stock TF Serving feeds the signature for ``{"instances": [{name: value}]}``."""
    return {name: np.asarray([row[name] for row in instances], dtype=np.float32)
            if FEATURES[name]["type"] in ("int", "float")
            else np.asarray([str(row[name]).encode() for row in instances], dtype=object) for name in FEATURES}


def test_a_number_label_with_a_date_is_trained_gated_served_and_compared(project):
    assert project.gate.metric == "rmse", "a number label is gated on rmse unless told otherwise"
    first = run.retrain(project, echo=lambda line: None)
    assert first.outcome == "promoted", first.message
    store = ModelStore(project.models_dir)
    metrics = store.metrics(first.version)
    assert metrics["schema"]["label"] == {"column": "Miles_per_Gallon", "type": "number", "min": 0.0, "max": 80.0}
    assert metrics["schema"]["features"]["Year"] == {"type": "date", "format": "%d/%m/%Y"}
    assert metrics["gate"]["metric"] == "rmse" and 0 < metrics["scores"]["rmse"] <= 6.0
    assert metrics["scores"]["r2"] > 0.5, "the model learned the quantity, not its mean"
    assert "confusion" not in metrics and len(metrics["values"]["actual"]) == len(metrics["values"]["predicted"])
    shares = metrics["explanations"]["share"]  # the value explained too (docs/explain.md)
    assert set(shares) == set(FEATURES) and max(shares, key=shares.get) == "Weight_in_lbs", shares
    assert len(metrics["verification"]["explain"]["attributions"][0]) == len(FEATURES)
    status = "\n".join(status_lines(project))
    assert f"scores: rmse {metrics['scores']['rmse']:.4g}, mae" in status and "-> Miles_per_Gallon (number)" in status

    from modelops.trainer.model import network as model

    signature = model.load_signature(store.path(first.version))
    light_new = {"Origin": "Japan", "Cylinders": 4, "Horsepower": 70.0, "Weight_in_lbs": 1900, "Year": "1982-06-01"}
    heavy_old = {"Origin": "USA", "Cylinders": 8, "Horsepower": np.nan, "Weight_in_lbs": 4800, "Year": "1970-01-01"}
    values = signature.run(named_feeds([light_new, heavy_old]))["value"]
    assert values.shape == (2,) and np.isfinite(values).all()
    assert values[0] > values[1] + 10, f"miles per gallon in its own units: {values}"

    write_csv(layout.incoming_dir(project) / "week-1.csv", cars(300, seed=1))
    second = run.retrain(project, echo=lambda line: None)
    assert second.outcome in ("promoted", "rejected"), second.message
    decided = json.loads(project.history_path.read_text().splitlines()[-1])
    record = decided["comparison"]
    assert record and "per-row errors" in record["method"] and record["rows"] > 50
    assert record["champion_percent"] > 0, "the champion's rmse on the same rows"
    assert "of the champion's error" in stats.describe(record) and "closer on" in stats.describe(record)
    log = project.train_log_path.read_text()
    assert "slice Origin = Japan" in log and re.search(r"slice Year = 19\d\d-\d\d: \d+ rows", log), \
        "a date is sliced by calendar month"


def test_drift_scores_dates_and_the_number_label(project):
    reference = None
    result = run.retrain(project, echo=lambda line: None)
    reference = ModelStore(project.models_dir).metrics(result.version)["reference"]
    assert reference["features"]["Year"]["type"] == "numeric" and reference["label"]["type"] == "numeric"
    same = csv_rows.read_rows(_bytes(cars(300, seed=5)), project.data, project.schema)
    later = cars(300, seed=6, shift=12.0)
    for row in later:
        row["Year"] = row["Year"][:6] + "2015"  # thirty years on
    moved = csv_rows.read_rows(_bytes(later), project.data, project.schema)
    calm = drift.score(reference, drift.of_batch(project.schema, same), 0.2, 100)
    shifted = drift.score(reference, drift.of_batch(project.schema, moved), 0.2, 100)
    assert not calm["features"]["Year"]["drifted"] and not calm["label"]["drifted"]
    assert shifted["features"]["Year"]["drifted"] and shifted["label"]["drifted"]


def _bytes(rows: list[dict]):
    import io

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return io.BytesIO(out.getvalue().encode())


def test_a_number_label_refuses_class_metrics_and_classes(tmp_path):
    with pytest.raises(ConfigError, match="gate.metric"):
        load_config(write_config(tmp_path, features=FEATURES, label=LABEL, gate={"metric": "macro_f1"}))
    with pytest.raises(ConfigError, match="label.classes"):
        load_config(write_config(tmp_path, features=FEATURES, label={**LABEL, "classes": ["a", "b"]}))
    with pytest.raises(ConfigError, match="features.Weight_in_lbs.format"):
        load_config(write_config(tmp_path, features={**FEATURES, "Weight_in_lbs": {"type": "float", "format": "%Y"}},
                                 label=LABEL))


def test_a_users_module_builds_the_number_head(tmp_path):
    """``build_model(input_dim, 1, params)`` answering ``[None, 1]`` is accepted for a number label."""
    from modelops.trainer.model.usermodel import build_user_model

    module = tmp_path / "my_model.py"
    module.write_text("import keras\n\ndef build_model(input_dim, outputs, params):\n"
                      "    return keras.Sequential([keras.Input((input_dim,)), keras.layers.Dense(outputs)])\n")
    model = build_user_model(module, 7, 1, {})
    assert model.output_shape == (None, 1)
