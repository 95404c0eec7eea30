"""A number label's export explains the predicted value: attributions in the label's units that add
up to the value's distance from the baseline's (completeness within the documented tolerance, in
the label's training deviations), rank the features the value depends on first, and answer on the
local server as stock TF Serving would."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import requests

from harness.processes import Serving, wait_until
from modelops.core.config import TrainConfig
from modelops.core.schema import Schema
from modelops.savedmodel import load_servable
from modelops.trainer.data.tables import Split
from modelops.trainer.model import explain, training
from modelops.trainer.model.preprocessing import feeds

pytestmark = pytest.mark.slow

# The value depends on ``weight`` and ``origin`` only; ``noise`` is noise.
SCHEMA = Schema.from_config(
    {"weight": {"type": "float"}, "noise": {"type": "float", "optional": True},
     "origin": {"type": "category", "values": ["USA", "Europe", "Japan"]}},
    {"column": "mpg", "type": "number"})


def table(n: int = 700, seed: int = 3) -> Split:
    rng = np.random.default_rng(seed)
    weight, origin = rng.normal(3000, 600, n), rng.choice(["USA", "Europe", "Japan"], n)
    y = 60 - weight / 100 + np.where(origin == "Japan", 6.0, 0.0) + rng.normal(0, 0.5, n)
    noise = rng.normal(0, 1, n)
    noise[rng.random(n) < 0.1] = np.nan
    x = np.stack([weight, noise], axis=1).astype(np.float32)
    text = origin[:, None].astype(str)
    return Split(x[:600], y[:600].astype(np.float32), x[600:], y[600:].astype(np.float32), text[:600], text[600:])


@pytest.fixture(scope="module")
def regression(tmp_path_factory):
    split = table()
    path = tmp_path_factory.mktemp("explain_number") / "candidate"
    candidate = training.train_candidate(TrainConfig(epochs=40), split, path, SCHEMA)
    return split, path, candidate


def test_a_number_labels_attributions_add_up_to_the_value_minus_the_baselines(regression):
    split, path, candidate = regression
    inputs = feeds(SCHEMA, split.x_eval, split.text_eval)
    signatures = load_servable(1, path).signatures
    answer = signatures["explain"].run(inputs)
    assert answer["attributions"].shape == (len(split.y_eval), 3)
    np.testing.assert_allclose(answer["prediction"], signatures["serving_default"].run(inputs)["value"], rtol=1e-5)
    gap = answer["attributions"].sum(axis=1) - (answer["prediction"] - answer["baseline_prediction"])
    assert np.all(np.abs(gap) <= explain.COMPLETENESS_TOLERANCE * float(np.std(split.y_train))), np.abs(gap).max()
    assert candidate.baseline is not None and candidate.baseline["origin"] in ("USA", "Europe", "Japan")
    assert "explain_class" not in signatures  # no class to name


def test_the_features_the_value_depends_on_rank_first(regression):
    split, path, _ = regression
    answer = load_servable(1, path).signatures["explain"].run(feeds(SCHEMA, split.x_eval, split.text_eval))
    top = np.argmax(np.abs(answer["attributions"]), axis=1)
    assert np.mean(top != 1) >= 0.9  # weight or origin, not the noise


def test_the_local_server_answers_a_number_labels_explain_request(regression, tmp_path):
    split, path, _ = regression
    shutil.copytree(path, tmp_path / "m" / "1")
    row = SCHEMA.instance_for_serving(SCHEMA.parse_row({"weight": 2200, "noise": 0.1, "origin": "Japan"}))
    server = Serving(tmp_path / "m", "m").wait_listening()
    try:
        url = f"{server.url}/v1/models/m:predict"
        wait_until(lambda: requests.get(f"{server.url}/v1/models/m", timeout=5).status_code == 200,
                   what="version 1 AVAILABLE")
        answer = requests.post(url, json={"signature_name": "explain", "instances": [row]}, timeout=30)
        assert answer.status_code == 200, answer.text
        [p] = answer.json()["predictions"]
        value = requests.post(url, json={"instances": [row]}, timeout=30).json()["predictions"][0]
        assert p["prediction"] == pytest.approx(value, rel=1e-5) and p["prediction"] > p["baseline_prediction"]
        assert abs(sum(p["attributions"]) - (p["prediction"] - p["baseline_prediction"])) <= explain.COMPLETENESS_TOLERANCE * float(np.std(split.y_train))
    finally:
        server.stop()
