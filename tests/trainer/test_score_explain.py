"""``retrain_pipeline.py score --explain`` against the project's serving server and a real SavedModel:
every scored row gets ``baseline_prediction`` and ``explain_<feature>`` per feature, which add up to
the predicted class's probability minus the baseline's (completeness, per row); a row with an error
leaves them blank; a version exported before explanations is a clear usage error."""

from __future__ import annotations

import csv
import io
import random

import pytest

from harness.processes import Serving
from harness.project import write_config
from modelops.core.config import TrainConfig
from modelops.core.schema import DEMO_SCHEMA
from modelops.trainer.data.synthetic import synthetic
from modelops.trainer.data.tables import Split
from modelops.trainer.model import explain, training
from modelops.trainer.model import network as model
from tests.trainer.test_score_command import MODEL, _score

pytestmark = pytest.mark.slow


def _file(path, rows: int = 300) -> None:
    rng = random.Random(32)
    table = [["id", "x2", "x1"]] + [[f"r{i}", f"{rng.uniform(-3, 3):.4f}", f"{rng.uniform(-3, 3):.4f}"]
                                    for i in range(rows)]
    table[min(100, rows)] = ["bad", "abc", "1"]
    with open(path, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(table)


def test_score_explain_adds_columns_that_add_up_per_row(tmp_path):
    x, y = synthetic(600, seed=5)
    training.train_candidate(TrainConfig(epochs=10), Split(x[:500], y[:500], x[500:], y[500:]),
                             tmp_path / "models" / "1", DEMO_SCHEMA)
    config = write_config(tmp_path)
    _file(tmp_path / "in.csv")
    server = Serving(tmp_path / "models", MODEL).wait_listening()
    try:
        done = _score(config, str(tmp_path / "in.csv"), "--explain", "--chunk-rows", "64", tf_host=server.url)
        plain = _score(config, str(tmp_path / "in.csv"), tf_host=server.url)
    finally:
        server.stop()
    assert done.returncode == 4, done.stderr.decode()
    out = list(csv.DictReader(io.StringIO(done.stdout.decode())))
    assert list(out[0])[-3:] == ["baseline_prediction", "explain_x1", "explain_x2"]
    assert len(out) == 300 and out[99]["id"] == "bad" and out[99]["error"]
    assert [out[99][c] for c in ("baseline_prediction", "explain_x1", "explain_x2")] == ["", "", ""]
    for row in out[:99] + out[100:]:
        explained = float(row[f"probability_{row['class']}"]) - float(row["baseline_prediction"])
        assert abs(float(row["explain_x1"]) + float(row["explain_x2"]) - explained) <= explain.COMPLETENESS_TOLERANCE
    # the answers themselves are the plain run's
    unexplained = list(csv.DictReader(io.StringIO(plain.stdout.decode())))
    assert "baseline_prediction" not in unexplained[0]
    assert [r["class"] for r in unexplained] == [r["class"] for r in out]


def test_a_version_without_the_explain_signature_is_a_usage_error(tmp_path):
    model.export(model.build(learning_rate=0.01, seed=3), tmp_path / "models" / "1")  # exported bare: no explain
    config = write_config(tmp_path)
    _file(tmp_path / "in.csv", rows=20)
    server = Serving(tmp_path / "models", MODEL).wait_listening()
    try:
        done = _score(config, str(tmp_path / "in.csv"), "--explain", tf_host=server.url)
    finally:
        server.stop()
    assert done.returncode == 2 and b"answers no explanations" in done.stderr and b"without --explain" in done.stderr
