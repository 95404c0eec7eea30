"""After a promotion: does TF Serving serve the new version, and answer like the gated model?

Waits until serving (``TF_HOST``, default http://localhost:8501; model ``MODEL_NAME`` or the
config's ``model_name``) reports version N ``AVAILABLE``, sends the first ``verify.rows`` eval
rows to ``/v1/models/<m>/versions/N:predict`` and compares the answers with the probabilities
the gate measured in-process through the same SavedModel signature (``verify.tolerance``).
So a version that reached serving differently from how it was evaluated (a bad copy, a
tampered or half-loaded directory) is caught.

Raises VerifyError when serving answers but disagrees, fails to load N, or does not load it in
``verify.timeout_seconds``; ServingUnavailable when serving never answered at all. The pipeline
turns the first into a rollback and the second into ``unverified`` (or a rollback when
``verify.on_unreachable`` is ``fail``, which therefore waits the full timeout). In ``warn`` mode
serving is called unreachable after ``verify.unreachable_seconds`` of silence: it polls the
models directory every second and opens its port as soon as it has loaded a first version, so a
serving that has not answered by then is down, and a manual run without serving should not hang.
"""

from __future__ import annotations

import time

import numpy as np

from modelops.config import Config
from modelops.errors import ConfigError, ServingHTTPError, ServingTimeout, ServingUnavailable, VerifyError
from modelops.tfserving_client import ServingClient, from_env

POLL_SECONDS = 0.5


def serving_client(config: Config, timeout: float = 10.0) -> ServingClient:
    """A client for the model this project serves, from ``TF_HOST`` / ``MODEL_NAME``."""
    return from_env(config.model_name, timeout=timeout, connect_timeout=min(2.0, timeout))


class ServingVerifier:
    """The ``pipeline.retrain(verifier=...)`` hook; ``client`` is injectable for tests."""

    def __init__(self, client: ServingClient | None = None, poll_seconds: float = POLL_SECONDS):
        self.client, self.poll_seconds = client, poll_seconds

    def __call__(self, config: Config, version: int, x_eval: np.ndarray, expected: np.ndarray, log) -> None:
        settings = config.verify
        try:
            client = self.client or serving_client(config, timeout=min(10.0, settings.timeout_seconds))
        except ConfigError as exc:  # a malformed TF_HOST: serving cannot be asked
            raise ServingUnavailable(str(exc)) from None
        log.note(f"verify: waiting up to {settings.timeout_seconds:g}s for {client.base_url} "
                 f"to serve {client.model_name} v{version}")
        patience = settings.timeout_seconds
        if settings.on_unreachable == "warn":
            patience = min(patience, settings.unreachable_seconds)
        self._wait_available(client, version, settings.timeout_seconds, patience)
        n = min(settings.rows, len(x_eval))
        try:
            answers = client.predict(np.asarray(x_eval[:n], dtype=np.float32).tolist(), version)
        except ServingHTTPError as exc:
            raise VerifyError(f"v{version} is AVAILABLE but predict failed: HTTP {exc.status} {exc.message}") from None
        except (ServingUnavailable, ServingTimeout) as exc:
            raise VerifyError(f"v{version} is AVAILABLE but predict did not answer: {exc}") from None
        log.detail(compare(answers, expected[:n], settings.tolerance, version))

    def _wait_available(self, client: ServingClient, version: int, timeout: float, patience: float) -> None:
        """Return once ``version`` is AVAILABLE; raise as the module docstring says."""
        start = time.monotonic()
        answered, last = False, "no answer yet"
        while True:
            try:
                state, error = _state(client.status(), version)
                answered = True
                if state == "AVAILABLE":
                    return
                if state == "END" and error:
                    raise VerifyError(f"TF Serving failed to load v{version}: {error}")
                last = f"v{version} is {state or 'not listed yet'}"
            except ServingHTTPError as exc:  # e.g. 404 while the model is not loaded yet
                answered, last = True, f"HTTP {exc.status}: {exc.message}"
            except (ServingUnavailable, ServingTimeout) as exc:
                last = str(exc)
            waited = time.monotonic() - start
            if not answered and waited >= patience:
                raise ServingUnavailable(f"{last} (no answer in {waited:.0f}s)")
            if waited >= timeout:
                raise VerifyError(f"TF Serving did not report v{version} AVAILABLE within {timeout:g}s ({last})")
            time.sleep(self.poll_seconds)


def _state(entries: list[dict], version: int) -> tuple[str | None, str | None]:
    """``(state, error message or None)`` of ``version`` in a model status answer."""
    for entry in entries:
        if isinstance(entry, dict) and str(entry.get("version")) == str(version):
            status = entry.get("status") or {}
            failed = status.get("error_code", "OK") != "OK"
            return entry.get("state"), (status.get("error_message") or status.get("error_code")) if failed else None
    return None, None


def compare(answers: list, expected: np.ndarray, tolerance: float, version: int) -> str:
    """Raise VerifyError unless serving's predictions match ``expected`` within ``tolerance``."""
    try:
        served = np.asarray(answers, dtype=np.float64)
    except (TypeError, ValueError):
        raise VerifyError(f"v{version} answered predictions that are not numbers") from None
    if served.shape != expected.shape:
        raise VerifyError(f"v{version} answered shape {served.shape}, the gated model {expected.shape}")
    diff = np.abs(served - expected.astype(np.float64))
    bad = int(np.count_nonzero(~(diff <= tolerance)))  # NaN counts as a mismatch
    worst = float(np.nanmax(diff)) if np.isfinite(diff).any() else float("nan")
    if bad:
        raise VerifyError(
            f"v{version} answers differ from the gated model on {bad} of {len(served)} rows "
            f"(max difference {worst:.6g} > verify.tolerance {tolerance:g})"
        )
    return f"verify: {len(served)} rows match the gated model (max difference {worst:.3g})"
