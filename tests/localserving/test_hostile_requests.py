"""Issue 33, finding 5: with its default flags the local server bounds what one request costs,
answers malformed framing and nesting with 400, never shows internal text, and queues a burst."""

from __future__ import annotations

import socket
import subprocess

import pytest
import requests

from harness.processes import Serving
from modelops.localserving.monitoring import Metrics
from modelops.localserving.request_limits import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_INSTANCES
from modelops.localserving.rest import RestApp
from tests.localserving.conftest import MODEL, ROWS, local_only
from tests.localserving.test_limits import _read_all, answers
from tests.localserving.test_rest import error_of

pytestmark = [pytest.mark.slow, pytest.mark.contract, local_only]


@pytest.fixture(scope="module")
def default(models, tmp_path_factory):
    """The server as the Procfile starts it: no limit flags."""
    base = tmp_path_factory.mktemp("defaults")
    models.publish("a", base, 1)
    server = Serving(base, MODEL)
    try:
        yield server.wait_listening()
    finally:
        server.stop()


def _predict(server, data: bytes) -> requests.Response:
    return requests.post(f"{server.url}/v1/models/{MODEL}:predict", data=data, timeout=60)


def _raw(server, head: str) -> bytes:
    with socket.create_connection(("127.0.0.1", server.rest_port), timeout=30) as sock:
        sock.sendall(head.encode())
        return _read_all(sock)


def test_a_16_mib_body_is_refused_by_default(default):
    body = b'{"instances": [' + b"[1.0, 2.0], " * (16 * 1024 * 1024 // 12) + b"[1.0, 2.0]]}"
    assert len(body) > DEFAULT_MAX_BODY_BYTES
    error = error_of(_predict(default, body), 413)
    assert "--rest_api_max_request_bytes" in error
    assert answers(default)


def test_more_rows_than_the_row_limit_are_refused_with_the_flag_to_raise(default):
    rows = ROWS * (DEFAULT_MAX_INSTANCES // len(ROWS) + 1)
    error = error_of(requests.post(f"{default.url}/v1/models/{MODEL}:predict", json={"instances": rows},
                                   timeout=60), 413)
    assert f"{len(rows)} instances" in error and "--rest_api_max_instances" in error
    ok = requests.post(f"{default.url}/v1/models/{MODEL}:predict", json={"instances": rows[:1000]}, timeout=60)
    assert ok.status_code == 200 and len(ok.json()["predictions"]) == 1000, "the frontend's largest request passes"


@pytest.mark.parametrize("length", ["-5", "abc", "1e3"])
def test_a_malformed_content_length_is_a_400_without_internal_text(default, length):
    reply = _raw(default, f"POST /v1/models/{MODEL}:predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                          f"Content-Length: {length}\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400"), reply[:200]
    assert b"Error:" not in reply and b"Traceback" not in reply
    assert answers(default)


def test_arrays_900_deep_are_a_400_not_a_500(default):
    error = error_of(_predict(default, b'{"instances": ' + b"[" * 900 + b"1" + b"]" * 900 + b"}"), 400)
    assert "nested too deeply" in error
    assert answers(default)


def test_the_listen_backlog_queues_a_burst_of_connections(default):
    listing = subprocess.run(["ss", "-Hltn", f"sport = :{default.rest_port}"], capture_output=True, text=True,
                             check=True).stdout.split()
    assert int(listing[2]) >= 128, f"listen backlog {listing[2]} (ss: State Recv-Q Send-Q ...)"


class _Broken:
    """A model registry with a bug: its error text holds internals a client must not see."""

    def servable(self, *args):
        raise RuntimeError("/srv/secret/path: invariant broken")

    def status(self, *args):
        raise RuntimeError("/srv/secret/path: invariant broken")


def test_a_server_bug_is_a_500_whose_text_stays_in_the_log(caplog):
    app = RestApp(_Broken(), Metrics(), None, 30_000)  # type: ignore[arg-type]
    seen = []
    body = b"".join(app({"REQUEST_METHOD": "GET", "PATH_INFO": f"/v1/models/{MODEL}"},
                        lambda status, headers: seen.append(status)))
    assert seen == ["500 Internal Server Error"]
    assert b"secret" not in body and b"RuntimeError" not in body and b"error" in body
    assert "secret" in caplog.text, "the detail goes to the server's log"
