"""TF Serving REST client, shared by the frontend and the trainer's post-promotion check.

``from_env`` builds one from ``TF_HOST`` / ``MODEL_NAME``, the only place their defaults live.

REST predict does not say which version answered, so ``predict_latest`` first reads the highest
AVAILABLE version from the status endpoint (cached for ``version_ttl`` seconds) and calls
``/versions/<N>:predict``; a 404 there means the replica that answered does not have that version
(unloaded, or not loaded yet behind a load balancer), so the version is looked up again and the
call retried, at most twice. Every call has a connect and a read timeout.

The transport is a small pool of kept-alive HTTP/1.1 connections, shared by the threads or
greenlets of a process: on this hop (a few hundred bytes each way) ``requests`` cost more than
the model call itself (about 2 ms per request against 0.5 ms here), and ``http.client`` a fifth
of the frontend's CPU per request.

A hung upstream is remembered briefly (a circuit breaker): after a timeout, calls fail at once
with the same error for ``remember_failure`` seconds, then one call probes while the others
keep failing fast. Without it a hung TF Serving stacks the waits: requests queued behind the
one refreshing the version each waited the full timeout in turn. A refused or dropped
connection is not remembered: it costs no wait, and a serving that just came back must be used
at once (by every gunicorn worker, not only the one that saw it come back).
Failures are raised as the project's errors::

    ServingError
    ├── ServingUnavailable   connection refused or dropped
    │   └── ModelNotLoaded   serving is up but has no AVAILABLE version of the model
    ├── ServingTimeout       no answer within the timeout
    └── ServingHTTPError     an HTTP error status, with TF Serving's own message

Free of numpy and TensorFlow: the frontend image has neither.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from urllib.parse import quote, urlsplit

from modelops.core.errors import (
    ConfigError,
    ModelNotLoaded,
    ServingError,
    ServingHTTPError,
    ServingTimeout,
    ServingUnavailable,
)

DEFAULT_TF_HOST = "http://localhost:8501"
JSON_HEADERS = {"Content-Type": "application/json"}
# A kept-alive connection the server has meanwhile closed fails like this on reuse.
_STALE = (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected, http.client.BadStatusLine)
_MAX_LINE = 65536  # longest status or header line taken from a server


def base_url_of(value: str) -> str:
    """``TF_HOST`` as a base URL: ``tfserving:8501`` means ``http://tfserving:8501``.

    Anything that is not an http(s) URL with a host (and a numeric port, if any) is a
    ConfigError naming the variable, raised at startup rather than as a failure per request.
    """
    text = value.strip()
    url = text if "://" in text else f"http://{text}"
    parts = urlsplit(url)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # not a number, or out of range
        port_ok = False
    if not (port_ok and parts.scheme in ("http", "https") and parts.hostname and not parts.query):
        raise ConfigError(
            f"TF_HOST must be TF Serving's REST address, like http://tfserving:8501 or localhost:8501; got {value!r}"
        )
    return url.rstrip("/")


def env_target(environ=None) -> tuple[str, str | None]:
    """``(TF_HOST, MODEL_NAME)`` from the environment; unset or empty TF_HOST means
    ``DEFAULT_TF_HOST``, unset or empty MODEL_NAME is None (the caller's config names the model)."""
    environ = os.environ if environ is None else environ
    return environ.get("TF_HOST") or DEFAULT_TF_HOST, environ.get("MODEL_NAME") or None


def from_env(default_model: str, **options) -> ServingClient:
    """A client for ``TF_HOST`` / ``MODEL_NAME`` (else ``default_model``); ``options`` as ServingClient's."""
    base_url, model_name = env_target()
    return ServingClient(base_url, model_name or default_model, **options)


class Response:
    """What a transport returns: status, reason and the body, parsed on demand."""

    def __init__(self, status_code: int, reason: str, content: bytes):
        self.status_code, self.reason, self.content = status_code, reason, content

    def json(self):
        return json.loads(self.content)


class KeepAliveSession:
    """``request()`` over a pool of persistent HTTP/1.1 connections.

    A connection is taken for one request and given back after it, so threads and greenlets
    alike reuse the same few; at most ``max_idle`` wait per host. A pooled connection that turns
    out closed by the server is dropped and the request sent again; a fresh connection that
    fails raises (refused: ConnectionError, slow: TimeoutError).

    The exchange is written out here rather than through ``http.client``, whose request building
    and email-parser header handling were a fifth of the frontend's CPU per request
    (docs/performance.md): the request leaves in one write, head and body together (two writes
    also let a server answer before the body arrived and then close), and the answer's head is
    split by hand. Bodies are read by Content-Length, chunked, or to the connection's close.
    """

    def __init__(self, max_idle: int = 16):
        self.max_idle = max_idle
        self._idle: dict[str, list[socket.socket]] = {}
        self._lock = threading.Lock()
        self._tls: ssl.SSLContext | None = None

    def request(self, method: str, url: str, data=None, headers=None, timeout=(2.0, 10.0)) -> Response:
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        body = data.encode() if isinstance(data, str) else (data or b"")
        lines = [f"{method} {path} HTTP/1.1", f"Host: {parts.netloc}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if data is not None:
            lines.append(f"Content-Length: {len(body)}")
        message = "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body
        while True:
            sock, fresh = self._take(parts, timeout)
            try:
                sock.sendall(message)
                answer, reusable = _read_response(sock, method)
            except ValueError:  # a length or chunk size that is not a number
                sock.close()
                raise http.client.HTTPException(f"malformed response to {method} {path}") from None
            except (OSError, http.client.HTTPException) as exc:
                sock.close()
                if fresh or not isinstance(exc, _STALE):
                    raise
                continue
            self._give_back(parts.netloc, sock, reusable)
            return answer

    def _take(self, parts, timeout) -> tuple[socket.socket, bool]:
        connect_timeout, read_timeout = timeout
        with self._lock:
            idle = self._idle.get(parts.netloc)
            sock = idle.pop() if idle else None
        if sock is not None:
            sock.settimeout(read_timeout)
            return sock, False
        port = parts.port or (443 if parts.scheme == "https" else 80)
        sock = socket.create_connection((parts.hostname, port), timeout=connect_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if parts.scheme == "https":
            self._tls = self._tls or ssl.create_default_context()
            sock = self._tls.wrap_socket(sock, server_hostname=parts.hostname)
        sock.settimeout(read_timeout)
        return sock, True

    def _give_back(self, netloc: str, sock: socket.socket, reusable: bool) -> None:
        with self._lock:
            idle = self._idle.setdefault(netloc, [])
            if reusable and len(idle) < self.max_idle:
                idle.append(sock)
                return
        sock.close()


class _Reader:
    """Buffered reads from a socket; a close before the expected bytes is RemoteDisconnected."""

    def __init__(self, sock: socket.socket):
        self.sock, self.buffer = sock, b""

    def _more(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            if len(self.buffer) > _MAX_LINE or not self._more():
                raise http.client.RemoteDisconnected("the connection closed inside a response head")
        line, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
        return line

    def exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not self._more():
                raise http.client.IncompleteRead(self.buffer, size - len(self.buffer))
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def to_close(self) -> bytes:
        while self._more():
            pass
        return self.buffer


def _read_response(sock: socket.socket, method: str) -> tuple[Response, bool]:
    """The response to the request just sent, and whether the connection can carry another."""
    reader = _Reader(sock)
    while True:
        version, _, rest = reader.line().decode("latin-1").partition(" ")
        code, _, reason = rest.partition(" ")
        if not (version.startswith("HTTP/1.") and code.isdigit()):
            raise http.client.BadStatusLine(f"{version} {rest}"[:80])
        fields = {}
        while line := reader.line():
            name, _, value = line.decode("latin-1").partition(":")
            fields[name.strip().lower()] = value.strip()
        status = int(code)
        if not 100 <= status < 200:  # informational answers (100 Continue) precede the real one
            break
    reusable = version == "HTTP/1.1" and "close" not in fields.get("connection", "").lower()
    if method == "HEAD" or status in (204, 304):
        content = b""
    elif "chunked" in fields.get("transfer-encoding", "").lower():
        content = _read_chunked(reader)
    elif "content-length" in fields:
        content = reader.exactly(int(fields["content-length"]))
    else:
        content, reusable = reader.to_close(), False
    return Response(status, reason, content), reusable and not reader.buffer


def _read_chunked(reader: _Reader) -> bytes:
    chunks = []
    while size := int(reader.line().split(b";", 1)[0], 16):
        chunks.append(reader.exactly(size))
        reader.exactly(2)  # the CRLF after each chunk
    while reader.line():  # trailer fields, up to the empty line
        pass
    return b"".join(chunks)


class Breaker:
    """Remembers a hung upstream for ``seconds`` so calls fail fast instead of queueing.

    ``check()`` raises the remembered error while the failure is fresh. When it expires, one
    caller becomes the probe (it gets ``probe_seconds`` to finish) and the others still fail
    fast; the probe's outcome resets (``ok()``) or renews (``trip()``) the memory.
    """

    def __init__(self, seconds: float, probe_seconds: float):
        self.seconds, self.probe_seconds = seconds, probe_seconds
        self._lock = threading.Lock()
        self._failure: ServingError | None = None
        self._failed_at = self._until = 0.0

    def check(self) -> None:
        if self._failure is None:  # the common case, read without taking the lock
            return
        with self._lock:
            failure, now = self._failure, time.monotonic()
            if failure is None:
                return
            if now >= self._until:  # this call probes; the others keep failing fast meanwhile
                self._until = now + self.probe_seconds
                return
            age = now - self._failed_at
        raise type(failure)(f"{failure} (seen {age:.1f} s ago and remembered for {self.seconds:g} s)")

    def trip(self, failure: ServingError) -> ServingError:
        with self._lock:
            self._failure, self._failed_at = failure, time.monotonic()
            self._until = self._failed_at + self.seconds
        return failure

    def ok(self) -> None:
        if self._failure is not None:
            with self._lock:
                self._failure = None


class ServingClient:
    """Talks to one model on one TF Serving REST endpoint.

    ``observe(operation, seconds)`` is called after every upstream call (for latency metrics).
    A ``session`` passed in (anything with ``KeepAliveSession.request``'s signature, e.g. a
    ``requests.Session`` or a test fake) is used instead of the built-in transport.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_TF_HOST,
        model_name: str = "simple_classifier",
        *,
        session=None,
        timeout: float = 10.0,
        connect_timeout: float = 2.0,
        version_ttl: float = 2.0,
        remember_failure: float = 2.0,
        observe: Callable[[str, float], None] | None = None,
    ):
        self.base_url = base_url_of(base_url)
        self.model_name = model_name
        self.model_url = f"{self.base_url}/v1/models/{quote(model_name, safe='')}"
        self.timeout = (connect_timeout, timeout)
        self.version_ttl = version_ttl
        self._observe = observe
        self._cached: tuple[int, float] | None = None  # (version, monotonic time read)
        self._lock = threading.Lock()
        self.session = session if session is not None else KeepAliveSession()
        self.breaker = Breaker(remember_failure, probe_seconds=connect_timeout + timeout)

    # --- raw calls ---

    def status(self) -> list[dict]:
        """``model_version_status`` entries, highest version first, as TF Serving lists them."""
        body = self._call("status", "GET", self.model_url)
        entries = body.get("model_version_status") if isinstance(body, dict) else None
        if not isinstance(entries, list):
            raise ServingHTTPError(502, f"TF Serving status for {self.model_name!r} has no model_version_status list")
        return entries

    def predict(self, rows: Sequence, version: int | None = None) -> list:
        """``predictions`` for ``rows`` from ``version`` (TF Serving's latest when None)."""
        target = self.model_url if version is None else f"{self.model_url}/versions/{int(version)}"
        body = self._call("predict", "POST", f"{target}:predict", json.dumps({"instances": list(rows)}))
        predictions = body.get("predictions") if isinstance(body, dict) else None
        if not isinstance(predictions, list):
            raise ServingHTTPError(502, "TF Serving answered predict without a 'predictions' list")
        return predictions

    # --- version-aware calls ---

    def latest_version(self, max_age: float | None = None) -> int:
        """Highest AVAILABLE version, from a cache no older than ``max_age`` (default: the TTL).

        Raises ModelNotLoaded when serving knows no AVAILABLE version of the model.
        """
        max_age = self.version_ttl if max_age is None else max_age
        cached = self._cached
        if cached is not None and time.monotonic() - cached[1] < max_age:
            return cached[0]
        with self._lock:  # one refresh at a time; the others reuse its answer
            cached = self._cached
            if cached is not None and time.monotonic() - cached[1] < max_age:
                return cached[0]
            try:
                entries = self.status()
            except ServingHTTPError as exc:
                if exc.status == 404:
                    self._cached = None
                    raise ModelNotLoaded(self._not_loaded(exc.message)) from None
                raise
            available = [v for e in entries if _is_available(e) and (v := _as_int(e.get("version"))) is not None]
            if not available:
                self._cached = None
                raise ModelNotLoaded(self._not_loaded("no version is AVAILABLE yet"))
            self._cached = (max(available), time.monotonic())
            return self._cached[0]

    def predict_latest(self, rows: Sequence) -> tuple[int, list]:
        """``(version, predictions)`` from the highest AVAILABLE version.

        A 404 means the replica that answered does not have that version (any more, or, behind a
        load balancer, not yet): look again and retry. Twice more, as a replica can unload the
        version it just named before the predict reaches it (it swaps right after loading).
        """
        version = self.latest_version()
        for _retry in range(2):
            try:
                return version, self.predict(rows, version)
            except ServingHTTPError as exc:
                if exc.status != 404:
                    raise
            version = self.latest_version(max_age=0)
        return version, self.predict(rows, version)

    # --- plumbing ---

    def _not_loaded(self, detail: str) -> str:
        return (
            f"TF Serving at {self.base_url} has no model {self.model_name!r} loaded ({detail}); "
            "train and promote one (python retrain_pipeline.py) and retry in a few seconds"
        )

    def _call(self, operation: str, method: str, url: str, data: str | None = None):
        self.breaker.check()
        started = time.perf_counter()
        try:
            response = self.session.request(
                method, url, data=data, headers=JSON_HEADERS if data is not None else None, timeout=self.timeout
            )
        except TimeoutError:
            raise self.breaker.trip(ServingTimeout(
                f"TF Serving at {self.base_url} did not answer within {self.timeout[1]:g} s; retry later"
            )) from None
        except (OSError, http.client.HTTPException) as exc:
            self.breaker.ok()  # refused or dropped at once: no wait to spare anyone, nothing to remember
            raise ServingUnavailable(
                f"TF Serving at {self.base_url} is not reachable ({type(exc).__name__}); "
                "check that it is running and that TF_HOST points at it"
            ) from None
        finally:
            if self._observe is not None:
                self._observe(operation, time.perf_counter() - started)
        self.breaker.ok()
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400:
            message = body.get("error") if isinstance(body, dict) else None
            raise ServingHTTPError(response.status_code, str(message or response.reason or "no message"))
        if body is None:
            raise ServingHTTPError(502, f"TF Serving answered {operation} with a body that is not JSON")
        return body


def _as_int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _is_available(entry) -> bool:
    return isinstance(entry, dict) and entry.get("state") == "AVAILABLE"
