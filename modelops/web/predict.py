"""``POST /predict``: validated rows in, TF Serving's predictions out (JSON, or the page).

The answering version goes out in the ``X-Model-Version`` header, so the JSON body stays
exactly what the product README promises for the demo: ``{"predictions": [[p], ...]}``. A
declared (named) schema answers ``{"predictions": [{"class", "probability", "probabilities"}]}``,
a number label ``{"predictions": [{"value": 23.4}]}``.
``"explain": true`` adds each named row's ``explanation`` (the demo's packed rows: a parallel
``explanations`` list), from the same version (``web/explanations.py``).
During a staged rollout ``web/traffic.py`` picks that version (stable or canary) and mirrors (shadow).
The rows are checked against the schema of the version they are routed to (``web/served.py``).
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from modelops.core import predictions as answers
from modelops.core.errors import ServingError, ServingHTTPError
from modelops.web import drift as live_drift
from modelops.web import explanations, files, importance
from modelops.web.metrics import record_served
from modelops.web.pages import render_page, result_view, wants_html

bp = Blueprint("predict", __name__)


@bp.post("/predict")
def predict():
    if request.mimetype == "text/csv":  # a whole file, scored as the command scores it
        return files.predict_csv()
    book = current_app.extensions["schemas"]
    guess = book.inputs(None)
    raw, is_form = guess.read_request(request, current_app.config["MAX_INSTANCES"])
    checked: dict = {}

    def prepare(version: int) -> list:
        """The rows as the schema of ``version`` (the one the request is routed to) reads them."""
        if version not in checked:
            checked[version] = book.inputs(version).validate(raw, is_form)
        return checked[version]

    traffic = current_app.extensions["traffic"]
    client_key = traffic.client_key(request.headers.get("X-Client-Id"), request.remote_addr)
    try:
        version, predictions, label = traffic.answer([], client_key, prepare)
    except ServingError:
        if not checked:
            guess.validate(raw, is_form)  # serving is unreachable: bad input is still a 400, as before
        raise
    rows, inputs = prepare(version), book.inputs(version)
    if len(predictions) != len(rows):
        raise ServingHTTPError(502, f"TF Serving returned {len(predictions)} predictions for {len(rows)} rows")
    current_app.extensions["metrics"].instances.inc(len(rows))
    if label != "canary":
        record_served(version)
        live_drift.observe(version, rows)
    schema = inputs.schema
    wanted = explanations.requested(is_form)
    explained = explanations.explain(rows, version, schema) if wanted else None
    if is_form and wants_html():
        result = result_view(answers.read(predictions[0], schema), schema, version)
        result["explanation"] = explained and importance.answer_bars(explained[0])
        return render_page(result=result)
    body: dict = {}
    if not schema.packed:
        predictions = [answers.as_json(answers.read(p, schema), schema) for p in predictions]
        for prediction, why in zip(predictions, explained or [], strict=False):
            prediction["explanation"] = why
    elif explained is not None:
        body["explanations"] = explained
    response = jsonify(predictions=predictions, **body)
    response.headers["X-Model-Version"] = str(version)
    return response
