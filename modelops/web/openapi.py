"""``GET /openapi.json``: the frontend's API as OpenAPI 3.1, limits filled in from the config."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from modelops.web.inputs import FLOAT32_MAX

bp = Blueprint("openapi", __name__)


def _response(description: str, schema: str, media: str = "application/json") -> dict:
    """A response whose body is ``schema``: a component name, or a plain JSON type."""
    body = {"$ref": f"#/components/schemas/{schema}"} if schema[0].isupper() else {"type": schema}
    return {"description": description, "content": {media: {"schema": body}}}


def _error(description: str) -> dict:
    return _response(description, "Error")


def spec(max_instances: int, max_content_length: int) -> dict:
    number = {"type": "number", "minimum": -FLOAT32_MAX, "maximum": FLOAT32_MAX, "description": "finite, fits float32"}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "modelops frontend",
            "version": "1.0.0",
            "description": "Predictions from the served TensorFlow model (proxied to TF Serving), health and metrics.",
        },
        "paths": {
            "/predict": {
                "post": {
                    "summary": "Probability of class 1 for each row, from the highest AVAILABLE version",
                    "requestBody": {
                        "required": True,
                        "description": f"At most {max_instances} rows and {max_content_length} bytes.",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/PredictRequest"},
                                "example": {"instances": [[1.5, 2.3], [0.8, -1.2]]},
                            },
                            "application/x-www-form-urlencoded": {
                                "schema": {"$ref": "#/components/schemas/PredictForm"},
                                "example": {"x1": 1.5, "x2": 2.3},
                            },
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "One prediction per row, in order. Browsers posting the form "
                            "(Accept: text/html) get the page with the result instead.",
                            "headers": {
                                "X-Model-Version": {
                                    "description": "The model version that answered",
                                    "schema": {"type": "integer"},
                                }
                            },
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/PredictResponse"},
                                    "example": {"predictions": [[0.8234567], [0.1234567]]},
                                },
                                "text/html": {"schema": {"type": "string"}},
                            },
                        },
                        "400": _error(
                            "Invalid input: wrong content type, bad JSON, wrong row shape, "
                            "non-numbers, NaN or infinities, too many rows"
                        ),
                        "413": _error("Request body larger than the limit"),
                        "502": _error("TF Serving failed with a server error"),
                        "503": _error("TF Serving unreachable, or no model version loaded yet"),
                        "504": _error("TF Serving did not answer in time"),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "The frontend process is alive (does not call TF Serving)",
                    "responses": {"200": _response("Alive", "Status")},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "TF Serving reports an AVAILABLE version of the model",
                    "responses": {
                        "200": _response("Ready", "Ready"),
                        "503": _error("TF Serving unreachable, slow, or no version AVAILABLE"),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics of all gunicorn workers",
                    "responses": {"200": _response("Prometheus text format", "string", "text/plain")},
                }
            },
            "/": {
                "get": {
                    "summary": "The model page: predict form, served version, accuracy chart, gate decisions",
                    "responses": {"200": _response("HTML", "string", "text/html")},
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {"200": _response("OpenAPI 3.1", "object")},
                }
            },
        },
        "components": {
            "schemas": {
                "PredictRequest": {
                    "type": "object",
                    "required": ["instances"],
                    "properties": {
                        "instances": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": max_instances,
                            "items": {
                                "oneOf": [
                                    {
                                        "type": "array",
                                        "items": number,
                                        "minItems": 2,
                                        "maxItems": 2,
                                        "description": "[x1, x2]",
                                    },
                                    {
                                        "type": "object",
                                        "required": ["x1", "x2"],
                                        "additionalProperties": False,
                                        "properties": {"x1": number, "x2": number},
                                    },
                                ]
                            },
                        }
                    },
                },
                "PredictForm": {
                    "type": "object",
                    "required": ["x1", "x2"],
                    "properties": {"x1": number, "x2": number},
                },
                "PredictResponse": {
                    "type": "object",
                    "required": ["predictions"],
                    "properties": {
                        "predictions": {
                            "type": "array",
                            "items": {
                                "type": "array",
                                "items": {"type": "number", "minimum": 0, "maximum": 1},
                                "minItems": 1,
                                "maxItems": 1,
                            },
                        }
                    },
                },
                "Ready": {
                    "type": "object",
                    "required": ["status", "model_name", "version"],
                    "properties": {
                        "status": {"const": "ready"},
                        "model_name": {"type": "string"},
                        "version": {"type": "integer"},
                    },
                },
                "Status": {"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}},
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string", "description": "What was wrong and how to fix it"}},
                },
            }
        },
    }


@bp.get("/openapi.json")
def openapi():
    cfg = current_app.config
    return jsonify(spec(cfg["MAX_INSTANCES"], cfg["MAX_CONTENT_LENGTH"]))
