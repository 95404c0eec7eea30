"""``retrain_pipeline.py score`` for a model that predicts a number (a real SavedModel behind the
project's serving server): each row gets its ``value`` (what TF Serving answers for it), a broken
row its error; with ``--explain`` the contributions add up to the value minus the baseline's."""

from __future__ import annotations

import csv
import io
import json
import shutil

import numpy as np
import pytest
import requests

from harness.processes import Serving
from harness.project import write_config
from modelops.trainer.model import explain
from tests.trainer.model.test_explain_number import SCHEMA
from tests.trainer.model.test_explain_number import regression as regression  # the trained model (a fixture)
from tests.trainer.test_score_command import MODEL, _score

pytestmark = pytest.mark.slow


def test_a_number_labels_file_is_scored_with_its_values_and_explained(regression, tmp_path):
    split, path, _ = regression
    shutil.copytree(path, tmp_path / "models" / "1")
    config = write_config(tmp_path, **SCHEMA.to_config())
    rows = [["id", "origin", "weight", "noise"], ["a", "Japan", "2200", "0.1"], ["b", "USA", "4100", ""],
            ["c", "Mars", "3000", "0"], ["d", "Europe", "2900", "-1.5"]]
    source = tmp_path / "cars.csv"
    source.write_text("".join(",".join(row) + "\n" for row in rows))
    server = Serving(tmp_path / "models", MODEL).wait_listening()
    try:
        plain = _score(config, str(source), tf_host=server.url)
        explained = _score(config, str(source), "--explain", tf_host=server.url)
        good = [dict(zip(("origin", "weight", "noise"), row[1:], strict=True)) for row in rows[1:] if row[1] != "Mars"]
        instances = [SCHEMA.instance_for_serving(SCHEMA.parse_row(row)) for row in good]
        served = requests.post(f"{server.url}/v1/models/{MODEL}:predict", timeout=30,
                               data=json.dumps({"instances": instances})).json()["predictions"]  # NaN: missing
    finally:
        server.stop()
    assert plain.returncode == 4 and explained.returncode == 4, plain.stderr.decode() + explained.stderr.decode()
    out = list(csv.DictReader(io.StringIO(plain.stdout.decode())))
    assert list(out[0]) == ["id", "origin", "weight", "noise", "value", "model_version", "error"]
    assert [r["id"] for r in out] == ["a", "b", "c", "d"]
    assert out[2]["value"] == "" and "origin" in out[2]["error"] and "Mars" in out[2]["error"]
    scored = [r for r in out if not r["error"]]
    assert [float(r["value"]) for r in scored] == pytest.approx(served, rel=1e-5)
    why = list(csv.DictReader(io.StringIO(explained.stdout.decode())))
    assert [r["value"] for r in why] == [r["value"] for r in out]
    tolerance = explain.COMPLETENESS_TOLERANCE * float(np.std(split.y_train))
    for row in (r for r in why if not r["error"]):
        total = sum(float(row[f"explain_{name}"]) for name in SCHEMA.names)
        assert total == pytest.approx(float(row["value"]) - float(row["baseline_prediction"]), abs=tolerance)

