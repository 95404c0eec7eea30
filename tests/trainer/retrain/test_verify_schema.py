"""A declared table's promotion verified on the local server through its named signature, and
``compare`` asking serving for named instances: both follow the schema, not the demo's x1, x2."""

from __future__ import annotations

import numpy as np
import pytest

from harness.processes import Serving
from harness.project import write_config
from modelops.core import history
from modelops.core.config import load_config
from modelops.core.store import ModelStore
from modelops.core.tfserving_client import ServingClient
from modelops.trainer import compare
from modelops.trainer.data import holdout, layout, windowed
from modelops.trainer.model import network as model
from modelops.trainer.retrain import run
from modelops.trainer.retrain.verify import ServingVerifier
from tests.conftest import quiet
from tests.trainer.test_your_data import CLASSES, FEATURES, USER_MODEL, wine_rows, write_csv

pytestmark = pytest.mark.slow


def test_a_declared_table_is_verified_on_serving_and_compared_by_class(tmp_path, monkeypatch):
    (tmp_path / "my_model.py").write_text(USER_MODEL)
    config = load_config(write_config(
        tmp_path, features=FEATURES, label={"column": "quality", "classes": CLASSES},
        gate={"metric": "macro_f1", "min_accuracy_percent": 40.0},
        train={"epochs": 20, "module": "my_model.py", "params": {"units": 16}, "learning_rate": 0.02},
        verify={"on_unreachable": "fail", "timeout_seconds": 90.0}))
    for week in range(2):
        write_csv(layout.incoming_dir(config) / f"week-{week}.csv", wine_rows(500, seed=week))
    server = Serving(config.models_dir, config.model_name)  # opens its port once v1 is published and loaded
    try:
        monkeypatch.setenv("TF_HOST", server.url)
        result = run.retrain(config, echo=quiet, verifier=ServingVerifier())
        assert (result.outcome, result.version) == ("promoted", 1), result.message
        assert [r["event"] for r in history.read(config.history_path)][-2:] == ["promote", "verified"]

        client = ServingClient(server.url, config.model_name, timeout=30)
        rows = compare.held_out_rows(config, limit=40)
        assert set(rows.x[0]) == set(FEATURES)
        report = compare.compare_served(config, client, ("served", "1"), rows)
        assert (report["class_agreement"], report["max_abs_diff"]) == (1.0, 0.0)
        assert report["a"]["accuracy_percent"] is not None

        served = compare.ask_serving(client, (1, 1), rows)[0][0]
        in_process = compare._in_process(ModelStore(config.models_dir).path(1), rows)
        assert [p.index for p in served] == [p.index for p in in_process]
        np.testing.assert_allclose([p.probabilities for p in served], [p.probabilities for p in in_process],
                                   atol=1e-5)
        signature = model.load_signature(ModelStore(config.models_dir).path(1))
        split = holdout.split(windowed.load_dataset(config), config.data.eval_percent, holdout.split_key(config))
        expected = model.predict(signature, split.x_eval[:40], config.schema, split.text_eval[:40])
        np.testing.assert_allclose([p.probabilities for p in in_process], expected, atol=1e-5)
    finally:
        server.stop()
