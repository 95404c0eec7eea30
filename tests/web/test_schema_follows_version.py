"""A schema change is followed by a running frontend (gunicorn, two workers) without a restart:
version 1 takes schema A, version 2 (published while the frontend runs) schema B; within the
client's version polling /predict checks rows against B, the form and OpenAPI show B and /readyz
is ready. A version whose recorded schema cannot be read makes /readyz say so."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import requests

from harness.processes import Serving, frontend, wait_until
from tests.localserving.saved_models import PENGUINS_SCHEMA, SPECIES, penguins
from tests.web.conftest import MODEL

pytestmark = pytest.mark.slow

SCHEMA_A = PENGUINS_SCHEMA
SCHEMA_B = {
    "features": {"island": {"type": "category", "values": ["Biscoe", "Dream", "Torgersen"]},
                 "flipper_mm": {"type": "int", "min": 150, "max": 250}},
    "label": {"column": "species", "classes": list(SPECIES)},
}
ROW_A = {"island": "Dream", "bill_length_mm": 48.7, "sex": "female"}
ROW_B = {"island": "Biscoe", "flipper_mm": 210}


def flippers(path):
    """Schema B's export: ``island`` (string [None]) and ``flipper_mm`` (float [None]) -> three classes."""
    import tensorflow as tf

    class Flippers(tf.Module):
        def __init__(self):
            super().__init__()
            self.species = tf.constant(SPECIES)
            self.weight = tf.Variable(1.0)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="island"),
                                      tf.TensorSpec([None], tf.float32, name="flipper_mm")])
        def serve(self, island, flipper_mm):
            biscoe = tf.cast(tf.equal(island, "Biscoe"), tf.float32)
            logits = self.weight * tf.stack([1.0 - biscoe, tf.zeros_like(flipper_mm), flipper_mm / 100.0], axis=1)
            probabilities = tf.nn.softmax(logits)
            return {"probabilities": probabilities, "class": tf.gather(self.species, tf.argmax(probabilities, axis=1))}

    module = Flippers()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path


def publish(models_dir, version: int, build, schema) -> None:
    """As the trainer publishes: built beside, with its metrics.json, then one rename."""
    staging = models_dir / f".tmp-{version}"
    build(staging)
    (staging / "metrics.json").write_text(json.dumps({"version": version, "schema": schema}))
    os.rename(staging, models_dir / str(version))


def predict(url: str, row: dict) -> requests.Response:
    return requests.post(f"{url}/predict", json={"instances": [row]}, timeout=30)


def test_a_running_frontend_follows_the_served_versions_schema_without_a_restart(project, tmp_path):
    config = json.loads(project.config_path.read_text())
    project.config_path.write_text(json.dumps({**config, **SCHEMA_A}))
    models = project.cfg.models_dir
    models.mkdir(parents=True, exist_ok=True)
    publish(models, 1, penguins, SCHEMA_A)
    server = Serving(models, MODEL).wait_listening()
    try:
        with frontend(server.url, MODEL, project.config_path, tmp_path, workers=2) as url:
            wait_until(lambda: requests.get(f"{url}/readyz", timeout=10).status_code == 200, seconds=90,
                       what="the frontend ready")
            assert predict(url, ROW_A).status_code == 200
            refused = predict(url, ROW_B)
            assert refused.status_code == 400 and "flipper_mm" in refused.json()["error"]

            publish(models, 2, flippers, SCHEMA_B)
            answered = wait_until(lambda: (r := predict(url, ROW_B)).status_code == 200 and r, seconds=60,
                                  what="/predict to take schema B's rows")
            assert answered.headers["X-Model-Version"] == "2"
            assert list(answered.json()["predictions"][0]["probabilities"]) == list(SPECIES)
            for _ in range(6):  # every worker, not just the one that saw the change first
                old = predict(url, ROW_A)
                assert old.status_code == 400 and "bill_length_mm" in old.json()["error"]
            ready = requests.get(f"{url}/readyz", timeout=10)
            assert ready.status_code == 200 and ready.json()["version"] == 2
            page = requests.get(url, timeout=30).text
            assert 'name="flipper_mm"' in page and 'name="bill_length_mm"' not in page
            assert "config.json now declares a different schema" in page
            form = requests.post(f"{url}/predict", data={"island": "Dream", "flipper_mm": "190"},
                                 headers={"Accept": "text/html"}, timeout=30)
            assert form.status_code == 200 and '<output id="predicted-class">' in form.text
            api = requests.get(f"{url}/openapi.json", timeout=10).json()
            assert "flipper_mm" in json.dumps(api["components"]["schemas"])
            assert "bill_length_mm" not in json.dumps(api["components"]["schemas"])

            shutil.copytree(models / "2", models / ".tmp-3")
            (models / ".tmp-3" / "metrics.json").write_text(json.dumps({"schema": {"features": "island"}}))
            os.rename(models / ".tmp-3", models / "3")
            unready, = wait_until(lambda: (r := requests.get(f"{url}/readyz", timeout=10)).status_code == 503 and [r],
                                  seconds=60, what="/readyz to refuse a version without a readable schema")
            assert "version 3" in unready.json()["error"] and "schema" in unready.json()["error"]
            refused = predict(url, ROW_B)
            assert refused.status_code == 503 and "version 3" in refused.json()["error"]
    finally:
        server.stop()
