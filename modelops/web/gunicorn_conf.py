"""gunicorn settings for the frontend::

    gunicorn --config python:modelops.web.gunicorn_conf 'modelops.web:create_app()'

Threaded (gthread) workers: a request mostly waits on TF Serving, so threads overlap those
waits cheaply, and idle keep-alive connections wait in the poller without holding a thread.
Environment: ``PORT`` (default 5002) on ``BIND_ADDRESS`` (default 127.0.0.1), ``WEB_CONCURRENCY`` workers (default 2),
``GUNICORN_THREADS`` per worker (default 4), ``GUNICORN_TIMEOUT`` seconds (default 30).

Prometheus multiprocess mode: every worker writes its samples to ``PROMETHEUS_MULTIPROC_DIR``
and ``/metrics`` merges them. prometheus_client picks its storage when first imported, so the
directory is set here, before any worker imports the app; it is wiped when the server starts
(stale files would add a previous run's counts) and dead workers are marked in ``child_exit``.
"""

import os
import shutil
import sys
import tempfile

port = int(os.environ.get("PORT", "5002"))
bind = [f"{os.environ.get('BIND_ADDRESS') or '127.0.0.1'}:{port}"]  # the frontend image sets 0.0.0.0
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
keepalive = 5
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 30
accesslog = "-"
errorlog = "-"
# gunicorn's control socket defaults to one path per user ($HOME/.gunicorn), shared by every
# instance on the machine; the frontend does not use it.
control_socket_disable = True

os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", os.path.join(tempfile.gettempdir(), f"modelops-web-metrics-{port}"))


def on_starting(server):
    from modelops.errors import ConfigError
    from modelops.web import settings

    try:
        settings()
    except ConfigError as exc:  # say what is wrong once, instead of a traceback per worker boot
        sys.exit(f"frontend: {exc}")
    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, exist_ok=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess  # only here: importing it picks the storage

    multiprocess.mark_process_dead(worker.pid)
