"""The model page: the predict form, the served version, its accuracy history and gate decisions.

It reads the model store and the decision history directly (not through TF Serving), so it
renders on a fresh clone with no models, and while TF Serving is down.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, render_template, request
from werkzeug.exceptions import HTTPException

from modelops import history
from modelops.errors import ServingError
from modelops.history import Event
from modelops.web import chart, traffic
from modelops.web import drift as live_drift
from modelops.web.deps import serving, store
from modelops.web.inputs import FEATURES, FORM_TYPES
from modelops.web.metrics import record_served

bp = Blueprint("pages", __name__)

EVENT_LABELS = {
    Event.PROMOTE: "Promoted",
    Event.REJECT: "Rejected",
    Event.ROLLBACK: "Rolled back",
    Event.VERIFY_FAILED: "Verification failed",
    Event.UNVERIFIED: "Promoted, unverified",
    Event.FAILED: "Run failed",
    Event.ROLLOUT_START: "Rollout started",
    Event.ROLLOUT_ADVANCE: "Rollout advanced",
    Event.ROLLOUT_PROMOTE: "Rollout promoted",
    Event.ROLLOUT_ABORT: "Rollout aborted",
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
    model = (models.metrics(shown) or {}) if shown is not None else None
    records = history.read(cfg.history_path)
    points = chart.accuracy_points(models, records, served)
    context = {
        "model_name": current_app.config["MODEL_NAME"],
        "served": served,
        "serving_problem": serving_problem,
        "shown_version": shown,
        "model": model,
        "comparison": comparison_view(model, shown),
        "threshold": cfg.gate.min_accuracy_percent,
        "chart": chart.render_svg(points, cfg.gate.min_accuracy_percent),
        "points": points,
        "status_labels": chart.STATUS_LABELS,
        "decisions": records[::-1][: current_app.config["HISTORY_ROWS"]],
        "history_damage": records.skipped and history.damage_note(_shown_path(cfg.history_path), records.skipped),
        "event_labels": EVENT_LABELS,
        "error": error,
        "result": result,
        "values": _form_values(),
        "rollout": traffic.page_context(in_rollout, cfg.rollout),
        "drift": live_drift.page_context(records),
    }
    return render_template("index.html", **context), status


def _shown_path(path) -> str:
    """``runs/history.jsonl``: enough to find the file, without the server's directory layout."""
    return f"{path.parent.name}/{path.name}"


def comparison_view(model: dict | None, version: int | None) -> dict | None:
    """The comparison the trainer stored with ``version`` (vs the version before it), as display
    text; None when there is none or it is not in the shape ``modelops.compare`` writes."""
    found: Any = (model or {}).get("comparison")
    try:
        if found["a"]["version"] != version:
            return None
        accuracy = [side["accuracy_percent"] for side in (found["a"], found["b"])]
        return {
            "a": int(found["a"]["version"]), "b": int(found["b"]["version"]), "source": str(found["source"]),
            "agreement": f"{100 * found['class_agreement']:.2f}%",
            "mean": f"{found['mean_abs_diff']:.4f}", "max": f"{found['max_abs_diff']:.4f}",
            "accuracy": [f"{a:.2f}%" for a in accuracy] if None not in accuracy else None,
            "computed_at": found.get("computed_at"),
            "rows": [{"row": int(r["row"]), "x": [f"{v:.4f}" for v in r["x"]], "label": r.get("label"),
                      "a": f"{r['a']:.4f}", "b": f"{r['b']:.4f}", "diff": f"{r['abs_diff']:.4f}"}
                     for r in found["disagree_most"]],
        }
    except (TypeError, KeyError, ValueError):
        return None


def _form_values() -> dict:
    """What the user typed, to put back in the form after a prediction or an error."""
    if request.method != "POST" or request.mimetype not in FORM_TYPES:
        return {}
    try:
        return {name: request.form.get(name, "") for name in FEATURES}
    except HTTPException:  # the body was too large to parse
        return {}
