"""gunicorn settings for the frontend::

    gunicorn --config python:modelops.web.gunicorn_conf 'modelops.web:create_app()'

gevent workers, because the frontend faces clients directly (no buffering proxy in front of it
in compose or local mode) and a slow or hostile client must cost one connection, not a worker.
With gthread, a connection that sends half a request holds one of the few threads until the
client goes away (gunicorn 27 only defers connections that send nothing): 8 such sockets
(2 workers x 4 threads) stopped every other client. A gevent worker gives each connection a
greenlet, so a stalled client parks only its own, up to ``worker_connections`` (4000) per
worker, and the soft limit on open files is raised to fit them; each request head must arrive
within ``keepalive`` seconds and the whole request within ``REQUEST_TIMEOUT_SECONDS`` (15),
else the connection is dropped. A request mostly waits on TF Serving, which gevent overlaps as well as threads did
(the client's sockets are cooperative after gunicorn's monkey-patching). The worker class is
``modelops.web.worker.Worker`` (gevent's WSGI server with gunicorn's head deadline): it costs
less CPU per request than gunicorn's own ``gevent`` worker (docs/performance.md).
A proxy in front would also work, but would be one more service in every mode and in the image.
Environment: ``PORT`` (default 5002) on ``BIND_ADDRESS`` (default 127.0.0.1),
``WEB_CONCURRENCY`` workers (default 2), ``GUNICORN_TIMEOUT`` seconds (default 30),
``WORKER_CONNECTIONS`` per worker (default 4000), ``REQUEST_TIMEOUT_SECONDS`` (default 15).

Prometheus multiprocess mode: every worker writes its samples to ``PROMETHEUS_MULTIPROC_DIR``
and ``/metrics`` merges them. prometheus_client picks its storage when first imported, so the
directory is set here, before any worker imports the app; it is made fresh and private (0700)
when the server starts (stale files would add a previous run's counts; a predictable shared path
could be made first by another local user), unset means a new temporary folder removed at exit,
and dead workers are marked in ``child_exit``.
"""

import os
import resource
import shutil
import sys

from modelops.core.private_dir import fresh_private_dir

port = int(os.environ.get("PORT", "5002"))
bind = [f"{os.environ.get('BIND_ADDRESS') or '127.0.0.1'}:{port}"]  # the frontend image sets 0.0.0.0
worker_class = "modelops.web.worker.Worker"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
keepalive = 5  # also the deadline for a request head (request line and headers)
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", "4000"))  # gevent greenlets are cheap
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 30
# No access log by default: formatting and writing one line per request was a sixth of a worker's
# CPU per request (docs/performance.md), and /metrics counts every request by route and status.
# GUNICORN_CMD_ARGS="--access-logfile -" turns it on (gunicorn's environment overrides this file).
errorlog = "-"
# gunicorn's control socket defaults to one path per user ($HOME/.gunicorn), shared by every
# instance on the machine; the frontend does not use it.
control_socket_disable = True

_temporary_metrics = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _temporary_metrics:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = fresh_private_dir(None, f"modelops-web-metrics-{port}-")


def _open_files_for_every_connection() -> None:
    """Raise the soft limit on open files (workers inherit it) so ``worker_connections`` fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = worker_connections + 256  # plus the app's own files and upstream connections
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new_soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))


_open_files_for_every_connection()


def on_starting(server):
    from modelops.core.errors import ConfigError
    from modelops.web import settings

    try:
        settings()
        if not _temporary_metrics:
            fresh_private_dir(os.environ["PROMETHEUS_MULTIPROC_DIR"], "")
    except ConfigError as exc:  # say what is wrong once, instead of a traceback per worker boot
        sys.exit(f"frontend: {exc}")


def on_exit(server):
    if _temporary_metrics:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess  # only here: importing it picks the storage

    multiprocess.mark_process_dead(worker.pid)


def post_fork(server, worker):
    """A stop signal that arrives while the worker boots must still stop it.

    Until gunicorn installs the worker's own handlers (after gevent's monkey-patching, which takes
    a moment), the child still has the master's, which only queue the signal in the master's
    memory: the worker would miss it and hold the shutdown for the whole graceful timeout.
    """
    import signal

    signal.signal(signal.SIGTERM, lambda *_: setattr(worker, "alive", False))
