"""Every failure becomes ``{"error": "..."}`` (or the page with the message) with the right code.

InputError                 -> 400  what was wrong, with an example of a good request
RequestEntityTooLarge      -> 413
ModelNotLoaded             -> 503  serving is up, no version AVAILABLE yet
ServingUnavailable         -> 503  "TF Serving is unavailable" with a request id; the detail is logged
ServingTimeout             -> 504  the same (web/upstream.py)
ServingHTTPError 404       -> 503  the version vanished twice in a row (model swap)
ServingHTTPError other 4xx -> same code, TF Serving's message
ServingHTTPError 5xx       -> 502
other HTTPException        -> its code (404, 405, ...)
anything else              -> 500, logged with its traceback (a bug, never the client's fault)

If rendering the page for an error fails too (the page reads files that may be damaged), the
answer is a plain HTML page with the same status and message, returned normally so the
request is still counted in the metrics; otherwise Flask would re-raise and gunicorn would
send a bare 500 that nothing counts.
"""

from __future__ import annotations

import html

from flask import Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge

from modelops.core.errors import ServingHTTPError, ServingTimeout, ServingUnavailable
from modelops.web import upstream
from modelops.web.inputs import InputError
from modelops.web.pages import render_page, wants_html


def init_app(app: Flask) -> None:
    app.register_error_handler(Exception, handle)


def handle(exc: Exception):
    status, message = describe(exc)
    if status == 500:
        current_app.logger.exception("unexpected error answering %s %s", request.method, request.path)
    if wants_html():
        try:
            return render_page(status=status, error=message)
        except Exception:
            current_app.logger.exception("the page for a %s error could not be rendered; sent a plain page", status)
            return _plain_page(status, message)
    response = jsonify(error=message)
    if isinstance(exc, MethodNotAllowed):
        response.headers["Allow"] = ", ".join(exc.valid_methods or ())
    return response, status


def _plain_page(status: int, message: str):
    body = (f"<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Error {status}</title>"
            f"<h1>Error {status}</h1><p>{html.escape(message)}</p>"
            "<p>The full page could not be shown; the frontend log says why.</p>")
    return body, status, {"Content-Type": "text/html; charset=utf-8"}


def describe(exc: Exception) -> tuple[int, str]:
    if isinstance(exc, InputError):
        return 400, str(exc)
    if isinstance(exc, RequestEntityTooLarge):
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        return 413, (
            f"the request body is larger than {limit} bytes; send fewer rows per request "
            f"(at most {current_app.config['MAX_INSTANCES']})"
        )
    if isinstance(exc, ServingUnavailable):
        return 503, upstream.public_message(exc)
    if isinstance(exc, ServingTimeout):
        return 504, upstream.public_message(exc)
    if isinstance(exc, ServingHTTPError):
        if exc.status == 404:
            return 503, f"the served model version changed during the request ({exc.message}); retry"
        if exc.status < 500:
            return exc.status, f"TF Serving rejected the request: {exc.message}"
        return 502, f"TF Serving failed ({exc.status}): {exc.message}; retry, and check its logs if it persists"
    if isinstance(exc, HTTPException):
        if exc.code == 404:
            return 404, f"nothing at {request.path}; the API is described at /openapi.json"
        if isinstance(exc, MethodNotAllowed):
            return 405, f"{request.method} is not allowed on {request.path}; use {', '.join(exc.valid_methods or ())}"
        return exc.code or 500, exc.description or exc.name
    return 500, "internal error in the frontend; it has been logged"
