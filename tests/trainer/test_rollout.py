"""Staged rollout: the decision on live evidence, state from the records, the serving config file.

No TensorFlow here: versions are plain directories, evidence is injected, serving is a fake.
"""

from __future__ import annotations

import dataclasses
import json
import os

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from harness.project import write_config
from modelops.core import history, rollout
from modelops.core.config import RolloutConfig, load_config
from modelops.core.errors import ConfigError, StoreError
from modelops.core.rollout import Evidence, Rollout
from modelops.core.store import ModelStore
from modelops.trainer import rollout_control
from tests.conftest import run_cli

CFG = RolloutConfig(mode="canary", shadow_fraction=0.1, canary_percent=10, min_requests=100, min_seconds=60,
                    max_seconds=600, on_timeout="abort", min_agreement=0.98, max_error_rate_increase=0.01,
                    max_p99_latency_ratio=2.0)
SHADOW = Rollout(stable=1, candidate=2, phase="shadow", since=1000.0, started=1000.0)
GOOD = Evidence(requests=200, errors=0, baseline_requests=1000, baseline_errors=1, compared=200, agreed=199,
                p99_seconds=0.004, baseline_p99_seconds=0.003)


def test_good_shadow_evidence_advances_to_canary_then_promotes():
    decision = rollout.decide(CFG, SHADOW, GOOD, now=1100.0)
    assert (decision.action, decision.phase) == ("advance", "canary")
    canary = dataclasses.replace(SHADOW, phase="canary")
    assert rollout.decide(CFG, canary, dataclasses.replace(GOOD, compared=0, agreed=0), 1100.0).action == "promote"


def test_shadow_only_mode_promotes_after_shadow():
    assert rollout.decide(dataclasses.replace(CFG, mode="shadow"), SHADOW, GOOD, 1100.0).action == "promote"


def test_canary_mode_without_shadow_fraction_skips_shadow():
    cfg = dataclasses.replace(CFG, shadow_fraction=0.0)
    assert rollout.next_phase(cfg, "loading") == "canary"
    assert rollout.next_phase(CFG, "loading") == "shadow"


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"agreed": 150}, "rollout.min_agreement"),
        ({"errors": 10}, "rollout.max_error_rate_increase"),
        ({"p99_seconds": 0.01}, "rollout.max_p99_latency_ratio"),
    ],
)
def test_evidence_out_of_bounds_aborts_naming_the_bound(change, key):
    decision = rollout.decide(CFG, SHADOW, dataclasses.replace(GOOD, **change), 1100.0)
    assert decision.action == "abort"
    assert any(key in reason for reason in decision.reasons)


def test_no_decision_before_min_requests_and_min_seconds():
    bad = dataclasses.replace(GOOD, agreed=0)
    assert rollout.decide(CFG, SHADOW, dataclasses.replace(bad, requests=99), 1100.0).action == "wait"
    assert rollout.decide(CFG, SHADOW, bad, 1059.0).action == "wait"


@pytest.mark.parametrize("on_timeout", ["promote", "abort"])
def test_no_traffic_for_max_seconds_ends_by_on_timeout(on_timeout):
    cfg = dataclasses.replace(CFG, on_timeout=on_timeout)
    decision = rollout.decide(cfg, SHADOW, Evidence(requests=3), now=1600.0)
    assert decision.action == on_timeout
    assert "rollout.on_timeout" in decision.reasons[0]


def test_quantile_interpolates_like_prometheus():
    buckets = [(0.001, 0.0), (0.002, 50.0), (0.004, 100.0), (float("inf"), 100.0)]
    assert rollout.quantile(0.5, buckets) == pytest.approx(0.002)
    assert rollout.quantile(0.99, buckets) == pytest.approx(0.00396)
    assert rollout.quantile(0.99, []) is None


def test_state_follows_the_records_and_skips_damaged_ones():
    records = [
        {"time": "2026-01-01T00:00:00Z", "event": "rollout-start", "version": 2, "stable_version": 1,
         "phase": "loading"},
        {"time": "2026-01-01T00:01:00Z", "event": "rollout-advance", "version": 2, "phase": "shadow"},
        {"time": "garbage", "event": "rollout-advance", "version": 2, "phase": "canary"},
    ]
    current = rollout.state(records)
    assert (current.stable, current.candidate, current.phase) == (1, 2, "shadow")
    assert current.since - current.started == 60
    assert rollout.state([*records, {"time": "2026-01-01T00:02:00Z", "event": "rollback", "version": 2}]) is None
    assert rollout.state([*records, {"time": "2026-01-01T00:02:00Z", "event": "rollout-promote"}]) is None


def test_serving_config_is_a_model_server_config_tf_serving_parses():
    text = rollout.serving_config("m", "/models/m", [3, 2], {"stable": 2, "canary": 3})
    parsed = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    config = parsed.model_config_list.config[0]
    assert (config.name, config.base_path, config.model_platform) == ("m", "/models/m", "tensorflow")
    assert list(config.model_version_policy.specific.versions) == [2, 3]
    assert dict(config.version_labels) == {"stable": 2, "canary": 3}


def test_evidence_is_read_from_the_frontends_metrics_and_summed():
    page = "\n".join([
        '# TYPE modelops_frontend_rollout_requests_total counter',
        'modelops_frontend_rollout_requests_total{label="canary",version="2",path="shadow",outcome="ok"} 90',
        'modelops_frontend_rollout_requests_total{label="canary",version="2",path="shadow",outcome="error"} 10',
        'modelops_frontend_rollout_requests_total{label="stable",version="1",path="user",outcome="ok"} 400',
        '# TYPE modelops_frontend_shadow_rows_total counter',
        'modelops_frontend_shadow_rows_total{version="2",result="agree"} 80',
        'modelops_frontend_shadow_rows_total{version="2",result="disagree"} 10',
        '# TYPE modelops_frontend_rollout_latency_seconds histogram',
        'modelops_frontend_rollout_latency_seconds_bucket{label="canary",version="2",path="shadow",le="0.01"} 90',
        'modelops_frontend_rollout_latency_seconds_bucket{label="canary",version="2",path="shadow",le="+Inf"} 90',
        'modelops_frontend_rollout_latency_seconds_count{label="canary",version="2",path="shadow"} 90',
        'modelops_frontend_rollout_latency_seconds_sum{label="canary",version="2",path="shadow"} 0.3',
    ]) + "\n"
    e = rollout.evidence([page, page], SHADOW)
    assert (e.requests, e.errors, e.baseline_requests, e.compared, e.agreed) == (200, 20, 800, 180, 160)
    assert e.p99_seconds == pytest.approx(0.0099)
    assert e.baseline_p99_seconds is None


# --- the I/O side, on a real store and history ---


class FakeServing:
    def __init__(self, available=()):
        self.available = set(available)

    def status(self):
        return [{"version": str(v), "state": "AVAILABLE"} for v in sorted(self.available)]


def _project(tmp_path, **rollout_cfg):
    config = load_config(write_config(tmp_path, rollout={"mode": "canary", "min_requests": 10, "min_seconds": 0,
                                                         **rollout_cfg}))
    store = ModelStore(config.models_dir)
    (config.models_dir / "1").mkdir(parents=True)
    return config, store


def _publish(config, store, version):
    """What the pipeline does: the hook, then the version appears."""
    rollout_control.before_publish(config, store, version)
    (config.models_dir / str(version)).mkdir()


def _labels(config):
    text = config.serving_config_path.read_text()
    parsed = text_format.Parse(text, model_server_config_pb2.ModelServerConfig()).model_config_list.config[0]
    return sorted(parsed.model_version_policy.specific.versions), dict(parsed.version_labels)


def test_a_good_candidate_walks_every_phase_with_a_record_and_a_config_file_each(tmp_path):
    config, store = _project(tmp_path)
    _publish(config, store, 2)
    assert _labels(config) == ([1, 2], {"stable": 1})  # loading: no label on a version not yet AVAILABLE
    serving = FakeServing({1, 2})
    good = lambda _r: GOOD  # noqa: E731
    steps = [rollout_control.tick(config, good, serving)[1].action for _ in range(3)]
    assert steps == ["advance", "advance", "promote"]
    assert _labels(config) == ([2], {})
    events = [(r["event"], r.get("phase")) for r in history.read(config.history_path)]
    assert events == [("rollout-start", "loading"), ("rollout-advance", "shadow"), ("rollout-advance", "canary"),
                      ("rollout-promote", None)]
    log = config.notifications_path.read_text()
    assert "ROLLOUT-PROMOTE" in log and "v2 is stable now" in log


def test_bad_shadow_evidence_retires_the_candidate_and_keeps_stable(tmp_path):
    config, store = _project(tmp_path)
    _publish(config, store, 2)
    serving = FakeServing({1, 2})
    rollout_control.tick(config, lambda _r: GOOD, serving)  # loading -> shadow
    _, decision = rollout_control.tick(config, lambda _r: dataclasses.replace(GOOD, agreed=100), serving)
    assert decision.action == "abort"
    assert store.versions() == [1] and store.retired() == [2]
    assert _labels(config) == ([1], {})
    assert history.read(config.history_path)[-1]["event"] == "rollout-abort"


def test_restart_resumes_from_the_records(tmp_path):
    config, store = _project(tmp_path)
    _publish(config, store, 2)
    rollout_control.tick(config, lambda _r: GOOD, FakeServing({1, 2}))
    config.serving_config_path.unlink()  # a fresh trainer, as after a crash: nothing in memory
    current, decision = rollout_control.tick(config, lambda _r: Evidence(), FakeServing({1, 2}))
    assert (current.phase, decision.action) == ("shadow", "wait")
    assert _labels(config) == ([1, 2], {"stable": 1, "canary": 2})


def test_a_second_candidate_waits_for_the_rollout_in_progress(tmp_path):
    config, store = _project(tmp_path)
    _publish(config, store, 2)
    with pytest.raises(StoreError, match="rollout of v2 is in progress"):
        rollout_control.before_publish(config, store, 3)


def test_direct_mode_config_names_the_model_with_the_default_latest_policy_and_no_records(tmp_path, monkeypatch):
    """What --model_name/--model_base_path mean to TF Serving: one model, no policy (latest), no label."""
    monkeypatch.delenv(rollout_control.BASE_PATH_ENV, raising=False)
    monkeypatch.delenv("MODEL_NAME", raising=False)
    config, store = _project(tmp_path, mode="direct")
    rollout_control.before_publish(config, store, 3)
    rollout_control.sync(config, store)
    parsed = text_format.Parse(config.serving_config_path.read_text(), model_server_config_pb2.ModelServerConfig())
    [model] = parsed.model_config_list.config
    assert (model.name, model.base_path, model.model_platform) == (
        "simple_classifier", str(config.models_dir.resolve()), "tensorflow")
    assert not model.HasField("model_version_policy") and not model.version_labels
    assert history.read(config.history_path) == []


def test_the_config_file_uses_the_model_name_and_models_path_serving_sees(tmp_path, monkeypatch):
    """Compose and Kubernetes mount the models at /models in TF Serving (TF_SERVING_BASE_PATH); the
    name is config.json's, and a MODEL_NAME that agrees changes nothing."""
    monkeypatch.setenv(rollout_control.BASE_PATH_ENV, "/models")
    monkeypatch.setenv("MODEL_NAME", "simple_classifier")
    config, store = _project(tmp_path, mode="direct", serving_base_path="/ignored")
    rollout_control.sync(config, store)
    [model] = text_format.Parse(config.serving_config_path.read_text(),
                                model_server_config_pb2.ModelServerConfig()).model_config_list.config
    assert (model.name, model.base_path) == ("simple_classifier", "/models")


def test_a_publish_under_a_renamed_model_rewrites_the_serving_config_before_the_version_appears(tmp_path, monkeypatch):
    """config.json's model_name changed since the service wrote the file: the run's publish tells serving."""
    monkeypatch.delenv("MODEL_NAME", raising=False)
    config, store = _project(tmp_path, mode="direct")
    rollout_control.sync(config, store)
    renamed = dataclasses.replace(config, model_name="penguins")
    rollout_control.before_publish(renamed, store, 2)
    [model] = text_format.Parse(config.serving_config_path.read_text(),
                                model_server_config_pb2.ModelServerConfig()).model_config_list.config
    assert model.name == "penguins"


def test_frontend_metrics_urls_come_from_the_list_or_every_address_of_a_headless_service():
    urls = rollout_control.frontend_metrics_urls
    assert urls({}) == [rollout_control.DEFAULT_FRONTEND_METRICS]
    assert urls({"FRONTEND_METRICS_URL": "http://a:1/metrics, http://b:2/metrics"}) == [
        "http://a:1/metrics", "http://b:2/metrics"]
    assert urls({"FRONTEND_HEADLESS_SERVICE": "127.0.0.1:5002"}) == ["http://127.0.0.1:5002/metrics"]
    assert urls({"FRONTEND_HEADLESS_SERVICE": "127.0.0.1"}) == ["http://127.0.0.1:5002/metrics"]
    assert urls({"FRONTEND_HEADLESS_SERVICE": "frontend-replicas.invalid:5002"}) == []  # no pod: no evidence
    with pytest.raises(ConfigError, match="FRONTEND_HEADLESS_SERVICE must be a headless Service name and port"):
        urls({"FRONTEND_HEADLESS_SERVICE": "frontend-replicas:http"})


def test_cli_rollout_abort_by_hand(tmp_path):
    config, store = _project(tmp_path)
    _publish(config, store, 2)
    result = run_cli("--config", str(config.root / "config.json"), "rollout", "abort", timeout=60)
    assert result.returncode == 0, result.stderr
    assert store.retired() == [2]
    status = run_cli("--config", str(config.root / "config.json"), "rollout", timeout=60)
    assert "no rollout in progress" in status.stdout
    assert json.loads(config.history_path.read_text().splitlines()[-1])["reasons"] == [
        "aborted by hand (retrain_pipeline.py rollout abort)"]


def test_trainer_metrics_say_when_the_phase_began_for_the_stuck_alert(tmp_path):
    from prometheus_client import CollectorRegistry, generate_latest

    from modelops.trainer.metrics import TrainerCollector

    config, store = _project(tmp_path)
    registry = CollectorRegistry()
    registry.register(TrainerCollector(config))
    assert "modelops_trainer_rollout_in_progress 0.0" in generate_latest(registry).decode()
    _publish(config, store, 2)
    text = generate_latest(registry).decode()
    assert "modelops_trainer_rollout_in_progress 1.0" in text
    assert "modelops_trainer_rollout_candidate_version 2.0" in text
    assert "modelops_trainer_rollout_phase_started_timestamp_seconds" in text


def test_settled_version_after_a_rollout_until_the_next_publish_or_rollback():
    end = {"time": "2026-01-01T00:00:00Z", "version": 2, "stable_version": 1}
    assert rollout.settled([{**end, "event": "rollout-abort"}]) == 1
    assert rollout.settled([{**end, "event": "rollout-promote"}]) == 2
    assert rollout.settled([{**end, "event": "rollout-abort"}, {"event": "rollback", "version": 1}]) is None
    assert rollout.settled([]) is None


def test_status_says_which_version_is_a_candidate(tmp_path):
    config, store = _project(tmp_path)
    _publish(config, store, 2)
    result = run_cli("--config", str(config.root / "config.json"), "status", timeout=60,
                     env={**os.environ, "FRONTEND_METRICS_URL": "http://127.0.0.1:9/metrics"})
    assert result.returncode == 0, result.stderr
    assert "v2 in loading since" in result.stdout and "v1 is stable" in result.stdout


def test_an_abort_cut_short_before_the_retire_is_finished_and_never_serves_the_candidate(tmp_path):
    config, store = _project(tmp_path)
    _publish(config, store, 2)
    history.append(config.history_path, "rollout-abort", version=2, stable_version=1)  # then the process died
    rollout_control.sync(config, store)
    assert _labels(config) == ([1], {}), "the aborted candidate is the highest version but must not be served"
    rollout_control.tick(config, lambda _r: GOOD, FakeServing({1, 2}))
    assert store.versions() == [1] and store.retired() == [2]
