"""The model page: the predict form, the served version, its accuracy history and gate decisions.

It reads the model store and the decision history directly (not through TF Serving), so it
renders on a fresh clone with no models, and while TF Serving is down.
"""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request
from werkzeug.exceptions import HTTPException

from modelops import history
from modelops.errors import ServingError
from modelops.web import chart, traffic
from modelops.web.deps import serving, store
from modelops.web.inputs import FEATURES, FORM_TYPES
from modelops.web.metrics import record_served

bp = Blueprint("pages", __name__)

EVENT_LABELS = {
    "promote": "Promoted",
    "reject": "Rejected",
    "rollback": "Rolled back",
    "verify-failed": "Verification failed",
    "unverified": "Promoted, unverified",
    "failed": "Run failed",
    "rollout-start": "Rollout started",
    "rollout-advance": "Rollout advanced",
    "rollout-promote": "Rollout promoted",
    "rollout-abort": "Rollout aborted",
}


@bp.get("/")
def index():
    return render_page()


@bp.app_template_filter("when")
def when(value) -> str:
    """``2025-11-26T05:02:00Z`` as ``2025-11-26 05:02 UTC``; anything else unchanged."""
    text = str(value or "")
    if len(text) == 20 and text[10] == "T" and text.endswith("Z"):
        return f"{text[:10]} {text[11:16]} UTC"
    return text or "unknown"


def wants_html() -> bool:
    """A browser (not a JSON or curl-like client) made this request."""
    if request.is_json:
        return False
    return request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html"


def render_page(status: int = 200, error: str | None = None, result: dict | None = None):
    cfg = current_app.config["MODELOPS"]
    models = store()
    in_rollout = current_app.extensions["traffic"].current()
    try:
        served, serving_problem = serving().latest_version(), None
        served = in_rollout.stable if in_rollout else served  # the candidate is loaded, not served
        record_served(served)
    except ServingError as exc:
        served, serving_problem = None, str(exc)
    shown = served if served is not None else models.latest()
    records = history.read(cfg.history_path)
    points = chart.accuracy_points(models, records, served)
    context = {
        "model_name": current_app.config["MODEL_NAME"],
        "served": served,
        "serving_problem": serving_problem,
        "shown_version": shown,
        "model": (models.metrics(shown) or {}) if shown is not None else None,
        "threshold": cfg.gate.min_accuracy_percent,
        "chart": chart.render_svg(points, cfg.gate.min_accuracy_percent),
        "points": points,
        "status_labels": chart.STATUS_LABELS,
        "decisions": records[::-1][: current_app.config["HISTORY_ROWS"]],
        "event_labels": EVENT_LABELS,
        "error": error,
        "result": result,
        "values": _form_values(),
        "rollout": traffic.page_context(in_rollout, cfg.rollout),
    }
    return render_template("index.html", **context), status


def _form_values() -> dict:
    """What the user typed, to put back in the form after a prediction or an error."""
    if request.method != "POST" or request.mimetype not in FORM_TYPES:
        return {}
    try:
        return {name: request.form.get(name, "") for name in FEATURES}
    except HTTPException:  # the body was too large to parse
        return {}
