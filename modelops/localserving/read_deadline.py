"""A deadline for reading each REST request, so a client trickling bytes cannot hold a thread.

cheroot's ``timeout`` applies to each read, so a client sending one byte every few seconds keeps
a worker thread forever; with ``--rest_api_num_threads`` of them, the server stops answering.
Here each request (line, headers and body) must be read within the deadline
(``--rest_api_timeout_in_ms``, at least ``MIN_SECONDS``: a shorter one would cut off honest clients
on a busy machine and protect nothing more): a watcher thread answers 408 to the ones that are not
and shuts their socket, which frees the worker blocked on it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time

from cheroot import server as cheroot_server
from cheroot import wsgi

logger = logging.getLogger("modelops.localserving")
MIN_SECONDS = 1.0


class ReadDeadline:
    """Watches the request being read on each worker thread; ``done()`` once its body is in."""

    def __init__(self, seconds: float):
        self.seconds = max(seconds, MIN_SECONDS)
        self._reading: dict[int, tuple[float, socket.socket]] = {}  # worker thread -> (deadline, socket)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        threading.Thread(target=self._watch, name="rest-read-deadline", daemon=True).start()

    def start(self, sock: socket.socket) -> None:
        with self._lock:
            self._reading[threading.get_ident()] = (time.monotonic() + self.seconds, sock)

    def done(self) -> None:
        with self._lock:
            self._reading.pop(threading.get_ident(), None)

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        while not self._stop.wait(min(self.seconds / 4, 0.5)):  # so a late client is cut within 25%
            now = time.monotonic()
            with self._lock:
                late = [key for key, (deadline, _) in self._reading.items() if deadline < now]
                socks = [self._reading.pop(key)[1] for key in late]
            for sock in socks:
                _refuse(sock, self.seconds)


def _refuse(sock: socket.socket, seconds: float) -> None:
    body = json.dumps({"error": f"Request not received within {seconds:g} s (--rest_api_timeout_in_ms); "
                                "send the whole request at once"}).encode()
    head = (f"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode()
    with contextlib.suppress(OSError):
        sock.settimeout(1.0)
        sock.sendall(head + body)
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)  # the worker's blocked read returns, and the thread is free again
    logger.warning("Closed a REST connection whose request took longer than %g s to arrive", seconds)


class DeadlineConnection(cheroot_server.HTTPConnection):
    """cheroot's connection, with each request's reading under the server's ``read_deadline``."""

    def communicate(self):
        deadline: ReadDeadline = self.server.read_deadline
        deadline.start(self.socket)
        try:
            return super().communicate()
        finally:
            deadline.done()


class DeadlineServer(wsgi.Server):
    """cheroot's WSGI server whose connections read each request under ``read_deadline``."""

    ConnectionClass = DeadlineConnection

    def __init__(self, *args, read_deadline: ReadDeadline, **kwargs):
        super().__init__(*args, **kwargs)
        self.read_deadline = read_deadline

    def stop(self) -> None:
        super().stop()
        self.read_deadline.stop()
