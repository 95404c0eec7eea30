"""Shared fixtures: a throwaway project directory with its own config.json and state."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import REPO
from harness.project import write_config
from modelops.core.config import load_config


def quiet(_line: str) -> None:
    """An ``echo`` for pipeline runs that keeps test output clean."""


@pytest.fixture
def project(tmp_path):
    """A Config rooted in an empty temp project (no models, no data yet)."""
    return load_config(write_config(tmp_path))


@pytest.fixture(scope="session")
def _trained_template(tmp_path_factory):
    """One real retrain (v1 from the bootstrap data), done once per session; tests copy it."""
    root = tmp_path_factory.mktemp("trained")
    config = load_config(write_config(root))
    from modelops.trainer.retrain import run

    result = run.retrain(config, echo=quiet)
    assert result.outcome == "promoted", result.message
    return root


@pytest.fixture
def trained_project(_trained_template, tmp_path):
    """A Config rooted in a temp project that already serves v1 (a copy of the session's)."""
    root = tmp_path / "project"
    shutil.copytree(_trained_template, root)
    return load_config(root / "config.json")


def run_cli(*args, cwd=REPO, timeout=120, **kwargs) -> subprocess.CompletedProcess:
    """Run ``retrain_pipeline.py`` as cron would, capturing its output."""
    return subprocess.run(
        [sys.executable, str(REPO / "retrain_pipeline.py"), *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout, **kwargs,
    )


def assert_no_partial_version(models_dir: Path) -> list[int]:
    """Every numeric directory is a complete SavedModel with metrics that TF can load."""
    from modelops.trainer.model import network as model

    versions = sorted(int(p.name) for p in Path(models_dir).iterdir() if p.name.isdigit())
    for v in versions:
        d = Path(models_dir) / str(v)
        assert (d / "saved_model.pb").is_file(), f"v{v} lacks saved_model.pb"
        assert list((d / "variables").glob("variables.data-*")), f"v{v} lacks variables"
        assert json_load(d / "metrics.json")["version"] == v
        model.load_signature(d)
    return versions


def json_load(path: Path):
    return json.loads(Path(path).read_text())


def export_unservable(classifier, path: Path) -> None:
    """The export this project used to write: a tf.Module holding the Keras 3 model, saved with
    tf.saved_model.save. tf.saved_model.load runs it; TF Serving's loader answers every request
    with FAILED_PRECONDITION "Could not find variable"."""
    import tensorflow as tf

    class Holder(tf.Module):
        def __init__(self):
            super().__init__()
            self.classifier = classifier

        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")])
        def serve(self, x):
            return {"probability": self.classifier(x, training=False)}

    holder = Holder()
    tf.saved_model.save(holder, str(path), signatures={"serving_default": holder.serve})
