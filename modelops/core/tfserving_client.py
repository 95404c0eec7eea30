"""TF Serving REST client, shared by the frontend and the trainer's post-promotion check.

``from_env`` builds one from the environment (``serving_address``: ``TF_HOST``, else
``BIND_ADDRESS``/``TF_REST_PORT``, else the default; ``MODEL_NAME``), the only place that rule lives.

REST predict does not say which version answered, so ``predict_latest`` first reads the highest
AVAILABLE version from the status endpoint (cached for ``version_ttl`` seconds) and calls
``/versions/<N>:predict``; a 404 there means the replica that answered does not have that version
(unloaded, or not loaded yet behind a load balancer), so the version is looked up again and the
call retried, at most twice. Every call has a connect and a read timeout.

The transport is a small pool of kept-alive HTTP/1.1 connections (http_exchange.py).

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
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

from modelops.core.errors import (
    ConfigError,
    ModelNotLoaded,
    ServingError,
    ServingHTTPError,
    ServingTimeout,
    ServingUnavailable,
)
from modelops.core.http_exchange import KeepAliveSession, Response
from modelops.core.urls import without_credentials

DEFAULT_REST_PORT = 8501
DEFAULT_TF_HOST = f"http://localhost:{DEFAULT_REST_PORT}"
JSON_HEADERS = {"Content-Type": "application/json"}


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
            "TF_HOST must be TF Serving's REST address, like http://tfserving:8501 or localhost:8501; "
            f"got {without_credentials(value)!r}"
        )
    return url.rstrip("/")


def connect_host(bind: str) -> str:
    """Where a service bound to ``bind`` is reached: the bound address, or loopback when bound to all."""
    return "127.0.0.1" if bind == "0.0.0.0" else bind


def serving_address(environ: Mapping[str, str] | None = None) -> str:
    """Where TF Serving's REST API is, the one rule every entry point follows (retrain_pipeline.py,
    the scheduler, the frontend, the stack launcher): ``TF_HOST``; else ``BIND_ADDRESS`` and
    ``TF_REST_PORT`` as local mode binds them (either may be unset: 127.0.0.1, 8501); else
    ``DEFAULT_TF_HOST``. Empty values count as unset."""
    environ = os.environ if environ is None else environ
    if environ.get("TF_HOST"):
        return environ["TF_HOST"]
    bind, port = environ.get("BIND_ADDRESS"), environ.get("TF_REST_PORT")
    if bind or port:
        return f"http://{connect_host(bind or '127.0.0.1')}:{port or DEFAULT_REST_PORT}"
    return DEFAULT_TF_HOST


def env_target(environ: Mapping[str, str] | None = None) -> tuple[str, str | None]:
    """``(where serving is, MODEL_NAME)`` from the environment (``serving_address``); unset or empty
    MODEL_NAME is None (the caller's config names the model)."""
    environ = os.environ if environ is None else environ
    return serving_address(environ), environ.get("MODEL_NAME") or None


def from_env(default_model: str, **options: Any) -> ServingClient:
    """A client for ``TF_HOST`` / ``MODEL_NAME`` (else ``default_model``); ``options`` as ServingClient's."""
    base_url, model_name = env_target()
    return ServingClient(base_url, model_name or default_model, **options)


class Transport(Protocol):
    """What the client sends its calls through: ``KeepAliveSession``, a ``requests.Session``, a test fake."""

    def request(
        self,
        method: str,
        url: str,
        data: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: tuple[float, float] = (2.0, 10.0),
    ) -> Response: ...


class Breaker:
    """Remembers a hung upstream for ``seconds`` so calls fail fast instead of queueing.

    ``check()`` raises the remembered error while the failure is fresh. When it expires, one
    caller becomes the probe (it gets ``probe_seconds`` to finish) and the others still fail
    fast; the probe's outcome resets (``ok()``) or renews (``trip()``) the memory.
    """

    def __init__(self, seconds: float, probe_seconds: float) -> None:
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
    A ``session`` passed in (a ``Transport``) is used instead of the built-in ``KeepAliveSession``.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_TF_HOST,
        model_name: str = "simple_classifier",
        *,
        session: Transport | None = None,
        timeout: float = 10.0,
        connect_timeout: float = 2.0,
        version_ttl: float = 2.0,
        remember_failure: float = 2.0,
        observe: Callable[[str, float], None] | None = None,
    ) -> None:
        self.base_url = base_url_of(base_url)
        self.shown_url = without_credentials(self.base_url)  # how messages name it
        self.model_name = model_name
        self.model_url = f"{self.base_url}/v1/models/{quote(model_name, safe='')}"
        self.timeout = (connect_timeout, timeout)
        self.version_ttl = version_ttl
        self._observe = observe
        self._cached: tuple[int, float] | None = None  # (version, monotonic time read)
        self._lock = threading.Lock()
        self.session: Transport = session if session is not None else KeepAliveSession()
        self.breaker = Breaker(remember_failure, probe_seconds=connect_timeout + timeout)

    def rename(self, model_name: str) -> None:
        """Ask for another model from now on (config.json renamed it; web/following.py)."""
        with self._lock:
            self.model_name = model_name
            self.model_url = f"{self.base_url}/v1/models/{quote(model_name, safe='')}"
            self._cached = None

    # --- raw calls ---

    def status(self) -> list[dict[str, Any]]:
        """``model_version_status`` entries, highest version first, as TF Serving lists them."""
        body = self._call("status", "GET", self.model_url)
        entries = body.get("model_version_status") if isinstance(body, dict) else None
        if not isinstance(entries, list):
            raise ServingHTTPError(502, f"TF Serving status for {self.model_name!r} has no model_version_status list")
        return entries

    def predict(self, rows: Sequence[Any], version: int | None = None, signature: str | None = None) -> list[Any]:
        """``predictions`` for ``rows`` from ``version`` (TF Serving's latest when None), by the
        export's ``signature`` (``serving_default`` when None; ``explain``: docs/explain.md)."""
        body = self._predict({"instances": list(rows)}, version, signature)
        predictions = body.get("predictions") if isinstance(body, dict) else None
        if not isinstance(predictions, list):
            raise ServingHTTPError(502, "TF Serving answered predict without a 'predictions' list")
        return predictions

    def predict_columns(self, inputs: Any, version: int | None = None, signature: str | None = None) -> Any:
        """TF Serving's columnar form: ``inputs`` (a single input's whole tensor, or input name -> its
        tensor) in, ``outputs`` (the one output's tensor, or output name -> tensor) back. For many rows
        it is cheaper both ways than ``predict``'s row objects (file scoring, docs/performance.md)."""
        body = self._predict({"inputs": inputs}, version, signature)
        if not isinstance(body, dict) or "outputs" not in body:
            raise ServingHTTPError(502, "TF Serving answered a columnar predict without 'outputs'")
        return body["outputs"]

    def _predict(self, request: dict[str, Any], version: int | None, signature: str | None) -> Any:
        """POST ``request`` (rows or columns) to ``version``'s (or the latest's) ``:predict`` by ``signature``."""
        target = self.model_url if version is None else f"{self.model_url}/versions/{int(version)}"
        if signature is not None:
            request = {**request, "signature_name": signature}
        return self._call("predict", "POST", f"{target}:predict", json.dumps(request))

    def label_version(self, label: str) -> int:
        """The version serving's version label ``label`` points at (its metadata's ``model_spec``)."""
        body = self._call("metadata", "GET", f"{self.model_url}/labels/{quote(label, safe='')}/metadata")
        spec = body.get("model_spec") if isinstance(body, dict) else None
        version = _as_int(spec.get("version")) if isinstance(spec, dict) else None
        if version is None:
            raise ServingHTTPError(502, f"TF Serving's metadata for label {label!r} names no version")
        return version

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

    def predict_latest(self, rows: Sequence[Any],
                       prepare: Callable[[int], Sequence[Any]] | None = None) -> tuple[int, list[Any]]:
        """``(version, predictions)`` from the highest AVAILABLE version; ``prepare(version)``, when
        given, makes the rows for the version asked (each version may take its own schema).

        A 404 means the replica that answered does not have that version (any more, or, behind a
        load balancer, not yet): look again and retry. Twice more, as a replica can unload the
        version it just named before the predict reaches it (it swaps right after loading).
        """
        version = self.latest_version()
        for _retry in range(2):
            try:
                return version, self.predict(rows if prepare is None else prepare(version), version)
            except ServingHTTPError as exc:
                if exc.status != 404:
                    raise
            version = self.latest_version(max_age=0)
        return version, self.predict(rows if prepare is None else prepare(version), version)

    # --- plumbing ---

    def _not_loaded(self, detail: str) -> str:
        return (
            f"TF Serving at {self.shown_url} has no model {self.model_name!r} loaded ({detail}); "
            "train and promote one (python retrain_pipeline.py) and retry in a few seconds"
        )

    def _call(self, operation: str, method: str, url: str, data: str | None = None) -> Any:
        """The answer's JSON body; a failure as the project's ServingError."""
        self.breaker.check()
        started = time.perf_counter()
        try:
            response = self.session.request(
                method, url, data=data, headers=JSON_HEADERS if data is not None else None, timeout=self.timeout
            )
        except TimeoutError:
            raise self.breaker.trip(ServingTimeout(
                f"TF Serving at {self.shown_url} did not answer within {self.timeout[1]:g} s; retry later"
            )) from None
        except (OSError, http.client.HTTPException) as exc:
            self.breaker.ok()  # refused or dropped at once: no wait to spare anyone, nothing to remember
            raise ServingUnavailable(
                f"TF Serving at {self.shown_url} is not reachable ({type(exc).__name__}); "
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


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _is_available(entry: Any) -> bool:
    return isinstance(entry, dict) and entry.get("state") == "AVAILABLE"
