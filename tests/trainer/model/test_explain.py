"""Every export answers ``explain``: integrated gradients per declared feature that add up to the
prediction's distance from the baseline's (completeness, within the documented tolerance), rank the
features the label depends on first, and answer on the local server as stock TF Serving would."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import requests

from harness.processes import Serving, wait_until
from modelops.core.config import TrainConfig
from modelops.core.schema import DEMO_SCHEMA, Schema
from modelops.savedmodel import load_servable
from modelops.trainer.data.synthetic import synthetic
from modelops.trainer.data.tables import Split
from modelops.trainer.model import explain, training
from modelops.trainer.model.preprocessing import feeds

pytestmark = pytest.mark.slow

# The label depends on ``amount`` and ``colour`` only; ``noise*`` and ``shape`` are noise.
SCHEMA = Schema.from_config(
    {"amount": {"type": "float"}, "noise1": {"type": "float"}, "noise2": {"type": "float", "optional": True},
     "colour": {"type": "category", "values": ["red", "green", "blue"]}, "shape": {"type": "category", "optional": True}},
    {"column": "y", "classes": ["low", "mid", "high"]})
USER_MODEL = '''
import keras


def build_model(input_dim, num_classes, params):
    return keras.Sequential([keras.Input((input_dim,)), keras.layers.Dense(8, activation="tanh"),
                             keras.layers.Dense(num_classes, activation="softmax")])
'''


def table(n: int = 1200, seed: int = 0) -> Split:
    rng = np.random.default_rng(seed)
    amount, colour = rng.normal(0, 1, n), rng.choice(["red", "green", "blue"], n)
    score = amount + np.where(colour == "red", 1.5, 0.0) - np.where(colour == "blue", 1.5, 0.0)
    y = np.digitize(score, [-0.7, 0.7]).astype(np.float32)
    noise2 = rng.normal(5, 2, n)
    noise2[rng.random(n) < 0.1] = np.nan
    x = np.stack([amount, rng.normal(0, 3, n), noise2], axis=1).astype(np.float32)
    text = np.stack([colour, rng.choice(["square", "circle", ""], n)], axis=1).astype(str)
    return Split(x[:1000], y[:1000], x[1000:], y[1000:], text[:1000], text[1000:])


def explained(path: Path, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The export's ``explain`` answer, run by the loader tensorflow_model_server uses."""
    return load_servable(1, path).signatures["explain"].run(inputs)


def assert_complete(answer: dict[str, np.ndarray]) -> None:
    gap = answer["attributions"].sum(axis=1) - (answer["prediction"] - answer["baseline_prediction"])
    assert np.all(np.abs(gap) <= explain.COMPLETENESS_TOLERANCE), np.abs(gap).max()


@pytest.fixture(scope="module")
def multiclass(tmp_path_factory) -> tuple[Split, Path]:
    split = table()
    path = tmp_path_factory.mktemp("explain") / "candidate"
    training.train_candidate(TrainConfig(epochs=30), split, path, SCHEMA)
    return split, path


def test_the_features_the_label_depends_on_rank_first(multiclass):
    split, path = multiclass
    answer = explained(path, feeds(SCHEMA, split.x_eval, split.text_eval))
    names = [f.name for f in SCHEMA.features]
    ranked = np.argsort(-np.abs(answer["attributions"]), axis=1)
    # A row holding the baseline's colour owes nothing to colour (its attribution is 0 by design), so
    # the top two are judged on the rows whose colour differs; the top one on every row.
    differs = split.text_eval[:, 0] != explain.baseline_row(SCHEMA, split.x_train, split.text_train)["colour"]
    top_two = [{names[i] for i in row[:2]} == {"amount", "colour"} for row in ranked[differs]]
    assert np.mean(top_two) >= 0.9
    assert np.mean([names[row[0]] in ("amount", "colour") for row in ranked]) >= 0.9


def test_multiclass_attributions_add_up_and_explain_the_predicted_class(multiclass):
    split, path = multiclass
    inputs = feeds(SCHEMA, split.x_eval, split.text_eval)
    answer = explained(path, inputs)
    assert answer["attributions"].shape == (len(split.y_eval), len(SCHEMA.features))
    assert_complete(answer)
    served = load_servable(1, path).signatures["serving_default"].run(inputs)
    np.testing.assert_array_equal(answer["explained_class"], served["class"])
    np.testing.assert_allclose(answer["prediction"], served["probabilities"].max(axis=1), atol=1e-6)


def test_the_demo_export_explains_its_packed_rows(tmp_path):
    x, y = synthetic(600, seed=5)
    split = Split(x[:500], y[:500], x[500:], y[500:])
    training.train_candidate(TrainConfig(epochs=10), split, tmp_path / "demo", DEMO_SCHEMA)
    answer = explained(tmp_path / "demo", {"x": split.x_eval})
    assert answer["attributions"].shape == (100, 2)
    assert_complete(answer)
    first = load_servable(1, tmp_path / "demo").signatures["explain_class"].run(
        {"x": split.x_eval, "class_index": np.zeros(100, np.int32)})
    assert set(first["explained_class"].astype(str)) == {DEMO_SCHEMA.label.class_names[0]}
    assert_complete(first)


def test_a_user_module_model_is_explained_too(tmp_path):
    module = tmp_path / "mine.py"
    module.write_text(USER_MODEL)
    split = table(600, seed=1)
    training.train_candidate(TrainConfig(epochs=10), split, tmp_path / "user", SCHEMA, module)
    assert_complete(explained(tmp_path / "user", feeds(SCHEMA, split.x_eval, split.text_eval)))


def test_the_local_server_answers_an_explain_request_like_tf_serving(multiclass, tmp_path):
    split, path = multiclass
    shutil.copytree(path, tmp_path / "m" / "1")
    rows = [{"amount": 1.2, "noise1": 0.3, "noise2": 3.0, "colour": "red", "shape": ""},
            {"amount": -0.5, "noise1": -2.0, "noise2": 4.0, "colour": "blue", "shape": "circle"}]
    instances = [SCHEMA.instance_for_serving(SCHEMA.parse_row(row)) for row in rows]
    server = Serving(tmp_path / "m", "m").wait_listening()
    try:
        url = f"{server.url}/v1/models/m:predict"
        wait_until(lambda: requests.get(f"{server.url}/v1/models/m", timeout=5).status_code == 200,
                   what="version 1 AVAILABLE")
        answer = requests.post(url, json={"signature_name": "explain", "instances": instances}, timeout=30)
        assert answer.status_code == 200, answer.text
        predictions = answer.json()["predictions"]
        assert [len(p["attributions"]) for p in predictions] == [5, 5]
        for p in predictions:
            assert abs(sum(p["attributions"]) - (p["prediction"] - p["baseline_prediction"])) \
                <= explain.COMPLETENESS_TOLERANCE
        plain = requests.post(url, json={"instances": instances}, timeout=30).json()["predictions"]
        assert [p["explained_class"] for p in predictions] == [p["class"] for p in plain]
    finally:
        server.stop()


def test_a_class_the_caller_names_is_explained_and_a_wrong_one_is_a_clear_400(multiclass, tmp_path):
    split, path = multiclass
    inputs = feeds(SCHEMA, split.x_eval[:30], split.text_eval[:30])
    signatures = load_servable(1, path).signatures
    plain = signatures["explain"].run(inputs)
    predicted = [SCHEMA.label.class_names.index(c.decode()) for c in plain["explained_class"]]
    same = signatures["explain_class"].run({**inputs, "class_index": np.asarray(predicted, np.int32)})
    np.testing.assert_allclose(same["attributions"], plain["attributions"], atol=1e-6)
    for k, name in enumerate(SCHEMA.label.class_names):
        answer = signatures["explain_class"].run({**inputs, "class_index": np.full(30, k, np.int32)})
        assert set(answer["explained_class"].astype(str)) == {name}
        assert_complete(answer)

    shutil.copytree(path, tmp_path / "m" / "1")
    instance = SCHEMA.instance_for_serving(SCHEMA.parse_row(
        {"amount": 1.2, "noise1": 0.3, "noise2": 3.0, "colour": "red", "shape": ""}))
    server = Serving(tmp_path / "m", "m").wait_listening()
    try:
        url = f"{server.url}/v1/models/m:predict"
        wait_until(lambda: requests.get(f"{server.url}/v1/models/m", timeout=5).status_code == 200,
                   what="version 1 AVAILABLE")
        asked = [{**instance, "class_index": k} for k in (2, 0)]
        answer = requests.post(url, json={"signature_name": "explain_class", "instances": asked}, timeout=30)
        assert answer.status_code == 200, answer.text
        assert [p["explained_class"] for p in answer.json()["predictions"]] == [SCHEMA.label.class_names[2],
                                                                                 SCHEMA.label.class_names[0]]
        wrong = requests.post(url, json={"signature_name": "explain_class",
                                         "instances": [{**instance, "class_index": 3}]}, timeout=30)
        assert wrong.status_code == 400 and "class_index" in wrong.json()["error"]
    finally:
        server.stop()
