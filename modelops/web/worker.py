"""The frontend's gunicorn worker: gevent's own WSGI server, with one deadline for a whole request.

gunicorn's ``gevent`` worker parses requests in Python and writes every response in two writes
(head, then body); over loopback each write also runs the reader's side of TCP, so on the
frontend's path that worker cost about a fifth more CPU per request than ``gevent_pywsgi``,
whose server (gevent's ``pywsgi``) sends the head and a one-piece body together
(docs/performance.md). ``gevent_pywsgi`` alone has no deadline at all: a client that sends half
a request, or keeps an idle connection, would hold its greenlet for good. This worker sets two:

- the request head (including the wait for it on a kept-alive connection) must arrive within
  ``keepalive`` seconds, else the connection is closed, as gunicorn's own worker does;
- the whole request, head and body, must arrive within ``REQUEST_TIMEOUT_SECONDS`` of its first
  line (default 15 s: a 1 MiB body at a slow mobile link's ~100 KB/s takes about 10 s). A body
  read past it (by the application, or discarded after the answer) fails with 408 and the
  connection is closed. Without it, a client that sent a head with ``Content-Length: 100`` and
  stalled held its greenlet for good: 2,050 of them filled every worker's
  ``worker_connections`` and ``/healthz`` stopped answering.

The application's own time (waiting on TF Serving) is not under either deadline.
"""

from __future__ import annotations

import contextlib
import time

import gevent
from gevent.pywsgi import Input
from gunicorn.workers.ggevent import GeventPyWSGIWorker, PyWSGIHandler
from werkzeug.exceptions import RequestTimeout


class _Late(BaseException):
    """Raised inside a body read when the request's deadline passes (a BaseException, so no reader swallows it)."""


class DeadlineInput(Input):
    """pywsgi's request body, whose every read must end by ``deadline`` (a ``time.monotonic()`` value)."""

    __slots__ = ("deadline", "expired")

    @classmethod
    def from_input(cls, original: Input, deadline: float) -> DeadlineInput:
        copy = cls(original.rfile, original.content_length)
        for name in Input.__slots__:
            setattr(copy, name, getattr(original, name))
        copy.deadline, copy.expired = deadline, False
        return copy

    def read(self, length=None):
        return self._within(super().read, length)

    def readline(self, size=None):
        return self._within(super().readline, size)

    def _within(self, reader, size):
        try:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise _Late
            with gevent.Timeout(remaining, _Late):
                return reader(size)
        except _Late:
            self.expired = True
            raise RequestTimeout("the request (head and body) did not arrive in time; send it again") from None

    def _discard(self):
        with contextlib.suppress(RequestTimeout):  # the answer is out; the handler closes the connection
            super()._discard()


class DeadlineHandler(PyWSGIHandler):
    head_seconds: float = 5.0
    request_seconds: float = 15.0

    def handle_one_request(self):
        self._first_line_at = time.monotonic()
        self._deadline = gevent.Timeout.start_new(min(self.head_seconds, self.request_seconds))
        try:
            return super().handle_one_request()
        except gevent.Timeout as exc:  # a BaseException: pywsgi's own handlers let it through
            if exc is not self._deadline:
                raise
            return None  # close the connection
        finally:
            self._deadline.close()

    def read_requestline(self):
        line = super().read_requestline()
        self._first_line_at = time.monotonic()  # the whole request is due request_seconds from here
        return line

    def get_environ(self):
        self._deadline.cancel()  # the head is in: the body is under the request's deadline
        environ = super().get_environ()
        if environ.get("wsgi.input") is self.wsgi_input:
            self.wsgi_input = DeadlineInput.from_input(self.wsgi_input, self._first_line_at + self.request_seconds)
            environ["wsgi.input"] = self.wsgi_input
        return environ

    def handle_one_response(self):
        super().handle_one_response()
        if getattr(getattr(self, "wsgi_input", None), "expired", False):
            self.close_connection = True  # the rest of the body may still come: never parse it as a request


class Worker(GeventPyWSGIWorker):
    def __init__(self, *args, **kwargs):
        from modelops.web import request_timeout_seconds

        super().__init__(*args, **kwargs)
        self.wsgi_handler = type("Handler", (DeadlineHandler,), {
            "head_seconds": self.cfg.keepalive, "request_seconds": request_timeout_seconds(),
        })
