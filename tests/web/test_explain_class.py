"""``/predict``'s ``"explain_class"`` through gunicorn's frontend and the project's serving server on a
real three-class export: the class named is the one explained (its contributions add up to its
probability minus the baseline's), an unknown class is a clear 400, OpenAPI lists the classes."""

from __future__ import annotations

import json

import pytest
import requests

from harness.processes import Serving, frontend, wait_until
from modelops.core.config import TrainConfig
from modelops.core.schema import Schema
from modelops.trainer.model import training
from modelops.trainer.model.explain import COMPLETENESS_TOLERANCE
from tests.trainer.model.test_explain import table
from tests.web.conftest import MODEL

pytestmark = pytest.mark.slow

FEATURES = {"amount": {"type": "float"}, "noise1": {"type": "float"}, "noise2": {"type": "float", "optional": True},
            "colour": {"type": "category", "values": ["red", "green", "blue"]},
            "shape": {"type": "category", "optional": True}}
LABEL = {"column": "y", "classes": ["low", "mid", "high"]}


def test_the_frontend_explains_the_class_asked_and_refuses_an_unknown_one(project, tmp_path):
    raw = json.loads(project.config_path.read_text())
    project.config_path.write_text(json.dumps({**raw, "features": FEATURES, "label": LABEL}))
    schema = Schema.from_config(FEATURES, LABEL)
    training.train_candidate(TrainConfig(epochs=10), table(600, seed=1), project.cfg.models_dir / "1", schema)
    (project.cfg.models_dir / "1" / "metrics.json").write_text(json.dumps({
        "version": 1, "test_accuracy_percent": 90.0, "schema": schema.to_config()}))
    server = Serving(project.cfg.models_dir, MODEL).wait_listening()
    row = {"amount": 1.4, "noise1": 0.3, "noise2": 3.0, "colour": "red", "shape": "circle"}
    try:
        with frontend(server.url, MODEL, project.config_path, tmp_path, workers=1) as url:
            wait_until(lambda: requests.get(f"{url}/readyz", timeout=10).status_code == 200, seconds=90,
                       what="the frontend ready")
            predicted = requests.post(f"{url}/predict", json={"instances": [row], "explain": True}, timeout=60)
            assert predicted.status_code == 200, predicted.text
            [answer] = predicted.json()["predictions"]
            assert answer["class"] == answer["explanation"]["class"] == "high"
            for name in ("low", "mid"):
                r = requests.post(f"{url}/predict", json={"instances": [row], "explain_class": name}, timeout=60)
                assert r.status_code == 200, r.text
                [asked] = r.json()["predictions"]
                why = asked["explanation"]
                assert asked["class"] == "high" and why["class"] == name  # the answer itself is unchanged
                assert why["prediction"] == pytest.approx(asked["probabilities"][name], abs=1e-4)
                total = sum(f["contribution"] for f in why["features"])
                assert total == pytest.approx(why["prediction"] - why["baseline_prediction"],
                                              abs=COMPLETENESS_TOLERANCE)

            wrong = requests.post(f"{url}/predict", json={"instances": [row], "explain_class": "huge"}, timeout=30)
            assert wrong.status_code == 400 and "'explain_class' must be one of" in wrong.json()["error"]
            assert "low, mid, high" in wrong.json()["error"]
            odd = requests.post(f"{url}/predict", json={"instances": [row], "explain_class": [1]}, timeout=30)
            assert odd.status_code == 400 and "'explain_class'" in odd.json()["error"]

            api = requests.get(f"{url}/openapi.json", timeout=30).json()["components"]["schemas"]
            assert api["PredictRequest"]["properties"]["explain_class"]["enum"] == ["low", "mid", "high"]
    finally:
        server.stop()
