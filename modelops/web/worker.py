"""The frontend's gunicorn worker: gevent's own WSGI server, with gunicorn's deadline for a request head.

gunicorn's ``gevent`` worker parses requests in Python and writes every response in two writes
(head, then body); over loopback each write also runs the reader's side of TCP, so on the
frontend's path that worker cost about a fifth more CPU per request than ``gevent_pywsgi``,
whose server (gevent's ``pywsgi``) sends the head and a one-piece body together
(docs/performance.md). ``gevent_pywsgi`` alone has no deadline at all: a client that sends half
a request head, or keeps an idle connection, would hold its greenlet for good. This worker
keeps gunicorn's rule: each request head (including the wait for it on a kept-alive connection)
must arrive within ``keepalive`` seconds, else the connection is closed. The body and the
application are not under that deadline, as with gunicorn's own worker.
"""

from __future__ import annotations

import gevent
from gunicorn.workers.ggevent import GeventPyWSGIWorker, PyWSGIHandler


class HeadDeadlineHandler(PyWSGIHandler):
    head_seconds: float = 5.0

    def handle_one_request(self):
        self._deadline = gevent.Timeout.start_new(self.head_seconds)
        try:
            return super().handle_one_request()
        except gevent.Timeout as exc:  # a BaseException: pywsgi's own handlers let it through
            if exc is not self._deadline:
                raise
            return None  # close the connection
        finally:
            self._deadline.close()

    def get_environ(self):
        self._deadline.cancel()  # the head is in: what follows is the application's time
        return super().get_environ()


class Worker(GeventPyWSGIWorker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.wsgi_handler = type("Handler", (HeadDeadlineHandler,), {"head_seconds": self.cfg.keepalive})
