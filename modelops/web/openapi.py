"""``GET /openapi.json``: the frontend's API as OpenAPI 3.1, limits filled in from the config.

The document is ``openapi.json`` beside this module (shipped with the package, so the frontend
image has it), read once at import. A string value ``"$name"`` becomes the limit ``name``
itself, and ``{name}`` inside other strings is replaced by it, so the request limits the app
enforces are the ones it documents.
"""

from __future__ import annotations

import json
from pathlib import Path

from flask import Blueprint, current_app, jsonify

from modelops.web.inputs import FLOAT32_MAX

bp = Blueprint("openapi", __name__)
TEMPLATE = json.loads((Path(__file__).with_name("openapi.json")).read_text(encoding="utf-8"))


def spec(max_instances: int, max_content_length: int) -> dict:
    limits = {"max_instances": max_instances, "max_content_length": max_content_length,
              "float32_max": FLOAT32_MAX, "-float32_max": -FLOAT32_MAX}
    return _fill(TEMPLATE, limits)


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
    return jsonify(spec(cfg["MAX_INSTANCES"], cfg["MAX_CONTENT_LENGTH"]))
