"""examples/penguins/README.md, run as written: an empty folder, the example's config.json, weekly
batches from the palmerpenguins package, one retrain; the export answers named instances."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

from harness import REPO
from modelops.core.config import load_config
from modelops.core.signature import SERVING_SIGNATURE
from modelops.core.store import ModelStore
from modelops.savedmodel import load_servable
from tests.conftest import run_cli
from tests.trainer.test_your_data import named_request

pytestmark = pytest.mark.slow

EXAMPLE = REPO / "examples" / "penguins"


def test_the_walk_through_trains_gates_publishes_and_serves_species(tmp_path):
    shutil.copy(EXAMPLE / "config.json", tmp_path / "config.json")
    split = subprocess.run([sys.executable, str(EXAMPLE / "split_batches.py"), "--out", "data/incoming",
                            "--weeks", "4"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert split.returncode == 0, split.stderr
    assert sorted(p.name for p in (tmp_path / "data" / "incoming").iterdir()) == [
        f"week-0{i}.csv" for i in range(1, 5)]

    result = run_cli("--config", str(tmp_path / "config.json"), timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 batch(es) accepted (344 rows), 0 quarantined" in result.stdout
    assert "ignored its columns 'year'" in result.stdout
    assert "PROMOTED v1" in result.stdout

    config = load_config(tmp_path / "config.json")
    status = run_cli("--config", str(tmp_path / "config.json"), "status", timeout=120)
    assert status.returncode == 0 and "species" in status.stdout and "island" in status.stdout, status.stdout

    servable = load_servable(1, ModelStore(config.models_dir).path(1))
    answer = servable.signatures[SERVING_SIGNATURE].run(named_request(config.schema, [
        {"island": "Biscoe", "bill_length_mm": 48.6, "bill_depth_mm": 16.0, "flipper_length_mm": 230,
         "body_mass_g": 5800, "sex": "male"},
        {"island": "Torgersen", "bill_length_mm": 39.1, "bill_depth_mm": 18.7, "flipper_length_mm": 181,
         "body_mass_g": 3750, "sex": ""},
        {"island": "Dream", "bill_length_mm": 50.9, "bill_depth_mm": 19.1, "flipper_length_mm": "",
         "body_mass_g": 3550, "sex": "female"},
    ]))
    assert answer["probabilities"].shape == (3, 3)
    np.testing.assert_allclose(answer["probabilities"].sum(axis=1), 1.0, atol=1e-5)
    assert [c.decode() for c in answer["class"]] == ["Gentoo", "Adelie", "Chinstrap"]
