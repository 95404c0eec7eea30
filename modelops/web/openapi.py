"""``GET /openapi.json``: the frontend's API as OpenAPI 3.1, from the served version's schema and the limits.

The document is ``openapi.json`` beside this module (shipped with the package, so the frontend
image has it), read once at import. A string value ``"$name"`` becomes the limit ``name``
itself, and ``{name}`` inside other strings is replaced by it, so the request limits the app
enforces are the ones it documents. The request, form and response schemas and their examples
are built from the declared features and classes, so they say what ``/predict`` accepts.
"""

from __future__ import annotations

import json
from pathlib import Path

from flask import Blueprint, current_app, jsonify

from modelops.core.schema import Feature, Schema
from modelops.web import files
from modelops.web.inputs import FLOAT32_MAX, Inputs, example_value
from modelops.web.served import served_inputs

bp = Blueprint("openapi", __name__)
TEMPLATE = json.loads((Path(__file__).with_name("openapi.json")).read_text(encoding="utf-8"))
_EXAMPLE_PROBABILITY = 0.8234567
_PACKED_EXAMPLE = [[0.8234567], [0.1234567]]  # one answer per example row


def spec(max_instances: int, max_content_length: int, inputs: Inputs) -> dict:
    limits = {"max_instances": max_instances, "max_content_length": max_content_length}
    doc = _fill(TEMPLATE, limits)
    schema = inputs.schema
    doc["components"]["schemas"].update(_schemas(schema, max_instances))
    post = doc["paths"]["/predict"]["post"]
    if not schema.label.is_number:
        doc["components"]["schemas"]["PredictRequest"]["properties"]["explain_class"] = {
            "enum": list(schema.label.class_names), "description": "explain this class instead of the predicted "
            "one (implies \"explain\": true; docs/explain.md); another value is a 400"}
    names = schema.label.class_names
    post["summary"] = (f"Probability of class {names[-1]} for each row" if schema.packed
                       else f"The predicted {schema.label.column} for each row" if schema.label.is_number
                       else "The predicted class and every class's probability for each row"
                       ) + ", from the highest AVAILABLE version"
    content = post["requestBody"]["content"]
    content["application/json"]["example"] = {"instances": inputs.example_rows()}
    content["application/x-www-form-urlencoded"]["example"] = {
        f.name: example_value(f, 0, i) for i, f in enumerate(schema.features)}
    post["responses"]["200"]["content"]["application/json"]["example"] = {
        "predictions": _PACKED_EXAMPLE if schema.packed else [_named_example(schema)]}
    if schema.label.is_number:
        value = {"type": "number", "description": f"the predicted {schema.label.column}, in its own units"}
        doc["components"]["schemas"]["PredictResponse"] = _response(
            {"type": "object", "required": ["value"], "properties": {
                "value": value, "explanation": {**_EXPLANATION_REF, "description": "with \"explain\": true"}}})
        post["responses"]["200"]["content"]["application/json"]["example"] = {"predictions": [{"value": 23.4}]}
    return doc


def _schemas(schema: Schema, max_instances: int) -> dict:
    if schema.packed:
        number = {"type": "number", "minimum": -FLOAT32_MAX, "maximum": FLOAT32_MAX,
                  "description": "finite, fits float32"}
        columns = {f.name: {**number, **_bounds(f)} for f in schema.features}
        bounded = any(f.min is not None or f.max is not None for f in schema.features)
        row: dict = {"type": "array", "prefixItems": list(columns.values()), "items": False} if bounded \
            else {"type": "array", "items": number}
        row.update(minItems=len(columns), maxItems=len(columns), description=f"[{', '.join(columns)}]")
        item = {"oneOf": [row, _object(columns, list(columns))]}
        answer = {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 1}, "minItems": 1,
                  "maxItems": 1}
        response = _response(answer)
        response["properties"]["explanations"] = {"type": "array", "items": _EXPLANATION_REF, "description":
                                                  "with \"explain\": true, one per row, in order"}
        return {"PredictRequest": _request(item, max_instances), "PredictForm": _form(columns, list(columns)),
                "PredictResponse": response, "Explanation": _explanation(schema)}
    columns = {f.name: _property(f) for f in schema.features}
    required = [f.name for f in schema.features if not f.optional]
    item = _object(columns, required)
    if all(f.numeric for f in schema.features):
        item = {"oneOf": [{"type": "array", "prefixItems": list(columns.values()), "items": False,
                           "minItems": len(columns), "maxItems": len(columns),
                           "description": f"[{', '.join(columns)}]; null for a blank optional value"}, item]}
    form = {f.name: {**_property(f), "type": "string" if not f.numeric else "number"} for f in schema.features}
    names = list(schema.label.class_names)
    probability = {"type": "number", "minimum": 0, "maximum": 1}
    answer = {"type": "object", "required": ["class", "probability", "probabilities"], "properties": {
        "class": {"enum": names, "description": "the most probable class"},
        "probability": {**probability, "description": "of that class"},
        "probabilities": {"type": "object", "required": names, "additionalProperties": False,
                          "properties": dict.fromkeys(names, probability)},
        "explanation": {**_EXPLANATION_REF, "description": "with \"explain\": true"}}}
    return {"PredictRequest": _request(item, max_instances), "PredictForm": _form(form, required),
            "PredictResponse": _response(answer), "Explanation": _explanation(schema)}


_EXPLANATION_REF = {"$ref": "#/components/schemas/Explanation"}


def _explanation(schema: Schema) -> dict:
    """One row's explanation (docs/explain.md): integrated gradients per feature, largest first."""
    probability = {"type": "number", "minimum": 0, "maximum": 1}
    feature = {"type": "object", "required": ["name", "contribution"], "properties": {
        "name": {"enum": list(schema.names)}, "contribution": {"type": "number"}}}
    if schema.label.is_number:
        unit = f"in {schema.label.column}'s units"
        return {"type": "object", "required": ["prediction", "baseline_prediction", "features"],
                "description": "contributions add up to prediction - baseline_prediction (docs/explain.md)",
                "properties": {
                    "prediction": {"type": "number", "description": f"the row's predicted value, {unit}"},
                    "baseline_prediction": {"type": "number", "description": "the typical training row's"},
                    "features": {"type": "array", "items": feature,
                                 "description": f"largest |contribution| first, {unit}"}}}
    return {"type": "object", "required": ["class", "prediction", "baseline_prediction", "features"],
            "description": "contributions add up to prediction - baseline_prediction (docs/explain.md)",
            "properties": {
                "class": {"enum": list(schema.label.class_names), "description": "the class explained (predicted)"},
                "prediction": {**probability, "description": "the row's probability of that class"},
                "baseline_prediction": {**probability, "description": "the typical training row's"},
                "features": {"type": "array", "items": feature, "description": "largest |contribution| first"}}}


def _property(feature: Feature) -> dict:
    """One feature as a JSON value: a number within its bounds, or one of its categories; optional ones may be null."""
    if feature.numeric:
        node: dict = {"type": "integer" if feature.type == "int" else "number", **_bounds(feature)}
    else:
        node = {"type": "string"}
        if feature.temporal:
            node["format"] = "date" if feature.type == "date" else "date-time"
        if feature.values:
            node["enum"] = list(feature.values)
    node["description"] = feature.expected() + ("; optional (null or absent: missing)" if feature.optional else "")
    if feature.optional:
        node["type"] = [node["type"], "null"]
        if "enum" in node:
            node["enum"] = [*node["enum"], None]
    return node


def _bounds(feature: Feature) -> dict:
    return {key: value for key, value in (("minimum", feature.min), ("maximum", feature.max)) if value is not None}


def _object(columns: dict, required: list) -> dict:
    return {"type": "object", "required": required, "additionalProperties": False, "properties": columns}


def _request(item: dict, max_instances: int) -> dict:
    return {"type": "object", "required": ["instances"], "properties": {
        "instances": {"type": "array", "minItems": 1, "maxItems": max_instances, "items": item},
        "explain": {"type": "boolean", "default": False,
                    "description": "also explain each answer: per feature contributions (docs/explain.md)"}}}


def _form(columns: dict, required: list) -> dict:
    explain = {"enum": ["on"], "description": "the \"Explain the answer\" checkbox (docs/explain.md)"}
    return {"type": "object", "required": required, "properties": {**columns, "explain": explain}}


def _response(answer: dict) -> dict:
    return {"type": "object", "required": ["predictions"], "properties": {
        "predictions": {"type": "array", "items": answer}}}


def _named_example(schema: Schema) -> dict:
    names = schema.label.class_names
    if len(names) < 2:  # a number label: spec() puts its own example in
        return {}
    rest = (1 - _EXAMPLE_PROBABILITY) / (len(names) - 1)
    probabilities = {name: round(_EXAMPLE_PROBABILITY if i == 0 else rest, 7) for i, name in enumerate(names)}
    return {"class": names[0], "probability": probabilities[names[0]], "probabilities": probabilities}


def _fill(node, limits: dict):
    if isinstance(node, dict):
        return {key: _fill(value, limits) for key, value in node.items()}
    if isinstance(node, list):
        return [_fill(value, limits) for value in node]
    if isinstance(node, str) and node.startswith("$") and node[1:] in limits:
        return limits[node[1:]]
    if isinstance(node, str) and "{" in node:
        return node.format_map(limits)
    return node


@bp.get("/openapi.json")
def openapi():
    cfg = current_app.config
    inputs = served_inputs()
    doc = spec(cfg["MAX_INSTANCES"], cfg["MAX_CONTENT_LENGTH"], inputs)
    return jsonify(files.document(doc, inputs.schema, cfg["MODELOPS"].score.max_upload_mb))
