"""Issue 33 (6): ``retention`` prunes old versions, batches and cached copies, never what serving,
a rollback or the current window needs, and ``reproduce`` says when retention took its inputs."""

from __future__ import annotations

import json
import os
import time

import pytest

from harness.project import write_config
from modelops.core import history
from modelops.core.config import load_config
from modelops.core.errors import ConfigError, ReproduceError
from modelops.core.store import RETIRED_DIR, ModelStore
from modelops.trainer import lineage, reproduce, retention
from tests.conftest import quiet, run_cli

DAY = 86400


def _version(config, version, batches=(), retired=False):
    """A published (or retired) version folder with the lineage ``reproduce`` checks."""
    home = config.models_dir / (RETIRED_DIR if retired else "") / str(version)
    home.mkdir(parents=True)
    text = config.source_text
    (home / "config.json").write_text(text)
    metrics = {"test_accuracy_percent": 99.0, "lineage": {
        "dataset_files": list(batches), "config_sha256": lineage.sha256(text), "dataset_fingerprint": "x",
        "eval_fingerprint": "y", "train_module_sha256": None}}
    (home / "metrics.json").write_text(json.dumps(metrics))


def _batch(config, name, age_days, cached=True):
    accepted = config.data_dir / "accepted"
    accepted.mkdir(parents=True, exist_ok=True)
    path = accepted / name
    path.write_text("x1,x2,label\n0.1,0.2,1\n")
    then = time.time() - age_days * DAY
    os.utime(path, (then, then))
    if cached:
        cache = config.data_dir / "cache"
        cache.mkdir(parents=True, exist_ok=True)
        copy = cache / f"{name}.20-{int(then)}-abc.npy"
        copy.write_bytes(b"")
        os.utime(copy, (then, then))
    return path


def _config(tmp_path, **retention_keys):
    return load_config(write_config(tmp_path, retention=retention_keys, data={"window": {"max_batches": 1,
                                                                                         "max_rows": 100_000}}))


def _state(config):
    return (sorted(os.listdir(config.models_dir)), sorted(os.listdir(config.data_dir / "accepted")),
            sorted(os.listdir(config.data_dir / "cache")))


@pytest.fixture
def crowded(tmp_path):
    """Versions 1-5 served, 6 retired (rolled back); four batches from 100 days to 1 day old."""
    def make(**retention_keys):
        config = _config(tmp_path, **retention_keys)
        for v in range(1, 6):
            _version(config, v, batches=["trained-on.csv"] if v == 5 else ())
        _version(config, 6, retired=True)
        _batch(config, "ancient.csv", 100)
        _batch(config, "trained-on.csv", 90)
        _batch(config, "middle.csv", 50)
        _batch(config, "newest.csv", 1)
        return config
    return make


def test_by_default_nothing_is_pruned(crowded):
    config = crowded()
    before = _state(config)
    lines = []
    assert retention.prune(config, ModelStore(config.models_dir), lines.append) == {}
    assert _state(config) == before and lines == []


def test_old_versions_batches_and_copies_go_but_never_what_serving_rollback_or_the_window_needs(crowded):
    config = crowded(keep_versions=2, accepted_days=30, cache_days=10)
    lines = []
    pruned = retention.prune(config, ModelStore(config.models_dir), lines.append)
    models, accepted, cache = _state(config)
    # v5 served, v4 the rollback target; v6 is among the two newest numbers
    assert [m for m in models if m.isdigit()] == ["4", "5"] and os.listdir(config.models_dir / RETIRED_DIR) == ["6"]
    # newest.csv is the window (max_batches 1), v5 was trained on trained-on.csv
    assert accepted == ["newest.csv", "trained-on.csv"]
    assert [c.split(".csv")[0] for c in cache] == ["newest"]
    assert pruned["version"] == ["1", "2", "3"] and pruned["batch"] == ["ancient.csv", "middle.csv"]
    assert lines == ["retention: pruned 3 version(s), 2 accepted batch(es), 3 cached copies (v1, v2, v3)"]


def test_both_sides_of_a_staged_rollout_are_kept(crowded):
    config = crowded(keep_versions=1)
    history.append(config.history_path, history.Event.ROLLOUT_START, stable_version=2, version=5, phase="shadow")
    retention.prune(config, ModelStore(config.models_dir), quiet)
    assert sorted(m for m in os.listdir(config.models_dir) if m.isdigit()) == ["2", "4", "5"]


def test_reproduce_says_when_retention_pruned_the_version_or_its_batches(crowded):
    config = crowded(keep_versions=2, accepted_days=30)
    _version(config, 7, batches=["middle.csv"], retired=True)
    retention.prune(config, ModelStore(config.models_dir), quiet)
    with pytest.raises(ReproduceError, match=r"no version 1: .*pruned by retention .*: v1 on "):
        reproduce.reproduce(config, 1, echo=quiet)
    with pytest.raises(ReproduceError, match=r"middle\.csv no longer in .*pruned by retention .*: middle\.csv on "):
        reproduce.reproduce(config, 7, echo=quiet)


def test_a_missing_batch_retention_did_not_prune_is_not_blamed_on_it(crowded):
    config = crowded(keep_versions=2)
    _version(config, 7, batches=["middle.csv"], retired=True)
    (config.data_dir / "accepted" / "middle.csv").unlink()
    with pytest.raises(ReproduceError) as err:
        reproduce.reproduce(config, 7, echo=quiet)
    assert "middle.csv no longer in" in str(err.value) and "pruned" not in str(err.value)


@pytest.mark.parametrize("key,value", [("keep_versions", -1), ("accepted_days", "30"), ("cache_days", -0.5)])
def test_a_bad_retention_value_is_refused_naming_the_key(tmp_path, key, value):
    with pytest.raises(ConfigError, match=f"'retention.{key}'"):
        load_config(write_config(tmp_path, retention={key: value}))


def test_a_retrain_prunes_at_its_end_and_says_so_in_the_run_log(trained_project):
    config = trained_project
    _batch(config, "ancient.csv", 100, cached=False)
    raw = json.loads((config.root / "config.json").read_text())
    raw["retention"]["accepted_days"] = 30
    raw["data"]["window"]["max_batches"] = 1  # the bootstrap batch, newer than ancient.csv
    (config.root / "config.json").write_text(json.dumps(raw))
    result = run_cli("--config", str(config.root / "config.json"), "retrain", timeout=300)
    assert result.returncode in (0, 3), result.stderr
    assert "retention: pruned 1 accepted batch(es)" in config.train_log_path.read_text()
    assert not (config.data_dir / "accepted" / "ancient.csv").exists()
