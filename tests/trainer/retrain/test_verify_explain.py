"""Verification also asks serving's ``explain`` signature: the attributions the trainer computed
in-process at publication must come back from the local server, a mismatch rolls the version back,
and a version that recorded none (exported without the signature) is verified as before."""

from __future__ import annotations

import json
import os
import types

import numpy as np
import pytest

from modelops.core import history
from modelops.core.store import ModelStore
from modelops.trainer.model import network as model
from modelops.trainer.retrain import verify_explain
from tests.conftest import run_cli


def _verify_cli(config, client):
    return run_cli("--config", str(config.root / "config.json"), "verify",
                   env={**os.environ, "TF_HOST": client.base_url})


def _events(config) -> list[str]:
    return [r["event"] for r in history.read(config.history_path)]


def _edit_verification(config, change) -> None:
    path = config.models_dir / "1" / "metrics.json"
    metrics = json.loads(path.read_text())
    change(metrics["verification"])
    path.write_text(json.dumps(metrics))


def _verify_log(config) -> str:
    return (config.runs_dir / "last_verify_log.txt").read_text()


@pytest.mark.slow
def test_served_explanations_match_the_trainers(trained_project, serving):
    config = trained_project  # v1, published with nothing serving: awaits verification
    kept = ModelStore(config.models_dir).metrics(1)["verification"]["explain"]
    assert kept["rows"] == verify_explain.ROWS
    assert np.asarray(kept["attributions"]).shape == (verify_explain.ROWS, len(config.schema.features))
    client = serving(config, expect_version=1)
    result = _verify_cli(config, client)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _events(config)[-2:] == ["promote", "verified"]
    assert f"verify: {verify_explain.ROWS} explanations match the trainer's" in _verify_log(config)


@pytest.mark.slow
def test_explanations_that_differ_from_the_trainers_fail_verification(trained_project, serving):
    config = trained_project
    _edit_verification(config, lambda kept: kept["explain"].update(
        attributions=[[a + 0.01 for a in row] for row in kept["explain"]["attributions"]]))
    client = serving(config, expect_version=1)
    result = _verify_cli(config, client)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "explanations differ from the trainer's on 5 of 5 rows" in result.stdout + result.stderr
    assert _events(config)[-3:] == ["promote", "verify-failed", "rollback"]


@pytest.mark.slow
def test_a_version_that_recorded_no_explanations_is_verified_on_its_predictions(trained_project, serving, tmp_path):
    config = trained_project
    _edit_verification(config, lambda kept: kept.pop("explain"))  # as a version published before explanations
    client = serving(config, expect_version=1)
    result = _verify_cli(config, client)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _events(config)[-2:] == ["promote", "verified"]
    assert "explanations" not in _verify_log(config)

    older = tmp_path / "older"  # an export without the explain signature records nothing to check
    model.export(model.build(0.01, seed=1), older)
    split = types.SimpleNamespace(x_eval=np.zeros((8, 2), np.float32), text_eval=None)
    assert verify_explain.expected(older, config.schema, split, rows=50) is None


def test_a_number_labels_attributions_are_compared_relative_to_their_size():
    """In the label's own units (here thousands) float32's rounding is not a mismatch; a real one is."""
    from modelops.core.errors import VerifyError
    from modelops.trainer.retrain.verify import compare_explanations

    expected = np.asarray([[2500.0, -1200.0]])
    close = [{"attributions": [2500.1, -1200.05]}]
    assert "1 explanations match" in compare_explanations(close, expected, 1e-4, 3, relative=True)
    with pytest.raises(VerifyError, match="differ from the trainer's on 1 of 1 rows"):
        compare_explanations(close, expected, 1e-4, 3)  # absolute: as for probabilities
    with pytest.raises(VerifyError, match="differ from the trainer's on 1 of 1 rows"):
        compare_explanations([{"attributions": [2600.0, -1200.0]}], expected, 1e-4, 3, relative=True)
