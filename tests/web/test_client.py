"""The TF Serving REST client over real sockets: pooling, version choice, error types."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from urllib.parse import urlsplit

import pytest

from harness.servers import QuietHandler, free_port, http_server
from modelops.core.errors import ConfigError, ModelNotLoaded, ServingHTTPError, ServingTimeout, ServingUnavailable
from modelops.core.tfserving_client import Response, ServingClient
from tests.web.conftest import MODEL, probability


def test_status_and_predict_on_a_chosen_version(fake_upstream, fake_serving):
    fake_serving.versions = {4: "AVAILABLE", 3: "AVAILABLE"}
    client = ServingClient(fake_upstream, MODEL)
    assert [e["version"] for e in client.status()] == ["4", "3"]
    assert client.predict([[1.0, 1.0]], version=3)[0][0] == pytest.approx(probability(1, 1))
    assert ("POST", f"/v1/models/{MODEL}/versions/3:predict") in fake_serving.calls
    assert client.predict_latest([[0.0, 0.0]])[0] == 4


def test_tf_host_without_a_scheme_means_http(fake_upstream):
    client = ServingClient(fake_upstream.removeprefix("http://"), MODEL)
    assert client.base_url == fake_upstream
    assert client.predict_latest([[1.0, 1.0]])[1][0][0] == pytest.approx(probability(1, 1))


@pytest.mark.parametrize("tf_host", ["http://tfserving:85o1", "ftp://tfserving:8501", "http://:8501", "tfserving:99999"])
def test_a_malformed_tf_host_is_refused_up_front(tf_host):
    with pytest.raises(ConfigError, match=r"TF_HOST must be .* like http://tfserving:8501"):
        ServingClient(tf_host, MODEL)


def test_observer_sees_every_upstream_call(fake_upstream):
    seen = []
    client = ServingClient(fake_upstream, MODEL, observe=lambda op, seconds: seen.append(op))
    client.predict_latest([[1.0, 2.0]])
    assert seen == ["status", "predict"]


def test_refused_connection_is_serving_unavailable():
    client = ServingClient(f"http://127.0.0.1:{free_port()}", MODEL)
    with pytest.raises(ServingUnavailable, match="not reachable"):
        client.status()


def test_silent_upstream_is_serving_timeout():
    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        client = ServingClient(f"http://127.0.0.1:{listener.getsockname()[1]}", MODEL, timeout=0.2)
        with pytest.raises(ServingTimeout, match="did not answer"):
            client.predict([[1.0, 2.0]], version=1)


def test_upstream_error_keeps_status_and_message(fake_upstream, fake_serving):
    fake_serving.mode = "reject400"
    with pytest.raises(ServingHTTPError) as info:
        ServingClient(fake_upstream, MODEL).predict([[1.0, 2.0]], version=1)
    assert (info.value.status, info.value.message) == (400, "Expecting tensor size: 2 but got: 3")


def test_unknown_model_is_model_not_loaded(fake_upstream):
    with pytest.raises(ModelNotLoaded, match="no model 'other' loaded"):
        ServingClient(fake_upstream, "other").latest_version()


@contextlib.contextmanager
def predict_server(fake_serving, drop_after_answer: bool):
    """``fake_serving``'s predict over HTTP/1.1 keep-alive; yields (base URL, client address per request).

    With ``drop_after_answer`` the server closes each connection after answering without saying
    so, as servers do with idle keep-alive connections.
    """
    connections = []

    class Handler(QuietHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802 (http.server API)
            connections.append(self.client_address)
            length = int(self.headers["Content-Length"])
            status, body = fake_serving.handle("POST", self.path, self.rfile.read(length))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            self.close_connection = drop_after_answer

    with http_server(Handler) as url:
        yield url, connections


def test_a_kept_alive_connection_the_server_dropped_is_reopened_transparently(fake_serving):
    """Servers close idle keep-alive connections; the next call must not fail because of it."""
    with predict_server(fake_serving, drop_after_answer=True) as (url, connections):
        client = ServingClient(url, MODEL)
        answers = [client.predict([[1.0, 1.0]], version=1) for _ in range(3)]
    assert answers == [[[pytest.approx(probability(1, 1))]]] * 3
    assert len(connections) == 3, "each call after a drop used a fresh connection"


def test_a_failing_upstream_is_remembered_so_callers_fail_fast_instead_of_queueing():
    with socket.socket() as listener:  # accepts connections, never answers: a hung TF Serving
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        asked = []
        client = ServingClient(f"http://127.0.0.1:{listener.getsockname()[1]}", MODEL, timeout=0.2,
                               remember_failure=60, observe=lambda op, _: asked.append(op))
        with pytest.raises(ServingTimeout, match="did not answer"):
            client.predict([[1.0, 2.0]], version=1)
        for _ in range(3):
            with pytest.raises(ServingTimeout, match="did not answer.*remembered for 60 s"):
                client.latest_version()
        assert asked == ["predict"], "the remembered failure answered without asking the upstream"


def test_after_the_memory_expires_one_call_probes_and_a_recovered_upstream_is_used_again(fake_serving):
    fake_serving.mode = "timeout"
    client = ServingClient("http://tfserving.test:8501", MODEL, session=fake_serving, remember_failure=0.2)
    with pytest.raises(ServingTimeout):
        client.status()
    fake_serving.mode = None
    calls = len(fake_serving.calls)
    with pytest.raises(ServingTimeout, match="remembered"):
        client.status()
    assert len(fake_serving.calls) == calls
    deadline = time.monotonic() + 10
    while True:  # the memory lasts 0.2 s; then the next call probes and succeeds
        try:
            assert client.status()
            break
        except ServingTimeout:
            assert time.monotonic() < deadline, "the upstream was never tried again"
            time.sleep(0.05)
    assert client.predict([[1.0, 1.0]], version=1)[0][0] == pytest.approx(probability(1, 1))


def test_a_refused_connection_is_not_remembered_so_a_restarted_serving_is_used_at_once(fake_serving):
    fake_serving.mode = "down"
    client = ServingClient("http://tfserving.test:8501", MODEL, session=fake_serving, remember_failure=60)
    with pytest.raises(ServingUnavailable, match="not reachable"):
        client.status()
    fake_serving.mode = None
    assert client.status()


def test_threads_share_the_kept_alive_connections(fake_serving):
    """Threads (or gevent's greenlets, one per client connection) reuse one pool, not one each."""
    with predict_server(fake_serving, drop_after_answer=False) as (url, connections):
        client = ServingClient(url, MODEL)
        for _ in range(3):  # one after another, each on a new thread
            thread = threading.Thread(target=client.predict, args=([[1.0, 1.0]], 1))
            thread.start()
            thread.join()
    assert len(set(connections)) == 1 and len(connections) == 3


class Replicas:
    """A transport replaying what replicas behind a load balancer answer, one call at a time."""

    def __init__(self, *answers):
        self.answers, self.calls = list(answers), []

    def request(self, method, url, data=None, headers=None, timeout=None):
        self.calls.append(urlsplit(url).path)
        status, body = self.answers.pop(0)
        return Response(status, "", json.dumps(body).encode())


def _listing(version):
    return 200, {"model_version_status": [{"version": str(version), "state": "AVAILABLE", "status": {}}]}


GONE = (404, {"error": "Servable not found for request: Specific(m, 1)"})


def test_a_version_gone_between_status_and_predict_is_looked_up_again():
    """A replica names v1, then swaps to v2 before the predict lands: the user still gets an answer."""
    session = Replicas(_listing(1), GONE, _listing(1), GONE, _listing(2), (200, {"predictions": [[0.5]]}))
    client = ServingClient("http://service:8501", "m", session=session)
    assert client.predict_latest([[1.0, 2.0]]) == (2, [[0.5]])
    assert session.calls[-1] == "/v1/models/m/versions/2:predict"


def test_a_version_that_stays_missing_is_reported_after_a_bounded_number_of_tries():
    session = Replicas(*[_listing(1), GONE] * 3)
    client = ServingClient("http://service:8501", "m", session=session)
    with pytest.raises(ServingHTTPError) as caught:
        client.predict_latest([[1.0, 2.0]])
    assert caught.value.status == 404 and session.answers == []
