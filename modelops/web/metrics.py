"""The frontend's Prometheus metrics and the ``/metrics`` endpoint.

Metrics are declared once per registry (the default one in production, a fresh one per test).
Under gunicorn every worker is a separate process, so with ``PROMETHEUS_MULTIPROC_DIR`` set
(``gunicorn_conf`` sets and wipes it) ``/metrics`` merges all workers' files instead of
answering with whichever worker happened to take the scrape.
"""

from __future__ import annotations

import os
import time

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from modelops.web import drift as live_drift
from modelops.web.deps import store

bp = Blueprint("metrics", __name__)

# The method label takes these values or "other": the method is any token a client sends.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class WebMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.registry = registry
        self.requests = Counter(
            "modelops_frontend_requests_total",
            "HTTP requests answered by the frontend.",
            ["endpoint", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "modelops_frontend_request_duration_seconds",
            "Time to answer an HTTP request, in seconds.",
            ["endpoint", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.upstream_latency = Histogram(
            "modelops_frontend_upstream_duration_seconds",
            "Time TF Serving took to answer (or fail), in seconds.",
            ["operation"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.instances = Counter(
            "modelops_frontend_instances_predicted_total",
            "Rows predicted successfully.",
            registry=registry,
        )
        self.served_version = Gauge(
            "modelops_frontend_served_model_version",
            "The model version TF Serving answered with most recently.",
            multiprocess_mode="mostrecent",
            registry=registry,
        )
        self.served_accuracy = Gauge(
            "modelops_frontend_served_model_accuracy_ratio",
            "Held-out test accuracy of the served version (0..1), from its metrics.json.",
            multiprocess_mode="mostrecent",
            registry=registry,
        )
        # labels -> children, looked up once: labels() takes a lock and builds a key on every call
        self._answered: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}
        self._upstream: dict[str, Histogram] = {}

    def answered(self, endpoint: str, method: str, status: str, seconds: float) -> None:
        """Count and time one answered request."""
        key = (endpoint, method, status)
        children = self._answered.get(key)
        if children is None:
            children = self._answered[key] = (self.requests.labels(*key), self.latency.labels(*key))
        children[0].inc()
        children[1].observe(seconds)

    def upstream(self, operation: str, seconds: float) -> None:
        """Time one call to TF Serving."""
        child = self._upstream.get(operation)
        if child is None:
            child = self._upstream[operation] = self.upstream_latency.labels(operation)
        child.observe(seconds)


_declared: dict[tuple[int, type], object] = {}


def metrics_for(registry: CollectorRegistry | None, kind: type = WebMetrics):
    """The one ``kind`` (a set of metrics declared on a registry) of ``registry`` (the default one when None)."""
    registry = REGISTRY if registry is None else registry
    key = (id(registry), kind)
    if key not in _declared:
        _declared[key] = kind(registry)
    return _declared[key]


def init_app(app: Flask) -> None:
    """Count and time every request, labelled by route (not raw path) and known method: bounded label values."""

    @app.before_request
    def _start_timer():
        g.started = time.perf_counter()

    @app.after_request
    def _observe(response):
        method = request.method if request.method in METHODS else "other"
        rule = request.url_rule.rule if request.url_rule else "unmatched"
        seconds = time.perf_counter() - g.get("started", time.perf_counter())
        current_app.extensions["metrics"].answered(rule, method, str(response.status_code), seconds)
        return response


def record_served(version: int) -> None:
    """Set the served-version gauges when TF Serving reports a version not yet recorded."""
    if current_app.extensions.get("served_version") == version:
        return
    current_app.extensions["served_version"] = version
    web = current_app.extensions["metrics"]
    web.served_version.set(version)
    accuracy = (store().metrics(version) or {}).get("test_accuracy_percent")
    if isinstance(accuracy, (int, float)):
        web.served_accuracy.set(accuracy / 100.0)


@bp.get("/metrics")
def metrics():
    registry = current_app.extensions["metrics"].registry
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ and registry is REGISTRY:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return Response(generate_latest(registry) + live_drift.exposition(), mimetype=CONTENT_TYPE_LATEST)
