"""``POST /predict``: validated rows in, TF Serving's predictions out (JSON, or the page).

The answering version goes out in the ``X-Model-Version`` header, so the JSON body stays
exactly what the product README promises for the demo: ``{"predictions": [[p], ...]}``. A
declared (named) schema answers ``{"predictions": [{"class", "probability", "probabilities"}]}``,
a number label ``{"predictions": [{"value": 23.4}]}``.
During a staged rollout ``web/traffic.py`` picks that version (stable or canary) and mirrors (shadow).
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from modelops.core import predictions as answers
from modelops.core.errors import ServingHTTPError
from modelops.web import drift as live_drift
from modelops.web.metrics import record_served
from modelops.web.pages import render_page, result_view, wants_html

bp = Blueprint("predict", __name__)


@bp.post("/predict")
def predict():
    inputs = current_app.extensions["inputs"]
    rows, is_form = inputs.parse_request(request, current_app.config["MAX_INSTANCES"])
    client_key = request.headers.get("X-Client-Id") or request.remote_addr or ""
    version, predictions, label = current_app.extensions["traffic"].answer(rows, client_key)
    if len(predictions) != len(rows):
        raise ServingHTTPError(502, f"TF Serving returned {len(predictions)} predictions for {len(rows)} rows")
    current_app.extensions["metrics"].instances.inc(len(rows))
    if label != "canary":
        record_served(version)
        live_drift.observe(version, rows)
    schema = inputs.schema
    if is_form and wants_html():
        return render_page(result=result_view(answers.read(predictions[0], schema), schema, version))
    if not schema.packed:
        predictions = [answers.as_json(answers.read(p, schema), schema) for p in predictions]
    response = jsonify(predictions=predictions)
    response.headers["X-Model-Version"] = str(version)
    return response
