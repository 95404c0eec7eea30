"""After a promotion: does every TF Serving replica serve the new version, and answer like the gated model?

The replicas asked are, first found: ``TF_SERVING_REPLICAS`` (comma-separated REST base URLs),
every address of ``TF_SERVING_HEADLESS_SERVICE`` (``name[:port]``, port 8501 by default; on
Kubernetes a headless Service has one A record per pod), else the one address ``TF_HOST``
(default http://localhost:8501). Behind a load balancer one address reaches whichever replica
answers, so a replica that did not load the version, or answers differently, would go unseen.

Waits until each replica reports version N ``AVAILABLE`` (model ``MODEL_NAME`` or the config's
``model_name``), sends each the first ``verify.rows`` eval rows at
``/v1/models/<m>/versions/N:predict`` and compares the answers with the probabilities the gate
measured in-process through the same SavedModel signature (``verify.tolerance``), and the first
few to its ``explain`` signature, compared with the attributions the trainer computed in-process
(``verify_explain``; a version exported without the signature is checked on predictions only). So a version
that reached serving differently from how it was evaluated (a bad copy, a tampered or
half-loaded directory, a replica on a volume that lags behind) is caught.

Raises VerifyError, naming the replica when there are several, when a replica answers but
disagrees, fails to load N, or does not report it in ``verify.timeout_seconds`` (a replica that
stays silent while others answer counts too: every replica must confirm); ServingUnavailable when
no replica ever answered. A run (``publish``) turns the first into a rollback (the version is retired
from the shared models directory, so every replica unloads it) and the second into
``unverified`` (or a rollback when ``verify.on_unreachable`` is ``fail``, which therefore waits
the full timeout). In ``warn`` mode serving is called unreachable after
``verify.unreachable_seconds`` of silence: it polls the models directory every second and opens
its port as soon as it has loaded a first version, so a serving that has not answered by then is
down, and a manual run without serving should not hang.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import numpy as np

from modelops.core import predictions
from modelops.core.config import Config
from modelops.core.errors import ConfigError, ServingHTTPError, ServingTimeout, ServingUnavailable, VerifyError
from modelops.core.model_name import served_model_name
from modelops.core.schema import DEMO_SCHEMA, Schema
from modelops.core.signature import ATTRIBUTIONS_OUTPUT, EXPLAIN_SIGNATURE
from modelops.core.store import ModelStore
from modelops.core.tfserving_client import ServingClient, base_url_of, env_target
from modelops.trainer.retrain import verify_explain
from modelops.trainer.retrain.runlog import RunLog

REPLICAS_ENV = "TF_SERVING_REPLICAS"
HEADLESS_ENV = "TF_SERVING_HEADLESS_SERVICE"
DEFAULT_REST_PORT = 8501
POLL_SECONDS = 0.5


def serving_client(config: Config, timeout: float = 10.0, base_url: str | None = None) -> ServingClient:
    """A client for the model this project serves, at ``base_url`` (default ``TF_HOST``; ``MODEL_NAME``)."""
    default_url, _ = env_target()
    return ServingClient(base_url or default_url, served_model_name(config), timeout=timeout,
                         connect_timeout=min(2.0, timeout),
                         remember_failure=0.0)  # a poller waiting for serving must see it answer at once


def replica_urls(env: Mapping[str, str] = os.environ) -> list[str]:
    """Base URLs of every serving replica verification asks, as the module docstring says."""
    listed = env.get(REPLICAS_ENV, "").strip()
    if listed:
        urls = [_listed_url(entry) for entry in listed.split(",") if entry.strip()]
        if not urls:
            raise ConfigError(f"{REPLICAS_ENV} lists no address; give TF Serving REST addresses separated by commas")
        return urls
    headless = env.get(HEADLESS_ENV, "").strip()
    if headless:
        return resolve_replicas(headless)
    return [env_target(env)[0]]


def _listed_url(entry: str) -> str:
    try:
        return base_url_of(entry)
    except ConfigError:
        raise ConfigError(f"{REPLICAS_ENV} must list TF Serving REST addresses separated by commas, like "
                          f"http://10.0.0.5:8501,http://10.0.0.6:8501; {entry.strip()!r} is not one") from None


def resolve_replicas(service: str, env_name: str = HEADLESS_ENV, default_port: int = DEFAULT_REST_PORT) -> list[str]:
    """One base URL per address ``service`` (``name[:port]``, from ``env_name``) resolves to, in the
    resolver's order. Also finds every frontend replica for the rollout evidence (rollout_control)."""
    host, colon, port = service.rpartition(":")
    if not colon:
        host, port = service, str(default_port)
    if not host or not port.isdigit():
        raise ConfigError(f"{env_name} must be a headless Service name and port, like "
                          f"my-replicas:{default_port}; got {service!r}")
    try:
        infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ServingUnavailable(f"{env_name}: cannot resolve {host!r} ({exc}); is the Service there?") from None
    addresses = dict.fromkeys(str(info[4][0]) for info in infos)  # unique, in order
    if not addresses:
        raise ServingUnavailable(f"{env_name}: {host!r} resolves to no address; are replicas running?")
    return [f"http://[{a}]:{port}" if ":" in a else f"http://{a}:{port}" for a in addresses]


class Verifier(Protocol):
    """The ``run.retrain(verifier=...)`` hook: returns when serving answers like the gated model;
    raises VerifyError when it does not, ServingUnavailable or ServingTimeout when serving never
    answered at all. ``patience``: how long a silent serving is waited for before it counts as
    unreachable under ``verify.on_unreachable`` ``warn`` (None: ``verify.unreachable_seconds``)."""

    def __call__(self, config: Config, version: int, x_eval: np.ndarray | Sequence[dict], expected: np.ndarray,
                 log: RunLog, *, patience: float | None = None) -> None: ...


class ServingVerifier:
    """The Verifier that asks TF Serving; ``clients`` (one per replica) injectable for tests."""

    def __init__(self, clients: Sequence[ServingClient] | None = None, poll_seconds: float = POLL_SECONDS):
        self.clients, self.poll_seconds = clients, poll_seconds

    def __call__(self, config: Config, version: int, x_eval: np.ndarray | Sequence[dict], expected: np.ndarray,
                 log: RunLog, *, patience: float | None = None) -> None:
        """``x_eval``: the eval rows, a float matrix (packed schema) or typed rows by feature name
        (``data.typed_rows``); ``expected``: the gate's probabilities for them, ``[n, 1]`` or ``[n, K]``."""
        settings = config.verify
        try:
            clients = self.clients or [serving_client(config, min(10.0, settings.timeout_seconds), url)
                                       for url in replica_urls()]
        except ConfigError as exc:  # a malformed TF_HOST or replica list: serving cannot be asked
            raise ServingUnavailable(str(exc)) from None
        named = _Names(clients)
        log.note(f"verify: waiting up to {settings.timeout_seconds:g}s for {named.all} "
                 f"to serve {clients[0].model_name} v{version}")
        silent_for = settings.timeout_seconds
        if settings.on_unreachable == "warn":
            silent_for = min(silent_for, settings.unreachable_seconds if patience is None else patience)
        self._wait_available(clients, named, version, settings.timeout_seconds, silent_for)
        n = min(settings.rows, len(x_eval))
        rows = serving_rows(config.schema, x_eval[:n])
        explained = verify_explain.recorded(ModelStore(config.models_dir), version, len(rows))  # None: as before
        for client in clients:
            log.detail(named.on(client, _check_answers(client, named, rows, expected[:n], settings.tolerance, version,
                                                       config.schema)))
            if explained is not None:
                log.detail(named.on(client, _check_explanations(client, named, rows, explained, settings.tolerance,
                                                                version, config.schema)))

    def _wait_available(self, clients, named: _Names, version: int, timeout: float, patience: float) -> None:
        """Return once every replica reports ``version`` AVAILABLE; raise as the module docstring says."""
        start = time.monotonic()
        waiting = {client: "no answer yet" for client in clients}  # replica -> what it last said
        answered = set()
        while True:
            for client in list(waiting):
                try:
                    state, error = _state(client.status(), version)
                    answered.add(client)
                    if state == "AVAILABLE":
                        del waiting[client]
                        continue
                    if state == "END" and error:
                        raise VerifyError(named.error(client, f"TF Serving failed to load v{version}: {error}"))
                    waiting[client] = f"v{version} is {state or 'not listed yet'}"
                except ServingHTTPError as exc:  # e.g. 404 while the model is not loaded yet
                    answered.add(client)
                    waiting[client] = f"HTTP {exc.status}: {exc.message}"
                except (ServingUnavailable, ServingTimeout) as exc:
                    waiting[client] = str(exc)
            if not waiting:
                return
            waited = time.monotonic() - start
            if not answered and waited >= patience:
                raise ServingUnavailable(f"{'; '.join(waiting.values())} (no answer in {waited:.0f}s)")
            if waited >= timeout:
                client, last = next(iter(waiting.items()))
                raise VerifyError(named.error(
                    client, f"TF Serving did not report v{version} AVAILABLE within {timeout:g}s ({last})"))
            time.sleep(self.poll_seconds)


class _Names:
    """How messages name a replica: only when there are several (one address is TF_HOST)."""

    def __init__(self, clients: Sequence[ServingClient]):
        self.several = len(clients) > 1
        self.all = f"{len(clients)} replicas ({', '.join(c.shown_url for c in clients)})" if self.several \
            else clients[0].shown_url

    def error(self, client: ServingClient, message: str) -> str:
        return f"replica {client.shown_url}: {message}" if self.several else message

    def on(self, client: ServingClient, message: str) -> str:
        return f"{message} on {client.shown_url}" if self.several else message


def serving_rows(schema: Schema, rows: np.ndarray | Sequence[dict]) -> list:
    """The instances to send: a packed schema's float rows as lists, typed rows as the schema spells them."""
    if isinstance(rows, np.ndarray):
        return np.asarray(rows, dtype=np.float32).tolist()
    return [schema.instance_for_serving(row) for row in rows]


def _check_answers(client: ServingClient, named: _Names, rows: list, expected: np.ndarray, tolerance: float,
                   version: int, schema: Schema) -> str:
    """Predict ``rows`` on one replica and compare; raise VerifyError when it disagrees."""
    return _asked(client, named, version, "predict",
                  lambda: compare(client.predict(rows, version), expected, tolerance, version, schema))


def _check_explanations(client: ServingClient, named: _Names, rows: list, expected: np.ndarray, tolerance: float,
                        version: int, schema: Schema) -> str:
    """Ask one replica's ``explain`` signature for the first rows and compare with the trainer's attributions."""
    return _asked(client, named, version, "explain", lambda: compare_explanations(
        client.predict(rows[:len(expected)], version, signature=EXPLAIN_SIGNATURE), expected, tolerance, version,
        relative=schema.label.is_number))


def _asked(client: ServingClient, named: _Names, version: int, what: str, check: Callable[[], str]) -> str:
    """``check()``'s verdict; serving's failures and disagreements as a VerifyError naming the replica."""
    try:
        return check()
    except ServingHTTPError as exc:
        message = f"v{version} is AVAILABLE but {what} failed: HTTP {exc.status} {exc.message}"
    except (ServingUnavailable, ServingTimeout) as exc:
        message = f"v{version} is AVAILABLE but {what} did not answer: {exc}"
    except VerifyError as exc:
        message = str(exc)
    raise VerifyError(named.error(client, message))


def _answer(prediction: predictions.Prediction) -> float | tuple[float, ...]:
    return prediction.probabilities if prediction.value is None else prediction.value


def _state(entries: list[dict], version: int) -> tuple[str | None, str | None]:
    """``(state, error message or None)`` of ``version`` in a model status answer."""
    for entry in entries:
        if isinstance(entry, dict) and str(entry.get("version")) == str(version):
            status = entry.get("status") or {}
            failed = status.get("error_code", "OK") != "OK"
            return entry.get("state"), (status.get("error_message") or status.get("error_code")) if failed else None
    return None, None


def compare(answers: list, expected: np.ndarray, tolerance: float, version: int, schema: Schema = DEMO_SCHEMA) -> str:
    """Raise VerifyError unless serving's predictions match ``expected`` within ``tolerance``: the
    probability per row (packed) or every class's probability (named); a number label's value within
    ``tolerance`` times the value's size (at least 1), as its units are the user's."""
    try:
        served = np.asarray(answers if schema.packed else [_answer(predictions.read(a, schema)) for a in answers],
                            dtype=np.float64)
    except (TypeError, ValueError, ServingHTTPError):
        raise VerifyError(f"v{version} answered predictions that are not numbers") from None
    if served.shape != expected.shape:
        raise VerifyError(f"v{version} answered shape {served.shape}, the gated model {expected.shape}")
    bad, worst = _mismatches(served, expected, tolerance, relative=schema.label.is_number)
    if bad:
        raise VerifyError(
            f"v{version} answers differ from the gated model on {bad} of {len(served)} rows "
            f"(max difference {worst:.6g} > verify.tolerance {tolerance:g})"
        )
    return f"verify: {len(served)} rows match the gated model (max difference {worst:.3g})"


def compare_explanations(answers: list, expected: np.ndarray, tolerance: float, version: int,
                         relative: bool = False) -> str:
    """Raise VerifyError unless serving's ``explain`` attributions match the trainer's within ``tolerance``
    (``relative``: of the attribution's size, at least 1, for a number label's, in its own units)."""
    try:
        served = np.asarray([answer[ATTRIBUTIONS_OUTPUT] for answer in answers], dtype=np.float64)
    except (KeyError, TypeError, ValueError, IndexError):
        raise VerifyError(f"v{version}'s explain signature answered no attributions: {str(answers)[:80]}") from None
    if served.shape != expected.shape:
        raise VerifyError(f"v{version}'s explain signature answered shape {served.shape}, the trainer {expected.shape}")
    bad, worst = _mismatches(served, expected, tolerance, relative)
    if bad:
        raise VerifyError(f"v{version}'s explanations differ from the trainer's on {bad} of {len(served)} rows "
                          f"(max attribution difference {worst:.6g} > verify.tolerance {tolerance:g})")
    return f"verify: {len(served)} explanations match the trainer's (max attribution difference {worst:.3g})"


def _mismatches(served: np.ndarray, expected: np.ndarray, tolerance: float,
                relative: bool = False) -> tuple[int, float]:
    """Rows with any value further than ``tolerance`` from expected (NaN counts), and the largest difference;
    ``relative``: measured against the expected value's size (at least 1), for a number label in its own units."""
    diff = np.abs(served - expected.astype(np.float64))
    if relative:
        diff = diff / np.maximum(1.0, np.abs(expected.astype(np.float64)))
    bad = int(np.count_nonzero((~(diff <= tolerance)).reshape(len(served), -1).any(axis=1)))
    return bad, float(np.nanmax(diff)) if np.isfinite(diff).any() else float("nan")
