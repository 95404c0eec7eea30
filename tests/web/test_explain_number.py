"""A number label explained through gunicorn's frontend and the project's serving server: ``/predict``
with ``"explain": true`` answers each row's value with its explanation (contributions in the label's
units that add up to the value minus the baseline's), the form shows the bars, OpenAPI says it."""

from __future__ import annotations

import numpy as np
import pytest
import requests

from harness.processes import frontend, wait_until
from modelops.trainer.model.explain import COMPLETENESS_TOLERANCE
from tests.trainer.test_number_and_dates import FEATURES, cars
from tests.web.conftest import MODEL
from tests.web.test_number_with_serving import serve_cars

pytestmark = pytest.mark.slow


def test_the_frontend_explains_a_number_labels_value(project, tmp_path):
    server = serve_cars(project, 20)
    heavy = {"Origin": "USA", "Cylinders": 8, "Horsepower": 200.0, "Weight_in_lbs": 4800, "Year": "1971-03-01"}
    light = {"Origin": "Japan", "Cylinders": 4, "Horsepower": 65.0, "Weight_in_lbs": 1900, "Year": "1982-06-01"}
    try:
        with frontend(server.url, MODEL, project.config_path, tmp_path, workers=1) as url:
            wait_until(lambda: requests.get(f"{url}/readyz", timeout=10).status_code == 200, seconds=90,
                       what="the frontend ready")
            r = requests.post(f"{url}/predict", json={"instances": [heavy, light], "explain": True}, timeout=60)
            assert r.status_code == 200, r.text
            plain = requests.post(f"{url}/predict", json={"instances": [heavy, light]}, timeout=30).json()
            # the documented bound: in the label's training deviations (export_cars trains on these rows)
            tolerance = COMPLETENESS_TOLERANCE * float(np.std([float(c["Miles_per_Gallon"]) for c in cars(300, seed=3)]))
            for answer, alone in zip(r.json()["predictions"], plain["predictions"], strict=True):
                why = answer["explanation"]
                assert answer["value"] == pytest.approx(alone["value"], abs=1e-4)
                assert why["prediction"] == pytest.approx(answer["value"], abs=1e-3) and "class" not in why
                assert {f["name"] for f in why["features"]} == set(FEATURES)
                total = sum(f["contribution"] for f in why["features"])
                assert total == pytest.approx(why["prediction"] - why["baseline_prediction"], abs=tolerance)
            heavy_why, light_why = (p["explanation"] for p in r.json()["predictions"])
            assert heavy_why["prediction"] < heavy_why["baseline_prediction"] < light_why["prediction"]

            form = requests.post(f"{url}/predict", data={**{k: str(v) for k, v in light.items()}, "explain": "on"},
                                 headers={"Accept": "text/html"}, timeout=60)
            assert form.status_code == 200 and 'id="explanation"' in form.text, form.text[-2000:]
            card = form.text[form.text.index('id="explanation"'):]
            assert "Why this Miles_per_Gallon" in card and ">Weight_in_lbs<" in card

            api = requests.get(f"{url}/openapi.json", timeout=30).json()["components"]["schemas"]
            assert api["PredictResponse"]["properties"]["predictions"]["items"]["properties"]["explanation"] == \
                {"$ref": "#/components/schemas/Explanation", "description": 'with "explain": true'}
            assert "class" not in api["Explanation"]["properties"]
    finally:
        server.stop()
