"""TF Serving REST client, shared by the frontend and the trainer's post-promotion check.

REST predict does not say which version answered, so ``predict_latest`` first reads the highest
AVAILABLE version from the status endpoint (cached for ``version_ttl`` seconds) and calls
``/versions/<N>:predict``; a 404 there means that version was unloaded, so the cache is
refreshed once and the call retried. Connections are pooled and kept alive; every call has a
connect and a read timeout. Failures are raised as the project's errors::

    ServingError
    ├── ServingUnavailable   connection refused or dropped
    │   └── ModelNotLoaded   serving is up but has no AVAILABLE version of the model
    ├── ServingTimeout       no answer within the timeout
    └── ServingHTTPError     an HTTP error status, with TF Serving's own message

Free of numpy and TensorFlow: the frontend image has neither.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from modelops.errors import ServingHTTPError, ServingTimeout, ServingUnavailable

JSON_HEADERS = {"Content-Type": "application/json"}
# Retry a failed connect once (nothing was sent); never resend a request that reached serving.
_CONNECT_RETRY = Retry(total=1, connect=1, read=0, redirect=0, status=0, other=0)


class ModelNotLoaded(ServingUnavailable):
    """TF Serving answers but has no AVAILABLE version of the model yet."""


class ServingClient:
    """Talks to one model on one TF Serving REST endpoint.

    ``observe(operation, seconds)`` is called after every upstream call (for latency metrics).
    A ``session`` passed in is used as is (tests inject fakes); otherwise one is created with a
    keep-alive pool of ``pool_size`` connections.
    """

    def __init__(
        self,
        base_url: str = "http://localhost:8501",
        model_name: str = "simple_classifier",
        *,
        session: requests.Session | None = None,
        timeout: float = 10.0,
        connect_timeout: float = 2.0,
        version_ttl: float = 2.0,
        pool_size: int = 32,
        observe: Callable[[str, float], None] | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.model_name = model_name
        self.model_url = f"{self.base_url}/v1/models/{quote(model_name, safe='')}"
        self.timeout = (connect_timeout, timeout)
        self.version_ttl = version_ttl
        self._observe = observe
        self._cached: tuple[int, float] | None = None  # (version, monotonic time read)
        self._lock = threading.Lock()
        if session is None:
            session = requests.Session()
            session.trust_env = False  # no per-call proxy/netrc lookups: serving is a direct internal hop
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=_CONNECT_RETRY)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        self.session = session

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
            available = [_as_int(e.get("version")) for e in entries if _is_available(e)]
            available = [v for v in available if v is not None]
            if not available:
                self._cached = None
                raise ModelNotLoaded(self._not_loaded("no version is AVAILABLE yet"))
            self._cached = (max(available), time.monotonic())
            return self._cached[0]

    def predict_latest(self, rows: Sequence) -> tuple[int, list]:
        """``(version, predictions)`` from the highest AVAILABLE version."""
        version = self.latest_version()
        try:
            return version, self.predict(rows, version)
        except ServingHTTPError as exc:
            if exc.status != 404:
                raise
        version = self.latest_version(max_age=0)  # that version was unloaded: look again
        return version, self.predict(rows, version)

    # --- plumbing ---

    def _not_loaded(self, detail: str) -> str:
        return (
            f"TF Serving at {self.base_url} has no model {self.model_name!r} loaded ({detail}); "
            "train and promote one (python retrain_pipeline.py) and retry in a few seconds"
        )

    def _call(self, operation: str, method: str, url: str, data: str | None = None):
        started = time.perf_counter()
        try:
            response = self.session.request(
                method, url, data=data, headers=JSON_HEADERS if data is not None else None, timeout=self.timeout
            )
        except requests.Timeout:
            raise ServingTimeout(
                f"TF Serving at {self.base_url} did not answer within {self.timeout[1]:g} s; retry later"
            ) from None
        except requests.RequestException as exc:
            raise ServingUnavailable(
                f"TF Serving at {self.base_url} is not reachable ({type(exc).__name__}); "
                "check that it is running and that TF_HOST points at it"
            ) from None
        finally:
            if self._observe is not None:
                self._observe(operation, time.perf_counter() - started)
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
