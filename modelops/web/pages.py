"""The model page: the predict form, the served version, its accuracy history and gate decisions.

It reads the model store and the decision history directly (not through TF Serving), so it
renders on a fresh clone with no models, and while TF Serving is down.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, render_template, request
from werkzeug.exceptions import HTTPException

from modelops.core import history, lineage, scores, stats
from modelops.core.errors import ServingError
from modelops.core.history import Event
from modelops.core.predictions import Prediction
from modelops.core.schema import Schema
from modelops.core.store import ModelStore
from modelops.core.version_schema import SchemaUnreadable
from modelops.web import chart, importance, scatter, traffic
from modelops.web import drift as live_drift
from modelops.web.deps import serving, store
from modelops.web.headers import curl_base
from modelops.web.inputs import FORM_TYPES, Inputs, example_value
from modelops.web.metrics import record_served
from modelops.web.upstream import public_message

bp = Blueprint("pages", __name__)

EVENT_LABELS = {
    Event.PROMOTE: "Promoted",
    Event.REJECT: "Rejected",
    Event.ROLLBACK: "Rolled back",
    Event.VERIFY_FAILED: "Verification failed",
    Event.UNVERIFIED: "Promoted, unverified",
    Event.FAILED: "Run failed",
    Event.UP_TO_DATE: "Up to date",
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
        served, serving_problem = None, public_message(exc)
    shown = served if served is not None else models.latest()
    model = (models.metrics(shown) or {}) if shown is not None else None
    schema = schema_view(model, shown, cfg.schema, models)
    inputs = shown_inputs(shown)
    records = history.read(cfg.history_path)
    points = chart.accuracy_points(models, records, served)
    context = {
        "model_name": current_app.config["MODEL_NAME"],
        "served": served,
        "serving_problem": serving_problem,
        "curl_base": curl_base(),
        "shown_version": shown,
        "model": model,
        "scores": scores.headline(model),
        "comparison": comparison_view(model, shown, tuple(schema["config"]["features"])),
        "evidence": evidence_view(model),
        "lineage": lineage.rows((model or {}).get("lineage")),
        "threshold": cfg.gate.min_accuracy_percent,
        "chart": chart.render_svg(points, cfg.gate.min_accuracy_percent),
        "points": points,
        "status_labels": chart.STATUS_LABELS,
        "decisions": records[::-1][: current_app.config["HISTORY_ROWS"]],
        "history_damage": records.skipped and history.damage_note(_shown_path(cfg.history_path), records.skipped),
        "event_labels": EVENT_LABELS,
        "error": error,
        "result": result,
        "form": form_view(inputs, _form_values(inputs), error),
        "schema": schema,
        "confusion": confusion_view(model),
        "values": scatter.values_view(model),
        "rollout": traffic.page_context(in_rollout, cfg.rollout),
        "drift": live_drift.page_context(records),
        "importance": importance.page_context(models, model, shown),
    }
    return render_template("index.html", **context), status


def _shown_path(path) -> str:
    """``runs/history.jsonl``: enough to find the file, without the server's directory layout."""
    return f"{path.parent.name}/{path.name}"


def comparison_view(model: dict | None, version: int | None, names: tuple[str, ...]) -> dict | None:
    """The comparison the trainer stored with ``version`` (vs the version before it), as display
    text; None when there is none or it is not in the shape ``modelops.trainer.compare`` writes. A row is
    a list of numbers in the order of ``names`` (packed) or an object by feature name."""
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
            "features": _row_names(found["disagree_most"], names),
            "rows": [{"row": int(r["row"]), "x": _row_values(r["x"]), "label": r.get("label"),
                      "a": _answer(r, "a"), "b": _answer(r, "b"), "diff": f"{r['abs_diff']:.4f}"}
                     for r in found["disagree_most"]],
        }
    except (TypeError, KeyError, ValueError):
        return None


def _row_names(rows: list, names: tuple[str, ...]) -> list[str]:
    """Column titles of the disagreeing rows: their feature names."""
    if not rows:
        return []
    first = rows[0]["x"]
    if isinstance(first, dict):
        return [str(name) for name in first]
    return list(names) if len(first) == len(names) else [f"x{i + 1}" for i in range(len(first))]


def _row_values(x) -> list[str]:
    values = x.values() if isinstance(x, dict) else x
    return ["" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v) for v in values]


def _answer(row: dict, side: str) -> str:
    """A version's answer for a row: the probability (packed), or the class and its probability."""
    shown = f"{row[side]:.4f}"
    return f"{row[side + '_class']} {shown}" if f"{side}_class" in row else shown


def evidence_view(model: dict | None) -> dict | None:
    """What the gate measured against the champion for this version (the paired test, the
    slices), as display text; None when nothing usable was recorded (first model, older versions)."""
    gate: Any = (model or {}).get("gate")
    if not isinstance(gate, dict):
        return None
    rows, found = [], gate.get("slices")
    for s in found if isinstance(found, list) else []:
        try:
            rows.append({"name": str(s["name"]), "rows": int(s["rows"]),
                         "candidate": f"{float(s['candidate_percent']):.2f}%",
                         "champion": "—" if s["champion_percent"] is None else f"{float(s['champion_percent']):.2f}%",
                         "p": "—" if s["p_value"] is None else f"{float(s['p_value']):.3g}",
                         "verdict": str(s["verdict"])})
        except (TypeError, KeyError, ValueError):
            continue  # a damaged row is left out; the others still show
    record: Any = gate.get("comparison")
    comparison = stats.describe(record)
    headline = comparison and (f"{float(record['difference_percent']):+.2f} points vs the champion, "
                               f"p={float(record['p_value']):.3g}")  # describe() has checked both
    return {"comparison": comparison, "headline": headline, "slices": rows} if comparison or rows else None


def shown_inputs(version: int | None) -> Inputs:
    """The parser of the schema ``version`` takes (the form follows it); the last one known when it
    cannot be read (the page still renders; ``/predict`` and ``/readyz`` say why)."""
    book = current_app.extensions["schemas"]
    try:
        return book.inputs(version)
    except SchemaUnreadable:
        return book.inputs(None)


def _form_values(inputs: Inputs) -> dict:
    """What the user typed, to put back in the form after a prediction or an error."""
    if request.method != "POST" or request.mimetype not in FORM_TYPES:
        return {}
    try:
        return {name: request.form.get(name, "") for name in inputs.names}
    except HTTPException:  # the body was too large to parse
        return {}


def form_view(inputs: Inputs, values: dict, error: str | None) -> dict:
    """The predict form, one field per declared feature: a ``<select>`` for categories with declared
    values, a number input with the bounds for bounded numbers, else a text input; a required field
    starts at an example value, an optional one blank. Unbounded numbers only (the demo) share one hint."""
    features = inputs.schema.features
    shared_hint = None
    if all(f.numeric and f.min is None and f.max is None for f in features) and inputs.schema.packed:
        count = "Two" if len(features) == 2 else str(len(features))
        shared_hint = f"{count} numbers, e.g. 1.5 and -2.3."
    fields = []
    for i, f in enumerate(features):
        typed = values.get(f.name) or ("" if f.optional else str(example_value(f, 0, i)))
        field = {"name": f.name, "value": typed, "required": not f.optional,
                 "hint": f.expected() + ("; may stay blank" if f.optional else ""),
                 "described_by": "form-error" if error else ("x-hint" if shared_hint else f"{f.name}-hint")}
        if f.temporal:
            field.update(kind="date" if f.type == "date" else "datetime-local")
        elif not f.numeric:
            field["kind"] = "select" if f.values else "text"
            field["options"] = ([""] if f.optional else []) + list(f.values or ())
        elif f.min is not None or f.max is not None:
            field.update(kind="number", min=f.min, max=f.max, step=1 if f.type == "int" else "any")
        else:
            field.update(kind="text", inputmode="numeric" if f.type == "int" else "decimal")
        fields.append(field)
    return {"fields": fields, "hint": shared_hint, "curl": inputs.form_example}


def result_view(answer: Prediction, schema: Schema, version: int) -> dict:
    """A prediction as the page shows it: packed, the second class's probability (the demo's "class 1");
    named, the class, its probability and every class's; a number label, the value and its column's name."""
    if answer.value is not None:
        return {"number": True, "value": answer.value, "unit": schema.label.column, "version": version}
    names = schema.label.class_names
    return {"packed": schema.packed, "label": answer.name(schema), "probability": answer.probability,
            "positive": names[-1], "positive_probability": answer.probabilities[-1],
            "classes": list(zip(names, answer.probabilities, strict=True)), "version": version}


def confusion_view(model: dict | None) -> dict | None:
    """The per-class confusion table the trainer stored (``confusion``: ``classes`` and ``counts``,
    rows the true class, columns the predicted), with each class's recall; None when absent or damaged."""
    found: Any = (model or {}).get("confusion")
    try:
        classes = [str(c) for c in found["classes"]]
        counts = [[int(n) for n in row] for row in found["counts"]]
    except (TypeError, KeyError, ValueError):
        return None
    if len(counts) != len(classes) or any(len(row) != len(classes) for row in counts):
        return None
    rows = [{"name": name, "counts": row,
             "recall": f"{100 * row[i] / sum(row):.1f}%" if sum(row) else "no rows"}
            for i, (name, row) in enumerate(zip(classes, counts, strict=True))]
    return {"classes": classes, "rows": rows}


def schema_view(model: dict | None, version: int | None, declared: Schema, models: ModelStore | None = None) -> dict:
    """The schema to show: the one recorded with the shown version (what it takes), else the declared one,
    with a note when config.json now declares another: which published version already has it, or
    that the next retrain trains it."""
    declared_config = declared.to_config()
    recorded = (model or {}).get("schema")
    if not isinstance(recorded, dict) or not isinstance(recorded.get("features"), dict):
        return {"source": "declared in config.json", "config": declared_config, "changed": False}
    changed, newer = recorded != declared_config, None
    if changed and models is not None and version is not None:
        newer = next((v for v in reversed(models.versions()) if v > version
                      and (models.metrics(v) or {}).get("schema") == declared_config), None)
    return {"source": f"recorded with version {version}", "config": recorded, "changed": changed,
            "newer": newer}
