"""A number label with a date feature behind gunicorn's frontend and the project's serving server:
the export the trainer writes answers a stock-TF-Serving-style named request (the date as ISO text),
the frontend answers ``{"predictions": [{"value": ...}]}`` with the same number, and the form offers
a date input and shows the predicted number with the label's name."""

from __future__ import annotations

import csv
import io
import json

import pytest
import requests

from harness.processes import Serving, frontend, wait_until
from tests.trainer.test_number_and_dates import FEATURES, LABEL, _bytes, cars
from tests.web.conftest import MODEL

pytestmark = pytest.mark.slow


def export_cars(config, path) -> None:
    """Train the built-in number head for a few epochs on seeded cars rows and export it to ``path``."""
    import numpy as np

    from modelops.trainer.data import csv_rows, tables
    from modelops.trainer.model.training import train_candidate

    batch = csv_rows.read_rows(_bytes(cars(300, seed=3)), config.data, config.schema)
    x, y = batch.numbers[:, :-1], batch.numbers[:, -1]
    split = tables.Split(x, y, x[:10], y[:10], batch.text, batch.text[:10])
    train_candidate(config.train, split, path, config.schema)
    assert np.isfinite(y).all()


def serve_cars(project, epochs: int, **metrics) -> Serving:
    """The project declaring the cars table (a number label), its version 1 trained for ``epochs`` and
    recorded with its schema (and ``metrics``), served by the project's serving server."""
    raw = json.loads(project.config_path.read_text())
    project.config_path.write_text(json.dumps({**raw, "features": FEATURES, "label": LABEL,
                                               "train": {**raw["train"], "epochs": epochs}}))
    export_cars(project.cfg, project.cfg.models_dir / "1")
    (project.cfg.models_dir / "1" / "metrics.json").write_text(json.dumps({
        "version": 1, "test_accuracy_percent": None, "schema": project.cfg.schema.to_config(), **metrics}))
    return Serving(project.cfg.models_dir, MODEL).wait_listening()


def test_the_frontend_answers_a_number_and_the_form_takes_a_date(project, tmp_path):
    server = serve_cars(project, 5, scores={"rmse": 1.25, "mae": 0.9, "r2": 0.93},
                        values={"actual": [18.0, 25.5, 31.0], "predicted": [19.1, 24.8, 29.7]})
    row = {"Origin": "Japan", "Cylinders": 4, "Horsepower": 70.0, "Weight_in_lbs": 1900, "Year": "1982-06-01"}
    try:
        direct = requests.post(f"{server.url}/v1/models/{MODEL}:predict", data=json.dumps({"instances": [row]}),
                               timeout=30)
        assert direct.status_code == 200, direct.text
        [value] = direct.json()["predictions"]
        assert isinstance(value, float)
        with frontend(server.url, MODEL, project.config_path, tmp_path, workers=1) as url:
            wait_until(lambda: requests.get(f"{url}/readyz", timeout=10).status_code == 200, seconds=90,
                       what="the frontend ready")
            r = requests.post(f"{url}/predict", json={"instances": [row, {**row, "Year": "1982-06-01T00:00:00"}]},
                              timeout=30)
            assert r.status_code == 200, r.text
            assert r.json()["predictions"] == [{"value": pytest.approx(value, abs=1e-4)}] * 2

            bad = requests.post(f"{url}/predict", json={"instances": [{**row, "Year": "June 1982"}]}, timeout=30)
            assert bad.status_code == 400 and "Year" in bad.json()["error"] and "date" in bad.json()["error"]

            api = requests.get(f"{url}/openapi.json", timeout=30).json()
            assert api["components"]["schemas"]["PredictResponse"]["properties"]["predictions"]["items"][
                "required"] == ["value"]
            assert api["components"]["schemas"]["PredictRequest"]["properties"]["instances"]["items"]["properties"][
                "Year"]["format"] == "date"

            page = requests.get(url, timeout=30).text
            assert 'type="date"' in page and 'name="Year"' in page
            assert "predicted against actual, on 3 eval rows" in page and page.count("<circle") == 3
            assert "rmse <strong>1.25</strong>" in page and "Predicts the number Miles_per_Gallon" in page
            form = requests.post(f"{url}/predict", data={**{k: str(v) for k, v in row.items()}},
                                 headers={"Accept": "text/html"}, timeout=30)
            assert form.status_code == 200 and 'id="predicted-value"' in form.text, form.text[-2000:]
            assert "Predicted Miles_per_Gallon" in form.text

            # a file of them through the CSV API: each row's value, the same number
            body = "Origin,Cylinders,Horsepower,Weight_in_lbs,Year\nJapan,4,70,1900,1982-06-01\nMars,4,70,1900,1982-06-01\n"
            scored = requests.post(f"{url}/predict", data=body, headers={"Content-Type": "text/csv"}, timeout=30)
            assert scored.status_code == 200, scored.text
            good, broken = csv.DictReader(io.StringIO(scored.text))
            assert float(good["value"]) == pytest.approx(value, abs=1e-4) and good["error"] == ""
            assert broken["value"] == "" and "Origin" in broken["error"]
            assert "with its value, model_version" in " ".join(page.split())
    finally:
        server.stop()
