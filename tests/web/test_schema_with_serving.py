"""A declared schema end to end: gunicorn's frontend in front of the project's serving server and a
SavedModel with the named signature (tests/localserving/saved_models.py ``penguins``)."""

from __future__ import annotations

import json
import math

import pytest
import requests

from harness.processes import Serving, frontend, wait_until
from tests.localserving.saved_models import PENGUIN_ROWS, PENGUINS_SCHEMA, SPECIES, penguins
from tests.web.conftest import MODEL

pytestmark = pytest.mark.slow

SCHEMA = PENGUINS_SCHEMA


def test_named_rows_and_the_form_answer_what_serving_answers_with_every_class(project, tmp_path):
    config = json.loads(project.config_path.read_text())
    project.config_path.write_text(json.dumps({**config, **SCHEMA}))
    penguins(project.cfg.models_dir / "1")
    server = Serving(project.cfg.models_dir, MODEL).wait_listening()
    try:
        rows = [{**row, "island": "Torgersen"} if row["island"] == "Atlantis" else row for row in PENGUIN_ROWS]
        sent = [{k: (None if isinstance(v, float) and math.isnan(v) or v == "" else v) for k, v in row.items()}
                for row in rows]
        direct = requests.post(f"{server.url}/v1/models/{MODEL}:predict", data=json.dumps({"instances": rows}),
                               timeout=30).json()["predictions"]
        with frontend(server.url, MODEL, project.config_path, tmp_path, workers=1) as url:
            wait_until(lambda: requests.get(f"{url}/readyz", timeout=10).status_code == 200, seconds=90,
                       what="the frontend ready")
            r = requests.post(f"{url}/predict", json={"instances": sent}, timeout=30)
            assert r.status_code == 200, r.text
            for answer, expected in zip(r.json()["predictions"], direct, strict=True):
                assert answer["class"] == expected["class"]
                assert list(answer["probabilities"]) == list(SPECIES)
                assert list(answer["probabilities"].values()) == pytest.approx(expected["probabilities"], abs=1e-6)
                assert answer["probability"] == pytest.approx(answer["probabilities"][answer["class"]])

            form = requests.post(f"{url}/predict", data={"island": "Dream", "bill_length_mm": "", "sex": "female"},
                                 headers={"Accept": "text/html"}, timeout=30)
            assert form.status_code == 200 and '<output id="predicted-class">' in form.text
            assert all(f"<td>{name}</td>" in form.text for name in SPECIES)

            bad = requests.post(f"{url}/predict", json={"instances": [{"island": "Atlantis"}]}, timeout=30)
            assert bad.status_code == 400 and "island" in bad.json()["error"] and "Atlantis" in bad.json()["error"]
    finally:
        server.stop()
