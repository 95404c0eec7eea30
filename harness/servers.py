"""Loopback servers for tests, standard library only (a subprocess without the trainer's
packages can use them): free ports, an HTTP handler served in a thread, a webhook receiver."""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import threading


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def http_server(handler: type[http.server.BaseHTTPRequestHandler]):
    """``handler`` served on a free loopback port in a thread; yields the base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """A request handler that keeps the test output clean."""

    def log_message(self, *_args):
        pass


@contextlib.contextmanager
def webhook_receiver(status: int = 200):
    """A local webhook: yields (base URL, the JSON bodies POSTed to it, [status it answers])."""
    received: list = []
    answer = [status]

    class Handler(QuietHandler):
        def do_POST(self):  # noqa: N802 (http.server API)
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(answer[0])
            self.end_headers()

    with http_server(Handler) as url:
        yield url, received, answer
