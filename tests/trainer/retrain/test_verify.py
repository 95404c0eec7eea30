"""Post-promotion verification against serving: verified, wrong answers rolled back, unreachable."""

import json
import os
import socket

import numpy as np
import pytest

from modelops.core import history
from modelops.core.errors import ConfigError, ServingUnavailable, VerifyError
from modelops.core.notify import WEBHOOK_ENV
from modelops.core.schema import Feature, Label, Schema
from modelops.core.store import ModelStore
from modelops.trainer.retrain import late_verification, run
from modelops.trainer.retrain.verify import ServingVerifier, compare, replica_urls, serving_rows
from tests.conftest import quiet, run_cli
from tests.trainer.conftest import dead_url, scheduler, wait_served, with_config


def events(config) -> list[str]:
    return [r["event"] for r in history.read(config.history_path)]


@pytest.mark.slow
def test_cli_promotion_is_verified_on_serving(trained_project, serving):
    config = trained_project
    client = serving(config, expect_version=1)
    result = run_cli("--config", str(config.root / "config.json"), "retrain", "--force",  # the same data again
                     env={**os.environ, "TF_HOST": client.base_url})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[7/7] verify: v2 is served and answers like the gated model" in result.stdout
    assert events(config)[-2:] == ["promote", "verified"]
    wait_served(client, 2)


@pytest.mark.slow
def test_a_first_model_published_before_serving_ran_is_verified_once_serving_answers(trained_project, serving):
    config = trained_project  # v1 was published with nothing serving: its promotion awaits verification
    assert events(config) == ["promote"]
    assert late_verification.version_awaiting_verification(config, ModelStore(config.models_dir)) == 1
    client = serving(config, expect_version=1)
    result = run_cli("--config", str(config.root / "config.json"), "verify", env={**os.environ, "TF_HOST": client.base_url})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verified" in result.stdout
    assert events(config)[-2:] == ["promote", "verified"]
    assert late_verification.version_awaiting_verification(config, ModelStore(config.models_dir)) is None
    again = run_cli("--config", str(config.root / "config.json"), "verify", env={**os.environ, "TF_HOST": client.base_url})
    assert again.returncode == 0 and "nothing to verify" in again.stdout
    assert events(config)[-1] == "verified"


@pytest.mark.slow
def test_a_first_model_serving_answers_differently_for_is_rolled_back_when_verified_late(trained_project, serving):
    config = trained_project
    metrics_path = config.models_dir / "1" / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    metrics["verification"]["expected"] = [[1.0 - p[0]] for p in metrics["verification"]["expected"]]
    metrics_path.write_text(json.dumps(metrics))
    client = serving(config, expect_version=1)
    result = run_cli("--config", str(config.root / "config.json"), "verify", env={**os.environ, "TF_HOST": client.base_url})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "failed verification" in result.stderr
    assert events(config)[-3:] == ["promote", "verify-failed", "rollback"]
    assert ModelStore(config.models_dir).versions() == []


@pytest.mark.slow
def test_the_trainer_service_verifies_a_pending_first_model_once_serving_answers(trained_project, serving):
    config = with_config(trained_project, schedule={"cron": "0 0 1 1 *"})
    client = serving(config, expect_version=1)
    service = scheduler(config, TF_HOST=client.base_url)
    try:
        service.wait_for("verification finished: exit 0", timeout=120)
    finally:
        service.stop()
    assert events(config) == ["promote", "verified"]


@pytest.mark.slow
def test_served_model_that_answers_wrongly_is_rolled_back(trained_project, serving, monkeypatch, tmp_path):
    from modelops.trainer.model import network as model

    config = trained_project
    client = serving(config, expect_version=1)
    v1_answers = client.predict([[0.3, 0.4], [2.0, 1.0]], version=1)
    # What reaches models/ is not what the gate evaluated: an untrained model with other weights.
    tampered = tmp_path / "tampered"
    model.export(model.build(0.01, seed=1234), tampered)
    publish = ModelStore.publish
    monkeypatch.setattr(ModelStore, "publish", lambda self, _candidate, version, metrics:
                        publish(self, tampered, version, metrics))
    monkeypatch.setenv("TF_HOST", client.base_url)

    result = run.retrain(config, echo=quiet, verifier=ServingVerifier(), force=True)
    assert (result.outcome, result.exit_code, result.version) == ("rolled_back", 1, 2)
    assert "answers differ from the gated model" in result.message
    store = ModelStore(config.models_dir)
    assert (store.versions(), store.retired()) == ([1], [2])
    assert events(config)[-3:] == ["promote", "verify-failed", "rollback"]
    assert history.read(config.history_path)[-1]["to_version"] == 1
    log = config.notifications_path.read_text()
    assert "VERIFY-FAILED" in log and "ROLLBACK" in log and "v1 serves again" in log
    wait_served(client, 1)
    assert client.predict([[0.3, 0.4], [2.0, 1.0]]) == v1_answers


@pytest.mark.slow
def test_unreachable_serving_promotes_unverified_and_a_dead_webhook_is_harmless(trained_project, monkeypatch, capsys):
    config = with_config(trained_project, verify={"timeout_seconds": 1.0})
    monkeypatch.setenv("TF_HOST", dead_url())
    monkeypatch.setenv(WEBHOOK_ENV, dead_url() + "/hook")
    result = run.retrain(config, echo=quiet, verifier=ServingVerifier(poll_seconds=0.1), force=True)
    assert (result.outcome, result.exit_code, result.version) == ("promoted", 0, 2)
    assert "UNVERIFIED" in result.message and "not reachable" in result.message
    assert ModelStore(config.models_dir).versions() == [1, 2]
    assert events(config)[-2:] == ["promote", "unverified"]
    log = config.notifications_path.read_text()
    assert "UNVERIFIED" in log and "WEBHOOK-FAILED" in log
    assert "not delivered" in capsys.readouterr().err


@pytest.mark.slow
def test_unreachable_serving_in_fail_mode_rolls_back(trained_project, monkeypatch):
    config = with_config(trained_project, verify={"timeout_seconds": 1.0, "on_unreachable": "fail"})
    monkeypatch.setenv("TF_HOST", dead_url())
    result = run.retrain(config, echo=quiet, verifier=ServingVerifier(poll_seconds=0.1), force=True)
    assert (result.outcome, result.exit_code) == ("rolled_back", 1)
    assert "verify.on_unreachable is fail" in result.message
    assert ModelStore(config.models_dir).versions() == [1]
    assert events(config)[-3:] == ["promote", "verify-failed", "rollback"]


class FakeClient:
    model_name = "m"

    def __init__(self, entries, answers=None, base_url="http://fake"):
        self.entries, self.answers, self.base_url = entries, answers, base_url
        self.shown_url = base_url  # no credentials in these

    def status(self):
        if self.entries is None:
            raise ServingUnavailable(f"TF Serving at {self.base_url} is not reachable")
        return self.entries

    def predict(self, rows, version):
        return self.answers


def _listing(*available):
    return [{"version": str(v), "state": "AVAILABLE", "status": {"error_code": "OK"}} for v in available]


EXPECTED = np.array([[0.25], [0.75]], dtype=np.float32)


def _verify(config, *replicas):
    quick = with_config(config, verify={"timeout_seconds": 0.3, "unreachable_seconds": 0.2})
    ServingVerifier(clients=list(replicas), poll_seconds=0.05)(quick, 2, np.zeros((2, 2)), EXPECTED, _Log())


def test_every_replica_must_serve_the_version(project):
    good = FakeClient(_listing(2, 1), EXPECTED.tolist(), "http://10.0.0.1:8501")
    _verify(project, good, FakeClient(_listing(2), EXPECTED.tolist(), "http://10.0.0.2:8501"))
    lagging = FakeClient(_listing(1), EXPECTED.tolist(), "http://10.0.0.3:8501")
    with pytest.raises(VerifyError, match=r"replica http://10\.0\.0\.3:8501: .*did not report v2 AVAILABLE"):
        _verify(project, good, lagging)


def test_a_replica_that_answers_differently_is_named(project):
    good = FakeClient(_listing(2), EXPECTED.tolist(), "http://10.0.0.1:8501")
    drifted = FakeClient(_listing(2), [[0.25], [0.5]], "http://10.0.0.2:8501")
    with pytest.raises(VerifyError, match=r"replica http://10\.0\.0\.2:8501: v2 answers differ .* 1 of 2 rows"):
        _verify(project, good, drifted)


def test_a_silent_replica_fails_verification_when_others_answer(project):
    good = FakeClient(_listing(2), EXPECTED.tolist(), "http://10.0.0.1:8501")
    with pytest.raises(VerifyError, match=r"replica http://10\.0\.0\.9:8501: .*not reachable"):
        _verify(project, good, FakeClient(None, base_url="http://10.0.0.9:8501"))
    with pytest.raises(ServingUnavailable, match="not reachable"):  # none answers: serving is down
        _verify(project, FakeClient(None, base_url="http://10.0.0.8:8501"), FakeClient(None))


def test_replicas_come_from_the_list_else_the_headless_service_else_tf_host(monkeypatch):
    listed = {"TF_SERVING_REPLICAS": " 10.0.0.1:8501, http://10.0.0.2:8501/ ,", "TF_HOST": "http://svc:8501"}
    assert replica_urls(listed) == ["http://10.0.0.1:8501", "http://10.0.0.2:8501"]
    assert replica_urls({"TF_HOST": "http://svc:8501"}) == ["http://svc:8501"]
    assert replica_urls({}) == ["http://localhost:8501"]

    records = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.0.4", 8501)),
               (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.0.5", 8501)),
               (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.0.4", 8501)),
               (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("fd00::7", 8501, 0, 0))]
    asked = []
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, port, **kw: asked.append((host, port)) or records)
    headless = {"TF_SERVING_HEADLESS_SERVICE": "tfserving-replicas:8501", "TF_HOST": "http://svc:8501"}
    assert replica_urls(headless) == ["http://10.1.0.4:8501", "http://10.1.0.5:8501", "http://[fd00::7]:8501"]
    assert replica_urls({"TF_SERVING_HEADLESS_SERVICE": "tfserving-replicas"})[0] == "http://10.1.0.4:8501"
    assert asked == [("tfserving-replicas", 8501), ("tfserving-replicas", 8501)]


@pytest.mark.parametrize("env, message", [
    ({"TF_SERVING_REPLICAS": "http://10.0.0.1:8501,ftp://x"}, "TF_SERVING_REPLICAS must list .* 'ftp://x'"),
    ({"TF_SERVING_REPLICAS": " , "}, "TF_SERVING_REPLICAS lists no address"),
    ({"TF_SERVING_HEADLESS_SERVICE": "tfserving-replicas:http"}, "TF_SERVING_HEADLESS_SERVICE must be"),
])
def test_a_malformed_replica_setting_names_the_variable(env, message):
    with pytest.raises(ConfigError, match=message):
        replica_urls(env)


def test_an_unresolvable_headless_service_leaves_the_promotion_unverified(project, monkeypatch):
    monkeypatch.setenv("TF_SERVING_HEADLESS_SERVICE", "no-such-service.invalid:8501")
    with pytest.raises(ServingUnavailable, match="cannot resolve 'no-such-service.invalid'"):
        ServingVerifier()(project, 2, np.zeros((3, 2)), np.zeros((3, 1)), _Log())


def test_a_version_serving_failed_to_load_fails_verification_at_once(project):
    entries = [{"version": "2", "state": "END", "status": {"error_code": "NOT_FOUND", "error_message": "no .pb"}},
               {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]
    with pytest.raises(VerifyError, match="failed to load v2: no .pb"):
        ServingVerifier(clients=[FakeClient(entries)])(project, 2, np.zeros((3, 2)), np.zeros((3, 1)), _Log())


def test_a_malformed_tf_host_leaves_the_promotion_unverified_with_the_reason(project, monkeypatch):
    monkeypatch.setenv("TF_HOST", "http://tfserving:85o1")
    with pytest.raises(ServingUnavailable, match="TF_HOST must be TF Serving's REST address"):
        ServingVerifier()(project, 2, np.zeros((3, 2)), np.zeros((3, 1)), _Log())


def test_compare_catches_drift_nan_and_shape():
    expected = np.array([[0.25], [0.75]], dtype=np.float32)
    compare([[0.25], [0.75001]], expected, 1e-4, 3)
    with pytest.raises(VerifyError, match="1 of 2 rows"):
        compare([[0.25], [0.8]], expected, 1e-4, 3)
    with pytest.raises(VerifyError, match="1 of 2 rows"):
        compare([[0.25], [float("nan")]], expected, 1e-4, 3)
    with pytest.raises(VerifyError, match="shape"):
        compare([0.25, 0.75], expected, 1e-4, 3)


PENGUINS = Schema((Feature("island", "category", ("Biscoe", "Dream")), Feature("bill", "float", optional=True)),
                  Label("species", ("Adelie", "Chinstrap", "Gentoo")))


def test_a_named_schema_is_verified_on_every_class_probability():
    rows = serving_rows(PENGUINS, [{"island": "Dream", "bill": None}, {"island": "Biscoe", "bill": 41.0}])
    assert rows[0]["island"] == "Dream" and np.isnan(rows[0]["bill"]) and rows[1] == {"island": "Biscoe", "bill": 41.0}
    expected = np.array([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1]], dtype=np.float32)
    answers = [{"probabilities": [0.1, 0.7, 0.2], "class": "Chinstrap"},
               {"probabilities": [0.6, 0.3, 0.1], "class": "Adelie"}]
    compare(answers, expected, 1e-4, 4, PENGUINS)
    with pytest.raises(VerifyError, match="1 of 2 rows"):
        compare([answers[0], {"probabilities": [0.3, 0.6, 0.1], "class": "Chinstrap"}], expected, 1e-4, 4, PENGUINS)
    with pytest.raises(VerifyError, match="not numbers"):
        compare([[0.7], [0.6]], expected, 1e-4, 4, PENGUINS)


class _Log:
    def note(self, _message):
        pass

    detail = note


def test_a_number_label_is_verified_within_a_tolerance_of_its_size():
    """Values in the user's units: 1e-4 of a value of 2,000 is 0.2, of a value below 1 it is 1e-4."""
    cars = Schema((Feature("w"),), Label("mpg", (), "number"))
    expected = np.asarray([2000.0, 0.5])
    assert "2 rows match" in compare([2000.1, 0.50005], expected, 1e-4, 3, cars)
    with pytest.raises(VerifyError, match="differ from the gated model on 1 of 2 rows"):
        compare([2000.1, 0.51], expected, 1e-4, 3, cars)
    with pytest.raises(VerifyError, match="not numbers"):
        compare([{"class": "a"}, 1.0], expected, 1e-4, 3, cars)
