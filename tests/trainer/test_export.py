"""The export runs under TF Serving's loader (graph + Session + SaverDef restore), not only under
``tf.saved_model.load``, which forgives exports the stock server cannot run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from modelops.core.errors import ServableError
from modelops.savedmodel import load_servable
from modelops.trainer.model import network as model
from tests.conftest import export_unservable
from tests.localserving.saved_models import write_unrunnable_warmup

pytestmark = pytest.mark.slow

ROWS = np.array([[1.5, 2.3], [0.1, 0.2], [-1.0, 3.0]], dtype=np.float32)


@pytest.fixture(scope="module")
def trained():
    classifier = model.build(learning_rate=0.05, seed=3)
    x = np.random.default_rng(3).uniform(-1, 2, size=(256, 2)).astype(np.float32)
    classifier.fit(x, (x.sum(axis=1) > 1).astype(np.float32), epochs=3, verbose=0)
    return classifier


def test_saved_model_cli_runs_the_export_like_tensorflow_model_server(trained, tmp_path):
    """``saved_model_cli run`` loads with the TF1 loader, as tensorflow_model_server's C++ does."""
    model.export(trained, tmp_path / "1")
    cli = Path(sys.executable).parent / "saved_model_cli"
    rows = ",".join(f"[{a},{b}]" for a, b in ROWS.tolist())
    done = subprocess.run(
        [str(cli), "run", "--dir", str(tmp_path / "1"), "--tag_set", "serve", "--signature_def", "serving_default",
         "--input_exprs", f"x=[{rows}]"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    printed = re.search(r"Result for output key probability:\s*(\[\[.*?\]\])\s*$", done.stdout, re.S)
    assert printed, done.stdout
    answered = np.array([float(v) for v in re.findall(r"[-+0-9.e]+", printed.group(1))])
    np.testing.assert_allclose(answered, trained(ROWS).numpy().ravel(), atol=1e-6)


def test_the_gate_and_the_local_server_score_the_export_as_keras_does(trained, tmp_path):
    model.export(trained, tmp_path / "1")
    probabilities = model.predict(model.load_signature(tmp_path / "1"), ROWS)
    assert probabilities.shape == (len(ROWS), 1)
    np.testing.assert_allclose(probabilities, trained(ROWS).numpy(), atol=1e-6)


def test_an_export_tf_serving_could_not_run_fails_here_too(trained, tmp_path):
    """tf.saved_model.load runs the old export; TF Serving, and so the local server, refuse it."""
    export_unservable(trained, tmp_path / "1")
    forgiving = tf.saved_model.load(str(tmp_path / "1")).signatures["serving_default"]
    assert forgiving(x=tf.constant(ROWS))["probability"].shape == (len(ROWS), 1)
    with pytest.raises(ServableError) as refused:
        load_servable(1, tmp_path / "1").signatures["serving_default"].run({"x": ROWS})
    assert refused.value.code == "FAILED_PRECONDITION"
    assert refused.value.message.startswith("Could not find variable ")  # TF Serving's text


def test_the_export_carries_warmup_records_tf_serving_replays(trained, tmp_path):
    from tensorflow_serving.apis import prediction_log_pb2

    model.export(trained, tmp_path / "1", warmup_rows=ROWS)
    records = list(tf.compat.v1.io.tf_record_iterator(str(tmp_path / "1" / "assets.extra" / "tf_serving_warmup_requests")))
    logs = [prediction_log_pb2.PredictionLog.FromString(r) for r in records]
    assert [tf.make_ndarray(log.predict_log.request.inputs["x"]).shape for log in logs] == [(1, 2), (3, 2)]
    assert all(log.predict_log.request.model_spec.signature_name == "serving_default" for log in logs)
    assert load_servable(1, tmp_path / "1").warmup_records == 2


def test_a_warmup_record_the_model_cannot_run_fails_the_load(trained, tmp_path):
    model.export(trained, tmp_path / "1")
    write_unrunnable_warmup(tmp_path / "1")
    with pytest.raises(ServableError) as raised:
        load_servable(1, tmp_path / "1")
    assert raised.value.code == "INVALID_ARGUMENT"
