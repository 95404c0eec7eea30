"""TF Serving's REST API as a plain WSGI app: routes, bodies, status codes, error texts.

A framework would add per-request cost and its own 404/405 answers, while TF Serving's routing
is two case-insensitive regexes with a 400 "Malformed request" for anything else under ``/v1/``
and an HTML 404 outside it; so this matches them directly. Validation follows TF Serving's order
(URL, JSON, top-level object, signature_name type, model lookup, signature, inputs, run), which
decides which error a bad request gets. Every request is counted for the Prometheus metrics.
The JSON <-> tensor rules of predict live in json_tensors.py.
"""

from __future__ import annotations

import html
import json
import logging
import re
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import unquote

from google.protobuf import json_format

from modelops.core.errors import ServableError
from modelops.core.signature import SERVING_SIGNATURE
from modelops.localserving.json_tensors import dump_value, request_tensors, response_body
from modelops.localserving.monitoring import Metrics
from modelops.localserving.registry import ModelRegistry
from modelops.localserving.request_limits import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_INSTANCES,
    RequestTooLarge,
    check_depth,
    check_rows,
    content_length,
)
from modelops.localserving.versions import VersionStatus
from modelops.savedmodel import Signature

logger = logging.getLogger("modelops.localserving")

_V1 = re.compile(r"/v1/", re.IGNORECASE)
_POST = re.compile(
    r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r":(?P<verb>classify|regress|predict)",
    re.IGNORECASE,
)
_GET = re.compile(
    r"/v1/models(?:/(?P<name>[^/:]+))?(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?(?P<metadata>/metadata)?",
    re.IGNORECASE,
)
_ORIGIN = re.compile(r"https?://")
# model_servers/http_server.cc ToHTTPStatusCode
_HTTP_STATUS = {
    "OK": 200,
    "CANCELLED": 499,
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "PERMISSION_DENIED": 403,
    "UNAUTHENTICATED": 401,
    "RESOURCE_EXHAUSTED": 429,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
}
_STATUS_LINES = {
    code: f"{code} {HTTPStatus(code).phrase}" for code in (*_HTTP_STATUS.values(), 413, 500) if code != 499
}
_STATUS_LINES[499] = "499 Client Closed Request"
_JSON_DECODER = json.JSONDecoder()
_INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class Route:
    """A parsed ``/v1`` path; ``verb`` is empty for GET status/metadata."""

    name: str
    version: int | None
    label: str | None
    verb: str
    metadata: bool


class RestApp:
    """The WSGI callable served on ``--rest_api_port``."""

    def __init__(self, manager: ModelRegistry, metrics: Metrics, metrics_path: str | None, timeout_ms: int,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, read_done: Callable[[], None] = lambda: None,
                 max_instances: int = DEFAULT_MAX_INSTANCES):
        self._manager = manager
        self._metrics = metrics
        self._metrics_path = metrics_path
        self._timeout = timeout_ms / 1000.0
        self._max_body_bytes = max_body_bytes
        self._max_instances = max_instances
        self._read_done = read_done  # the request is in: its read deadline no longer applies

    def __call__(self, environ, start_response):
        start = time.perf_counter()
        method = environ["REQUEST_METHOD"]
        if method != "POST":
            self._read_done()
        path = (environ.get("REQUEST_URI") or environ.get("PATH_INFO", "")).split("?", 1)[0]
        if method == "GET" and path == self._metrics_path:
            return _send(start_response, 200, "text/plain", self._metrics.render().encode())
        if not _V1.match(path):
            page = (
                f"<HTML><HEAD>\n<TITLE>404 Not Found</TITLE>\n</HEAD><BODY>\n<H1>Not Found</H1>\n"
                f"The requested URL {html.escape(path)} was not found on this server.<P>\n</BODY></HTML>\n"
            )
            return _send(start_response, 404, "text/html", page.encode())
        route, too_large = None, False
        try:
            route = _route(method, path, environ)
            body = self._handle(route, environ, start) if route else b""
            code = "OK"
        except ServableError as e:
            code, body, too_large = e.code, {"error": e.message}, isinstance(e, RequestTooLarge)
        except RecursionError:  # a tensor nested deeper than the converters recurse
            code, body = "INVALID_ARGUMENT", {"error": "JSON Parse error: nested too deeply"}
        except Exception:  # a server bug still answers JSON, and is logged; its text stays in the log
            logger.exception("%s %s failed", method, path)
            code, body = "INTERNAL", {"error": "Internal error: the request failed on the server (see its log)"}
        self._metrics.request(
            route.name if route else "", code, route.verb if route else "", "REST", time.perf_counter() - start
        )
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        status = 413 if too_large else _HTTP_STATUS.get(code, 500)
        return _send(start_response, status, "application/json", payload)

    def _handle(self, route: Route, environ, start: float) -> dict:
        if not route.verb:
            if route.metadata:
                return self._metadata(route)
            return _status_json(self._manager.status(route.name, route.version))
        request = _parse_json(self._read_body(environ))
        check_rows(request, self._max_instances)
        check_depth(request)
        signature_name = request.get("signature_name", SERVING_SIGNATURE)
        if not isinstance(signature_name, str):
            raise ServableError(
                "INVALID_ARGUMENT",
                f"JSON Value: {dump_value(signature_name)} 'signature_name' key must be a string value.",
            )
        servable = self._manager.servable(route.name, route.version, route.label)
        if route.verb != "predict":
            return _refuse_example_api(route.verb, request, servable.signatures.get(signature_name), signature_name)
        signature = servable.signatures.get(signature_name)
        if signature is None:
            raise ServableError(
                "INVALID_ARGUMENT", f'Serving signature name: "{signature_name}" not found in signature def'
            )
        tensors, rows = request_tensors(request, signature)
        outputs = signature.run(tensors)
        if time.perf_counter() - start > self._timeout:
            raise ServableError("DEADLINE_EXCEEDED", "Deadline Exceeded")
        return response_body(outputs, rows)

    def _read_body(self, environ) -> str:
        """The request body as text, at most ``max_body_bytes`` both as sent and once gunzipped."""
        limit = self._max_body_bytes
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            raw = environ["wsgi.input"].read(limit + 1)
        else:
            length = content_length(environ)
            if length > limit:
                raise RequestTooLarge(f"Request body of {length} bytes is larger than {limit} bytes")
            raw = environ["wsgi.input"].read(length)
        self._read_done()
        if len(raw) > limit:
            raise RequestTooLarge(f"Request body is larger than {limit} bytes")
        try:
            if environ.get("HTTP_CONTENT_ENCODING", "").lower() == "gzip":
                raw = _gunzip(raw, limit)
            return raw.decode("utf-8")
        except (zlib.error, UnicodeDecodeError) as e:
            raise ServableError("INVALID_ARGUMENT", f"JSON Parse error: {e}") from e

    def _metadata(self, route: Route) -> dict:
        servable = self._manager.servable(route.name, route.version, route.label)
        definitions = {
            name: json_format.MessageToDict(
                definition, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
            )
            for name, definition in servable.signature_defs.items()
        }
        return {
            "model_spec": {"name": route.name, "signature_name": "", "version": str(servable.version)},
            "metadata": {"signature_def": {"signature_def": definitions}},
        }


def _route(method: str, path: str, environ) -> Route | None:
    """Parse the path like TF Serving; None for a CORS preflight, which has no body to answer."""
    if method == "OPTIONS":
        if _ORIGIN.match(environ.get("HTTP_ORIGIN", "")):
            return None
        raise ServableError("INVALID_ARGUMENT", "Origin header is missing in CORS preflight")
    pattern = {"GET": _GET, "POST": _POST}.get(method)
    match = pattern.fullmatch(path) if pattern else None
    if not match or (method == "POST" and match["verb"] not in ("predict", "classify", "regress")):
        raise ServableError("INVALID_ARGUMENT", f"Malformed request: {method} {path}")
    if not match["name"]:
        raise ServableError("INVALID_ARGUMENT", "Missing model name in request.")
    version = None
    if match["version"] is not None:
        version = int(match["version"])
        if version > _INT64_MAX:
            raise ServableError("INVALID_ARGUMENT", f"Failed to convert version: {match['version']} to numeric.")
    label = unquote(match["label"]) if match["label"] is not None else None
    verb = match["verb"] if method == "POST" else ""
    return Route(unquote(match["name"]), version, label, verb, method == "GET" and bool(match["metadata"]))


def _gunzip(raw: bytes, limit: int) -> bytes:
    """Inflate a gzip body, stopping as soon as it exceeds ``limit``: a small bomb costs nothing."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = inflater.decompress(raw, limit + 1)
    if len(out) > limit:
        raise RequestTooLarge(f"Request body inflates to more than {limit} bytes")
    if not inflater.eof:
        raise ServableError("INVALID_ARGUMENT", "JSON Parse error: the gzip body is truncated")
    return out


def _parse_json(text: str) -> dict:
    stripped = text.lstrip(" \t\r\n")
    if not stripped:
        raise ServableError("INVALID_ARGUMENT", "JSON Parse error: The document is empty")
    try:
        document, _ = _JSON_DECODER.raw_decode(stripped)  # like rapidjson's stop-when-done: trailing bytes ignored
    except RecursionError:
        raise ServableError("INVALID_ARGUMENT", "JSON Parse error: nested too deeply") from None
    except json.JSONDecodeError as e:
        offset = e.pos + len(text) - len(stripped)
        raise ServableError("INVALID_ARGUMENT", f"JSON Parse error: {e.msg}. at offset: {offset}") from e
    if type(document) is not dict:
        raise ServableError("INVALID_ARGUMENT", f"JSON Value: {dump_value(document)} Is not object")
    return document


def _refuse_example_api(verb: str, request: dict, signature: Signature | None, name: str):
    """Classify/regress take tf.Example signatures, which the project's SavedModels never have."""
    if "examples" not in request:
        raise ServableError("INVALID_ARGUMENT", f"When method is {verb}, key 'examples' is expected and was not found")
    if signature is None:
        raise ServableError("INVALID_ARGUMENT", f"No signature was found with the name: {name}")
    if verb == "classify":
        raise ServableError(
            "INVALID_ARGUMENT",
            'Expected classification signature outputs to contain at least one of "classes" or "scores".',
        )
    raise ServableError("INVALID_ARGUMENT", f"No regression outputs found in signature: {name}")


def _status_json(statuses: list[VersionStatus]) -> dict:
    return {
        "model_version_status": [
            {
                "version": str(s.version),
                "state": s.state,
                "status": {"error_code": s.error_code, "error_message": s.error_message},
            }
            for s in statuses
        ]
    }


def _send(start_response, code: int, content_type: str, payload: bytes):
    start_response(_STATUS_LINES[code], [("Content-Type", content_type), ("Content-Length", str(len(payload)))])
    return [payload]
