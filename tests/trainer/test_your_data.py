"""A table the project never saw, declared in config.json: batches are validated, trained (with the
user's own model), gated on macro F1, published, and the export answers named instances with K
probabilities through the local server's loader; a broken model module publishes nothing."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from harness.project import write_config
from modelops.core import history
from modelops.core.config import load_config
from modelops.core.errors import ReproduceError
from modelops.core.schema import Schema
from modelops.core.store import ModelStore
from modelops.trainer import reproduce
from modelops.trainer.cli import status_lines
from modelops.trainer.data import layout
from modelops.trainer.retrain import run

pytestmark = pytest.mark.slow

CLASSES = ["A", "B", "C", "D", "E"]
FEATURES = {
    "region": {"type": "category", "values": ["north", "south", "east", "west"]},
    "acidity": {"type": "float", "min": 0, "max": 20, "optional": True},
    "sugar": {"type": "float"},
    "age_years": {"type": "int", "min": 0, "max": 50},
    "grape": {"type": "category", "optional": True},
}
USER_MODEL = '''
import keras


def build_model(input_dim, num_classes, params):
    return keras.Sequential([
        keras.Input((input_dim,)),
        keras.layers.Dense(params["units"], activation="relu"),
        keras.layers.Dense(num_classes, activation="softmax"),
    ])
'''


def wine_rows(n: int, seed: int) -> list[dict]:
    """Five classes, cut from a latent score at 45/25/15/10/5 %: an imbalanced, learnable table."""
    rng = np.random.default_rng(seed)
    regions = rng.choice(["north", "south", "east", "west"], n)
    acidity = rng.uniform(0, 20, n)
    sugar = rng.normal(5, 2, n)
    age = rng.integers(0, 50, n)
    grapes = rng.choice(["merlot", "syrah", "riesling", ""], n, p=[0.35, 0.3, 0.25, 0.1])
    score = (1.5 * sugar - 0.3 * acidity + np.where(regions == "south", 2.0, 0.0) + 0.05 * age
             + np.where(grapes == "syrah", 1.0, 0.0) + rng.normal(0, 0.3, n))
    cuts = np.quantile(score, [0.45, 0.70, 0.85, 0.95])
    labels = np.searchsorted(cuts, score)
    blank = rng.random(n) < 0.1  # blanks in the optional acidity: imputed, and the model still sees the rest
    return [{"sample_id": f"s{seed}-{i}", "quality": CLASSES[labels[i]], "region": regions[i],
             "acidity": "" if blank[i] else f"{acidity[i]:.2f}", "sugar": f"{sugar[i]:.3f}",
             "age_years": int(age[i]), "grape": grapes[i] or "NA"} for i in range(n)]


def write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))  # the label first, an extra column: any order
        writer.writeheader()
        writer.writerows(rows)


def named_request(schema: Schema, instances: list[dict]) -> dict[str, np.ndarray]:
    """What a TF-Serving-style ``{"instances": [{name: value}]}`` request feeds the named signature."""
    encoded = [schema.instance_for_serving(schema.parse_row(row)) for row in instances]
    return {f.name: np.array([row[f.name] for row in encoded], dtype=np.float32) if f.numeric
            else np.array([row[f.name].encode() for row in encoded], dtype=object) for f in schema.features}


@pytest.fixture
def wine(tmp_path):
    (tmp_path / "my_model.py").write_text(USER_MODEL)
    config = load_config(write_config(
        tmp_path, features=FEATURES, label={"column": "quality", "classes": CLASSES},
        gate={"metric": "macro_f1", "min_accuracy_percent": 40.0},
        train={"epochs": 40, "module": "my_model.py", "params": {"units": 24}, "learning_rate": 0.02}))
    inbox = layout.incoming_dir(config)
    for week in range(3):
        write_csv(inbox / f"week-{week}.csv", wine_rows(600, seed=week))
    bad = wine_rows(5, seed=9)
    bad[3]["region"] = "norht"
    write_csv(inbox / "typo.csv", bad)
    return config


def test_a_declared_table_is_validated_trained_gated_published_and_served(wine):
    lines = []
    result = run.retrain(wine, echo=lines.append)
    assert result.outcome == "promoted", result.message

    reason = (layout.quarantine_dir(wine) / "typo.csv.reason.txt").read_text()
    assert "line 5" in reason and "region" in reason and "'norht'" in reason, reason
    assert any("ignored its columns 'sample_id'" in line for line in lines), "the extra column is named"
    assert not any("bootstrap" in line for line in lines), "no synthetic rows for a declared table"

    store = ModelStore(wine.models_dir)
    metrics = store.metrics(result.version)
    assert metrics["schema"]["label"]["classes"] == CLASSES and list(metrics["schema"]["features"]) == list(FEATURES)
    assert metrics["gate"]["metric"] == "macro_f1"
    assert metrics["confusion"]["classes"] == CLASSES and len(metrics["confusion"]["counts"]) == 5
    assert sum(map(sum, metrics["confusion"]["counts"])) == metrics["dataset"]["eval_rows"]
    assert metrics["dataset"]["class_counts"]["A"] > 4 * metrics["dataset"]["class_counts"]["E"], "imbalanced"

    from modelops.trainer.model import network as model

    signature = model.load_signature(store.path(result.version))
    answer = signature.run(named_request(wine.schema, [
        {"region": "south", "acidity": 3.0, "sugar": 9.0, "age_years": 40, "grape": "syrah"},
        {"region": "north", "acidity": None, "sugar": 1.0, "age_years": 0, "grape": "unheard-of"},  # OOV, missing
    ]))
    probabilities = answer["probabilities"]
    assert probabilities.shape == (2, 5)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert [c.decode() for c in answer["class"]] == [CLASSES[i] for i in probabilities.argmax(axis=1)]
    assert probabilities[0].argmax() > probabilities[1].argmax(), "a high score ranks above a low one"

    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    from modelops.savedmodel import WARMUP_FILE

    records = [prediction_log_pb2.PredictionLog.FromString(r) for r in
               tf.compat.v1.io.tf_record_iterator(str(store.path(result.version) / WARMUP_FILE))]
    assert [sorted(r.predict_log.request.inputs) for r in records] == [sorted(FEATURES)] * 4, "warmup by name"
    assert [r.predict_log.request.model_spec.signature_name for r in records] == \
        ["serving_default"] * 2 + ["explain"] * 2, "the first explanation is not the slow one either"


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("import nonexistent_package_xyz\n", "does not import: ModuleNotFoundError"),
        ("def build_model(input_dim, num_classes, params):\n    raise ValueError('no units given')\n",
         "build_model raised ValueError: no units given"),
        ("import keras\ndef build_model(input_dim, num_classes, params):\n"
         "    return keras.Sequential([keras.Input((input_dim,)), keras.layers.Dense(3)])\n",
         "the model answers shape [None, 3], expected [None, 5]"),
        ("def build_model(input_dim, num_classes, params):\n    return 'a model'\n", "returned str, not a Keras model"),
    ],
)
def test_a_broken_model_module_fails_the_run_and_publishes_nothing(wine, module, expected):
    (wine.root / "my_model.py").write_text(module)
    result = run.retrain(wine, echo=lambda line: None)
    assert result.outcome == "failed"
    assert "train.module" in result.message and "my_model.py" in result.message and expected in result.message
    assert "Traceback" not in result.message
    assert ModelStore(wine.models_dir).versions() == [], "nothing published"
    record = history.read(wine.history_path)[-1]
    assert record["event"] == "failed" and expected in record["reasons"][0]


def test_a_declared_table_without_data_says_so(tmp_path):
    config = load_config(write_config(tmp_path, features=FEATURES, label={"column": "quality", "classes": CLASSES}))
    result = run.retrain(config, echo=lambda line: None)
    assert result.outcome == "failed"
    assert "no data yet" in result.message and "region,acidity,sugar,age_years,grape,quality" in result.message
    assert not list(layout.accepted_dir(config).glob("*.csv")), "no invented rows"


def test_a_served_model_of_another_schema_is_compared_through_its_own_signature(wine):
    first = run.retrain(wine, echo=lambda line: None)
    assert first.outcome == "promoted", first.message
    raw = json.loads((wine.root / "config.json").read_text())
    raw["features"]["body"] = {"type": "float", "optional": True}  # a new feature the old batches do not have
    raw["features"].pop("grape")
    (wine.root / "config.json").write_text(json.dumps(raw))
    changed = load_config(wine.root / "config.json")
    lines = []
    for week in range(3):
        rows = wine_rows(600, seed=20 + week)
        write_csv(layout.incoming_dir(changed) / f"new-{week}.csv", [{**r, "body": "1.0"} for r in rows])
    for old in layout.accepted_dir(changed).glob("week-*.csv"):
        old.unlink()  # the old batches lack 'body': moved out, as the run's message would ask
    result = run.retrain(changed, echo=lines.append)
    assert result.outcome in ("promoted", "rejected"), result.message
    champion = next(line for line in lines if "champion:" in line)
    assert "skipped" in champion and "grape" in champion, "the old model needs grape: the comparison is skipped"
    assert history.read(wine.history_path)[-1]["comparison"] is None, "no paired comparison either"
    served = next(line for line in status_lines(changed) if line.startswith("served schema:"))
    assert ("grape" in served) != (result.outcome == "promoted"), "status shows the served version's own schema"

    raw["features"]["grape"] = FEATURES["grape"]  # grape is back: the served model can be scored again
    (wine.root / "config.json").write_text(json.dumps(raw))
    again = load_config(wine.root / "config.json")
    for week in range(2):
        rows = wine_rows(600, seed=40 + week)
        write_csv(layout.incoming_dir(again) / f"later-{week}.csv", [{**r, "body": "2.0"} for r in rows])
    for old in layout.accepted_dir(again).glob("new-*.csv"):
        old.unlink()
    lines.clear()
    run.retrain(again, echo=lines.append)
    champion = next(line for line in lines if "champion:" in line)
    assert "macro_f1" in champion and "on the same eval rows" in champion, champion


def test_a_declared_table_is_compared_by_its_metric_sliced_by_its_features_and_reproduced(wine):
    """gate.metric macro_f1: a paired bootstrap; a category sliced by value, a number by edges;
    the lineage carries the user's model file, and reproduce retrains from the config copy's schema."""
    raw = json.loads((wine.root / "config.json").read_text())
    raw["gate"].update(slices=[{"feature": "region"}, {"feature": "sugar", "edges": [5]}], min_slice_rows=20)
    (wine.root / "config.json").write_text(json.dumps(raw))
    config = load_config(wine.root / "config.json")
    first = run.retrain(config, echo=lambda line: None)
    assert first.outcome == "promoted", first.message
    write_csv(layout.incoming_dir(config) / "week-3.csv", wine_rows(600, seed=3))
    lines = []
    second = run.retrain(config, echo=lines.append)
    assert second.outcome in ("promoted", "rejected"), second.message

    record = history.read(config.history_path)[-1]
    comparison = record["comparison"]
    assert comparison["method"].startswith("paired bootstrap of macro_f1")
    assert comparison["rows"] == record["eval_rows"] and comparison["significance"] == 0.05
    assert any("paired:" in line and "p=" in line for line in lines), "the run log shows the evidence"
    candidate = next(config.runs_dir.glob(f"*-v{second.version}")) if second.outcome == "rejected" else None
    metrics = json.loads((candidate / "metrics.json").read_text()) if candidate else \
        ModelStore(config.models_dir).metrics(second.version)
    found = metrics["gate"]["slices"]
    regions = [s for s in found if s["name"].startswith("region = ")]
    assert sorted(s["name"] for s in regions) == [f"region = {r}" for r in ("east", "north", "south", "west")]
    assert sum(s["rows"] for s in regions) == record["eval_rows"]
    assert [s["name"] for s in found if "sugar" in s["name"]] == ["sugar < 5", "sugar >= 5"]
    assert all(s["champion_percent"] is not None for s in found)
    lineage = metrics["lineage"]
    assert lineage["parent_version"] == first.version and len(lineage["train_module_sha256"]) == 64

    again = reproduce.reproduce(config, first.version, echo=lambda line: None)
    assert again.metric == "macro_f1" and again.within, again.lines()
    (wine.root / "my_model.py").write_text(USER_MODEL + "# edited\n")
    with pytest.raises(ReproduceError, match="my_model.py was changed since training"):
        reproduce.reproduce(config, first.version, echo=lambda line: None)
