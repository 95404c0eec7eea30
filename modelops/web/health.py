"""Liveness and readiness for Compose, Kubernetes and the stack scripts.

``/healthz`` never calls TF Serving (a slow upstream must not get the frontend restarted);
``/readyz`` asks TF Serving for a fresh status, because its HTTP code alone says nothing about
whether a version is AVAILABLE.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from modelops.core.errors import ServingError
from modelops.web.deps import serving
from modelops.web.metrics import record_served
from modelops.web.upstream import public_message

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    try:
        version = serving().latest_version(max_age=0)
        current_app.extensions["schemas"].inputs(version)  # the frontend must be able to check requests for it
    except ServingError as exc:  # SchemaUnreadable included
        return jsonify(error=f"not ready: {public_message(exc)}"), 503
    record_served(version)
    return jsonify(status="ready", model_name=current_app.config["MODEL_NAME"], version=version)
