"""``--model_config_file``: several models, version policies, labels over REST and gRPC, reloads."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import requests

from harness.processes import Serving
from tests.localserving.conftest import ROWS, Target, close, local_only
from tests.localserving.test_rest import error_of

pytestmark = [pytest.mark.slow, pytest.mark.contract]


# -- labels and policies on the zoo (runs against a real TF Serving too) -------------------------


def test_labels_route_predict_and_metadata_to_their_versions(zoo):
    stable = zoo.post("/v1/models/half_plus_n/labels/stable:predict", {"instances": [2.0]})
    canary = zoo.post("/v1/models/half_plus_n/labels/canary:predict", {"instances": [2.0]})
    assert (stable.json(), canary.json()) == ({"predictions": [3.0]}, {"predictions": [4.0]})
    assert zoo.get("/v1/models/half_plus_n/labels/stable/metadata").json()["model_spec"]["version"] == "123"
    assert error_of(zoo.post("/v1/models/half_plus_n/labels/nope:predict", {"instances": [2.0]}), 400) == (
        "Unrecognized servable version label: nope"
    )


def test_all_policy_serves_every_version_and_each_model_has_its_status(zoo):
    statuses = zoo.get("/v1/models/half_plus_n").json()["model_version_status"]
    assert [(s["version"], s["state"]) for s in statuses] == [("124", "AVAILABLE"), ("123", "AVAILABLE")]
    assert zoo.get("/v1/models/tf2").json()["model_version_status"][0]["state"] == "AVAILABLE"


def test_grpc_version_label(zoo):
    if not zoo.grpc:
        pytest.skip("no gRPC address")
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "half_plus_n"
    request.model_spec.version_label = "stable"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.asarray([2.0], dtype=np.float32)))
    with grpc.insecure_channel(zoo.grpc) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(request, 30)
        assert response.model_spec.version.value == 123
        assert close(tf.make_ndarray(response.outputs["y"]).tolist(), [3.0])
        request.model_spec.version_label = "nope"
        with pytest.raises(grpc.RpcError) as raised:
            stub.Predict(request, 30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


# -- reloads (this server's own process) ---------------------------------------------------------


def config_text(**models: dict) -> str:
    """``name={"base": path, "policy": "all {}", "labels": {...}}`` -> a ModelServerConfig text."""
    blocks = []
    for name, spec in models.items():
        policy = f"model_version_policy {{ {spec['policy']} }}" if "policy" in spec else ""
        labels = " ".join(f"version_labels {{ key: '{k}' value: {v} }}" for k, v in spec.get("labels", {}).items())
        blocks.append(f"config {{ name: '{name}' base_path: '{spec['base']}' model_platform: 'tensorflow' "
                      f"{policy} {labels} }}")
    return "model_config_list {\n" + "\n".join(blocks) + "\n}\n"


@pytest.fixture(scope="module")
def reloading(models, tmp_path_factory):
    """Model ``m`` (versions 1: A, 2: B on disk; latest policy) from a config re-read every second."""
    root = tmp_path_factory.mktemp("reloading")
    for name, version in (("a", 1), ("b", 2)):
        models.publish(name, root / "m", version)
    models.publish("a", root / "other", 1)
    config = root / "models.config"
    config.write_text(config_text(m={"base": root / "m"}))
    server = Serving(root, "unused", "--model_config_file", str(config), "--model_config_file_poll_wait_seconds",
                     "1", "--allow_version_labels_for_unavailable_models", grpc=True)
    try:
        server.wait_listening()
        yield Target(server.url, "m", f"127.0.0.1:{server.grpc_port}", root), config, server
    finally:
        server.stop()


def predict(target: Target, path: str) -> requests.Response:
    return target.post(f"/v1/models/{path}:predict", {"instances": ROWS})


@local_only
def test_a_reload_adds_models_loads_versions_and_sets_labels_without_a_failed_request(reloading, models):
    target, config, _ = reloading
    root = target.model_dir
    failures: list[str] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            response = predict(target, "m")
            if response.status_code != 200:
                failures.append(response.text)

    client = threading.Thread(target=hammer)
    client.start()
    try:
        config.write_text(config_text(m={"base": root / "m", "policy": "specific { versions: 1 versions: 2 }",
                                         "labels": {"stable": 1}},
                                      other={"base": root / "other"}))
        target.wait_for(lambda t: predict(t, "m/labels/stable").status_code == 200, what="label stable on m")
        target.wait_for(lambda t: predict(t, "other").status_code == 200, what="model other")
        assert close(predict(target, "m/labels/stable").json()["predictions"], models.expected(root / "m" / "1"))
        assert close(predict(target, "m").json()["predictions"], models.expected(root / "m" / "2"))
    finally:
        stop.set()
        client.join(30)
    assert failures == []


@local_only
def test_a_label_on_an_unloaded_version_is_refused_unless_new_and_allowed(reloading):
    target, config, server = reloading
    root = target.model_dir
    # new label on a version not loaded: allowed by the flag, and requests through it are 404
    config.write_text(config_text(m={"base": root / "m", "labels": {"stable": 2, "old": 1}}))
    target.wait_for(lambda t: predict(t, "m/labels/old").status_code == 404, what="label old -> unloaded 1")
    # moving an existing label to an unloaded version is refused: the previous labels stay
    config.write_text(config_text(m={"base": root / "m", "labels": {"stable": 1, "old": 1}}))
    server.wait_for("Request to assign label to version 1 of model m", timeout=30)
    assert predict(target, "m/labels/stable").status_code == 200


@local_only
def test_a_model_left_out_is_unloaded_and_a_broken_file_changes_nothing(reloading):
    target, config, server = reloading
    root = target.model_dir
    config.write_text(config_text(m={"base": root / "m"}, other={"base": root / "other"}))
    target.wait_for(lambda t: predict(t, "other").status_code == 200, what="model other")
    config.write_text(config_text(m={"base": root / "m"}))
    target.wait_for(lambda t: predict(t, "other").status_code == 404, what="model other unloaded")
    assert target.get("/v1/models/other").json()["model_version_status"][0]["state"] == "END"
    config.write_text("model_config_list { config { name: 'm' base_path: ")
    server.wait_for("not a ModelServerConfig text proto", timeout=30)
    assert predict(target, "m").status_code == 200


@local_only
def test_grpc_reload_config_request_realises_a_config_at_once(reloading):
    import grpc
    from google.protobuf import text_format
    from tensorflow_serving.apis import model_management_pb2, model_service_pb2_grpc

    target, _, _ = reloading
    request = model_management_pb2.ReloadConfigRequest()
    text_format.Parse(config_text(m={"base": target.model_dir / "m", "labels": {"live": 2}},
                                  other={"base": target.model_dir / "other"}), request.config)
    with grpc.insecure_channel(target.grpc) as channel:
        stub = model_service_pb2_grpc.ModelServiceStub(channel)
        assert stub.HandleReloadConfigRequest(request, 60).status.error_code == 0
        assert predict(target, "m/labels/live").status_code == 200
        assert predict(target, "other").status_code == 200
        request.config.model_config_list.config[0].version_labels["live"] = 1  # not loaded: refused
        with pytest.raises(grpc.RpcError) as raised:
            stub.HandleReloadConfigRequest(request, 60)
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION


@local_only
@pytest.mark.parametrize(("text", "message"), [
    ("model_config_list { config { name: 'm' base_path: '/x' } }", "model_platform, model name is m"),
    ("model_config_list { config { name: 'm' base_path: ", "not a ModelServerConfig text proto"),
])
def test_a_bad_config_file_stops_the_server_with_the_reason(tmp_path, text, message):
    config = tmp_path / "models.config"
    config.write_text(text)
    server = Serving(tmp_path, "unused", "--model_config_file", str(config))
    try:
        assert server.proc.wait(120) == 255
    finally:
        server.stop()
    assert "Failed to start server" in server.output and message in server.output


@local_only
def test_a_missing_config_file_stops_the_server(tmp_path):
    """As TF Serving (ParseProtoTextFile fails in BuildAndStart): why compose and Kubernetes start serving
    only once the trainer has written the file."""
    server = Serving(tmp_path, "unused", "--model_config_file", str(tmp_path / "models.config"))
    try:
        assert server.proc.wait(120) == 255
    finally:
        server.stop()
    assert "Failed to start server" in server.output


@local_only
def test_the_trainers_direct_mode_file_serves_the_highest_version_and_hot_loads_a_new_one(models, tmp_path,
                                                                                          monkeypatch):
    """rollout.mode direct: serving runs from the file the trainer writes exactly as it would from
    --model_name/--model_base_path: the highest version serves, a new one loads and the old one unloads."""
    from harness.project import write_config
    from modelops.core.config import load_config
    from modelops.core.store import ModelStore
    from modelops.trainer import rollout_control

    monkeypatch.delenv(rollout_control.BASE_PATH_ENV, raising=False)
    monkeypatch.delenv("MODEL_NAME", raising=False)
    config = load_config(write_config(tmp_path, model_name="m", rollout={"mode": "direct"}))
    base = config.models_dir
    base.mkdir()
    models.publish("a", base, 1)
    models.publish("b", base, 2)
    rollout_control.sync(config, ModelStore(base))
    text = config.serving_config_path.read_text()
    empty = tmp_path / "not-used"  # the name and path flags are ignored when a config file is given
    empty.mkdir()
    server = Serving(empty, "unused", "--model_config_file", str(config.serving_config_path),
                     "--model_config_file_poll_wait_seconds", "1")
    try:
        server.wait_listening()
        target = Target(server.url, "m", model_dir=base)
        assert target.latest() == 2 and close(target.predict(), models.expected(base / "2"))
        models.publish("a", base, 3)
        target.wait_for(lambda t: t.latest() == 3 and t.statuses()[2]["state"] == "END", what="v3 in, v2 out")
        assert close(target.predict(), models.expected(base / "3"))
    finally:
        server.stop()
    assert config.serving_config_path.read_text() == text  # nothing to rewrite for a new version
