"""``POST /predict``: validated rows in, TF Serving's predictions out (JSON, or the page).

The answering version goes out in the ``X-Model-Version`` header, so the JSON body stays
exactly what the product README promises: ``{"predictions": [[p], ...]}``.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from modelops.errors import ServingHTTPError
from modelops.web.deps import serving
from modelops.web.inputs import parse_request
from modelops.web.metrics import record_served
from modelops.web.pages import render_page, wants_html

bp = Blueprint("predict", __name__)


@bp.post("/predict")
def predict():
    rows, is_form = parse_request(request, current_app.config["MAX_INSTANCES"])
    version, predictions = serving().predict_latest(rows)
    if len(predictions) != len(rows):
        raise ServingHTTPError(502, f"TF Serving returned {len(predictions)} predictions for {len(rows)} rows")
    current_app.extensions["metrics"].instances.inc(len(rows))
    record_served(version)
    if is_form and wants_html():
        probability = _probability(predictions[0])
        result = {"probability": probability, "label": int(probability >= 0.5), "version": version}
        return render_page(result=result)
    response = jsonify(predictions=predictions)
    response.headers["X-Model-Version"] = str(version)
    return response


def _probability(prediction) -> float:
    value = prediction[0] if isinstance(prediction, list) and len(prediction) == 1 else prediction
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ServingHTTPError(502, f"TF Serving returned a prediction that is not one number: {prediction!r:.60}")
    return float(value)
