"""Hostile requests cost only their sender: each is refused with a clear error, and the server keeps
answering everyone else (the test's last step every time)."""

from __future__ import annotations

import gzip
import socket
import threading
import time

import numpy as np
import pytest

from harness.processes import Serving
from tests.localserving.conftest import MODEL, ROWS, local_only
from tests.localserving.test_rest import error_of

pytestmark = [pytest.mark.slow, pytest.mark.contract, local_only]

LIMIT = 100_000  # bytes: REST body and gRPC message


@pytest.fixture(scope="module")
def limited(models, tmp_path_factory):
    """Two REST threads, a 2 s request deadline, 100 kB bodies and gRPC messages."""
    base = tmp_path_factory.mktemp("limited")
    models.publish("a", base, 1)
    server = Serving(base, MODEL, "--rest_api_num_threads", "2", "--rest_api_timeout_in_ms", "2000",
                     "--rest_api_max_request_bytes", str(LIMIT),
                     "--grpc_channel_arguments", f"grpc.max_receive_message_length={LIMIT}", grpc=True)
    try:
        yield server.wait_listening()
    finally:
        server.stop()


def answers(server) -> bool:
    import requests

    response = requests.post(f"{server.url}/v1/models/{MODEL}:predict", json={"instances": ROWS}, timeout=30)
    return response.status_code == 200 and len(response.json()["predictions"]) == len(ROWS)


def post(server, data: bytes, **headers):
    import requests

    return requests.post(f"{server.url}/v1/models/{MODEL}:predict", data=data, headers=headers, timeout=30)


def test_a_body_over_the_cap_is_413_with_what_to_do(limited):
    body = b'{"instances": [' + b"[1.0, 2.0], " * (LIMIT // 10) + b"[1.0, 2.0]]}"
    error = error_of(post(limited, body), 413)
    assert "--rest_api_max_request_bytes" in error and "fewer instances" in error
    assert answers(limited)


def test_a_declared_length_over_the_cap_is_refused_before_reading(limited):
    with socket.create_connection(("127.0.0.1", limited.rest_port), timeout=30) as sock:
        sock.sendall(f"POST /v1/models/{MODEL}:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000000\r\n\r\n"
                     .encode())
        reply = _read_all(sock)
    assert reply.startswith(b"HTTP/1.1 413")
    assert answers(limited)


def test_a_gzip_bomb_is_not_inflated_past_the_cap(limited):
    bomb = gzip.compress(b'{"instances": [' + b" " * (50 * LIMIT) + b"]}")  # 5 MB of JSON in a few kB
    assert len(bomb) < LIMIT
    error = error_of(post(limited, bomb, **{"Content-Encoding": "gzip"}), 413)
    assert "inflates to more than" in error
    small = gzip.compress(b'{"instances": [[1.0, 2.0]]}')
    assert post(limited, small, **{"Content-Encoding": "gzip"}).status_code == 200
    assert answers(limited)


def test_deeply_nested_json_is_a_400(limited):
    error = error_of(post(limited, b'{"instances": ' + b"[" * 40_000 + b"]" * 40_000 + b"}"), 400)
    assert error.startswith("JSON Parse error")
    assert answers(limited)


def test_trickling_clients_are_cut_off_and_others_are_answered(limited):
    """More trickling clients than REST threads: each is closed at the deadline, so threads free up."""
    stop = threading.Event()
    closed: list[bytes] = []

    def trickle() -> None:
        with socket.create_connection(("127.0.0.1", limited.rest_port), timeout=60) as sock:
            sock.sendall(f"POST /v1/models/{MODEL}:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{{"
                         .encode())
            reply = b""
            try:
                while not stop.is_set():
                    sock.sendall(b" ")
                    sock.settimeout(0.3)
                    try:
                        chunk = sock.recv(4096)
                    except TimeoutError:
                        continue
                    if not chunk:
                        break
                    reply += chunk
            except OSError:  # reset once the server has shut it
                pass
            closed.append(reply)

    clients = [threading.Thread(target=trickle) for _ in range(4)]
    for client in clients:
        client.start()
    try:
        deadline = time.monotonic() + 60
        while len(closed) < len(clients) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(closed) == len(clients), "the server kept trickling connections open"
        assert answers(limited)
        assert any(b"408" in reply for reply in closed)
    finally:
        stop.set()
        for client in clients:
            client.join(10)


def _stub(server):
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    return channel, prediction_service_pb2_grpc.PredictionServiceStub(channel)


def _request(proto):
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.inputs["x"].CopyFrom(proto)
    return request


def test_grpc_message_over_the_max_is_refused(limited):
    import grpc
    import tensorflow as tf

    channel, stub = _stub(limited)
    with channel, pytest.raises(grpc.RpcError) as raised:
        stub.Predict(_request(tf.make_tensor_proto(np.ones((LIMIT, 2), np.float32))), 30)
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert answers(limited)


def test_grpc_tensor_declaring_more_elements_than_it_carries_is_refused_before_allocation(limited):
    import grpc
    import tensorflow as tf
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

    huge = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT, float_val=[1.0],
        tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=[{"size": 10_000_000}, {"size": 2}]),
    )
    channel, stub = _stub(limited)
    with channel:
        with pytest.raises(grpc.RpcError) as raised:
            stub.Predict(_request(huge), 30)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "[10000000, 2]" in raised.value.details()
        fine = stub.Predict(_request(tensor_pb2.TensorProto(
            dtype=types_pb2.DT_FLOAT, float_val=[1.0],
            tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=[{"size": 3}, {"size": 2}]))), 30)
    assert tf.make_ndarray(fine.outputs["probability"]).shape == (3, 1)  # one value fills a small tensor, as in TF
    assert answers(limited)


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data
