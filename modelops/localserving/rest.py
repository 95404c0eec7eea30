"""TF Serving's REST API as a plain WSGI app: routes, JSON <-> tensors, status codes, error texts.

A framework would add per-request cost and its own 404/405 answers, while TF Serving's routing
is two case-insensitive regexes with a 400 "Malformed request" for anything else under ``/v1/``
and an HTML 404 outside it; so this matches them directly. Validation follows TF Serving's order
(URL, JSON, top-level object, signature_name type, model lookup, signature, inputs, run), which
decides which error a bad request gets. Every request is counted for the Prometheus metrics.
"""

from __future__ import annotations

import base64
import binascii
import functools
import html
import itertools
import json
import logging
import math
import re
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import unquote

import numpy as np
import tensorflow as tf
from google.protobuf import json_format

from modelops.core.errors import ServableError
from modelops.core.signature import SERVING_SIGNATURE
from modelops.localserving.monitoring import Metrics
from modelops.localserving.registry import ModelRegistry
from modelops.localserving.versions import VersionStatus
from modelops.savedmodel import Signature

logger = logging.getLogger("modelops.localserving")

DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
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
# TF's DataTypeString for the names TF Serving puts in "is not of expected type: ..."
_TYPE_NAMES = {"float32": "float", "float64": "double"}


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
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, read_done: Callable[[], None] = lambda: None):
        self._manager = manager
        self._metrics = metrics
        self._metrics_path = metrics_path
        self._timeout = timeout_ms / 1000.0
        self._max_body_bytes = max_body_bytes
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
        except Exception as e:  # a server bug still answers JSON, and is logged
            logger.exception("%s %s failed", method, path)
            code, body = "INTERNAL", {"error": f"{type(e).__name__}: {e}"}
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
        signature_name = request.get("signature_name", SERVING_SIGNATURE)
        if not isinstance(signature_name, str):
            raise ServableError(
                "INVALID_ARGUMENT", f"JSON Value: {_dump(signature_name)} 'signature_name' key must be a string value."
            )
        servable = self._manager.servable(route.name, route.version, route.label)
        if route.verb != "predict":
            return _refuse_example_api(route.verb, request, servable.signatures.get(signature_name), signature_name)
        signature = servable.signatures.get(signature_name)
        if signature is None:
            raise ServableError(
                "INVALID_ARGUMENT", f'Serving signature name: "{signature_name}" not found in signature def'
            )
        if ("instances" in request) == ("inputs" in request):
            if "instances" in request:
                raise ServableError(
                    "INVALID_ARGUMENT",
                    f"JSON Value: {_dump(request)} Not formatted correctly "
                    "expecting only one of 'inputs' or 'instances' keys to exist ",
                )
            raise ServableError("INVALID_ARGUMENT", "Missing 'inputs' or 'instances' key")
        rows = "instances" in request
        tensors = _from_rows(request["instances"], signature) if rows else _from_columns(request["inputs"], signature)
        outputs = signature.run(tensors)
        if time.perf_counter() - start > self._timeout:
            raise ServableError("DEADLINE_EXCEEDED", "Deadline Exceeded")
        return {"predictions": _to_rows(outputs)} if rows else {"outputs": _to_columns(outputs)}

    def _read_body(self, environ) -> str:
        """The request body as text, at most ``max_body_bytes`` both as sent and once gunzipped."""
        limit = self._max_body_bytes
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            raw = environ["wsgi.input"].read(limit + 1)
        else:
            length = int(environ.get("CONTENT_LENGTH") or 0)
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


class RequestTooLarge(ServableError):
    """A body over the limit: 413 (not a TF Serving status: it has no limit), saying how to fit."""

    def __init__(self, what: str):
        super().__init__(
            "RESOURCE_EXHAUSTED", f"{what} (--rest_api_max_request_bytes); send fewer instances per request"
        )


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
        raise ServableError("INVALID_ARGUMENT", f"JSON Value: {_dump(document)} Is not object")
    return document


def _from_rows(instances, signature: Signature) -> dict[str, np.ndarray]:
    """Row format: one element per example, stacked along a new batch dimension."""
    if type(instances) is not list:
        raise ServableError(
            "INVALID_ARGUMENT", f"JSON Value: {_dump(instances)} Expecting 'instances' to be an list/array"
        )
    if not instances:
        raise ServableError("INVALID_ARGUMENT", "JSON Value: [] No values in 'instances' array")
    aliases = list(signature.inputs)
    if type(instances[0]) is not dict and len(aliases) > 1:
        raise ServableError(
            "INVALID_ARGUMENT",
            "instances is a plain list, but expecting list of objects as "
            "multiple input tensors required as per tensorinfo_map",
        )
    if _is_named(instances[0]):
        return _from_named_rows(instances, signature)
    alias = aliases[0]  # one input (several: TF Serving feeds the first only, and the run says what is missing)
    dtype = signature.inputs[alias].dtype
    if not _is_matrix(instances, dtype):
        shape = None
        for i, element in enumerate(instances):
            if _is_named(element):
                raise ServableError(
                    "INVALID_ARGUMENT", f"Expecting value/list but got object at item {i} of input list"
                )
            try:
                shape = _same_shape(shape, _shape(element, dtype))
            except ServableError as e:
                raise _in_element(e, f"{i}") from e
    return {alias: _tensor(instances, dtype)}


def _from_named_rows(instances: list, signature: Signature) -> dict[str, np.ndarray]:
    """Row format with one object per example, keyed by input alias, checked as TF Serving does:
    key by key in the object's order, then the object's keys against the signature's."""
    columns: dict[str, list] = {alias: [] for alias in signature.inputs}
    shapes: dict[str, tuple[int, ...]] = {}
    for i, row in enumerate(instances):
        if not _is_named(row):
            raise ServableError("INVALID_ARGUMENT", f"Expecting object but got list at item {i} of input list")
        for key, value in row.items():
            try:
                if key not in columns:
                    raise ServableError("INVALID_ARGUMENT", f"JSON object: does not have named input: {key}")
                shapes[key] = _same_shape(shapes.get(key), _shape(value, signature.inputs[key].dtype))
            except ServableError as e:
                raise _in_element(e, f"{i} key: {key}") from e
            columns[key].append(value)
        if len(row) != len(columns):
            raise ServableError(
                "INVALID_ARGUMENT",
                f"Failed to process element: {i} of 'instances' list. JSON object: {_dump(row)} "
                f"keys must be equal to: {','.join(columns)}",
            )
    return {alias: _tensor(values, signature.inputs[alias].dtype) for alias, values in columns.items()}


def _is_named(value) -> bool:
    """An object of named inputs, as opposed to a value (a ``{"b64": ...}`` string is a value)."""
    return type(value) is dict and not _is_b64(value)


def _is_b64(value) -> bool:
    return type(value) is dict and len(value) == 1 and type(value.get("b64")) is str


def _same_shape(first: tuple[int, ...] | None, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Every example of one input must have the first one's size and shape."""
    if first is None or first == shape:
        return shape
    size, got = math.prod(first), math.prod(shape)
    if size != got:
        raise ServableError("INVALID_ARGUMENT", f"Expecting tensor size: {size} but got: {got}")
    raise ServableError("INVALID_ARGUMENT", f"Expecting shape {_shape_text(first)} but got: {_shape_text(shape)}")


def _shape_text(shape: tuple[int, ...]) -> str:
    return "[" + ",".join(map(str, shape)) + "]"


def _in_element(error: ServableError, where: str) -> ServableError:
    """An element's error wrapped as TF Serving wraps it (always INVALID_ARGUMENT)."""
    message = f"Failed to process element: {where} of 'instances' list. Error: {error.code}: {error.message}"
    return ServableError("INVALID_ARGUMENT", message)


def _from_columns(inputs, signature: Signature) -> dict[str, np.ndarray]:
    """Columnar format: each input's whole tensor; extra keys are ignored, as in TF Serving."""
    aliases = list(signature.inputs)
    if not _is_named(inputs):
        if len(aliases) > 1:
            raise ServableError(
                "INVALID_ARGUMENT",
                "inputs is a plain value/list, but expecting an object as multiple "
                "input tensors required as per tensorinfo_map",
            )
        inputs = {aliases[0]: inputs}
    tensors = {}
    for alias in aliases:
        if alias not in inputs:
            raise ServableError("INVALID_ARGUMENT", f"Missing named input: {alias} in 'inputs' object.")
        dtype = signature.inputs[alias].dtype
        if not _is_matrix(inputs[alias], dtype):
            _shape(inputs[alias], dtype)
        tensors[alias] = _tensor(inputs[alias], dtype)
    return tensors


def _tensor(value, dtype) -> np.ndarray:
    """A checked JSON value as the array fed to the signature; strings as UTF-8 (or base64-decoded) bytes."""
    numpy_dtype = dtype.as_numpy_dtype
    if numpy_dtype is object:  # DT_STRING
        return np.array(_as_bytes(value), dtype=object)
    return np.array(value, dtype=numpy_dtype)


def _as_bytes(value):
    if type(value) is list:
        return [_as_bytes(item) for item in value]
    if type(value) is str:
        return value.encode("utf-8", "surrogatepass")
    return _b64_decode(value)


def _b64_decode(value: dict) -> bytes:
    text = value["b64"]
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ServableError("INVALID_ARGUMENT", "Unable to base64 decode") from None


def _is_matrix(value, dtype) -> bool:
    """The common case checked at C speed: a list of equal-length lists of leaves that fit ``dtype``.

    Anything else takes the element-by-element path, which also words the error.
    """
    return (
        type(value) is list
        and set(map(type, value)) == {list}
        and len(set(map(len, value))) == 1
        and _leaf_types(dtype).issuperset(map(type, itertools.chain.from_iterable(value)))
    )


def _shape(value, dtype) -> tuple[int, ...]:
    """The dense shape of a JSON value, from its first elements (as TF Serving reads it), once every
    list is checked to have that size and every leaf to fit ``dtype``."""
    shape = []
    probe = value
    while type(probe) is list:
        shape.append(len(probe))
        if not probe:
            break
        probe = probe[0]
    _check_dense(value, 0, shape, dtype, _leaf_types(dtype))
    return tuple(shape)


def _check_dense(value, level: int, shape: list[int], dtype, kinds: frozenset[type]) -> None:
    """TF Serving's FillTensorProto checks, with its texts; a vector of fitting leaves at C speed."""
    rank = len(shape)
    if type(value) is not list:
        if level != rank:
            raise ServableError(
                "INVALID_ARGUMENT",
                f"JSON Value: {_dump(value)} found at incorrect level: {level + 1} in the JSON DOM. "
                f"Expected at level: {rank}",
            )
        _check_leaf(value, dtype, kinds)
        return
    if level >= rank:
        raise ServableError("INVALID_ARGUMENT", f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise ServableError(
            "INVALID_ARGUMENT",
            f"Encountered list at unexpected size: {len(value)} at level: {level} expected size: {shape[level]}",
        )
    if level == rank - 1 and kinds.issuperset(map(type, value)):
        return
    for item in value:
        _check_dense(item, level + 1, shape, dtype, kinds)


@functools.cache
def _leaf_types(dtype) -> frozenset[type]:
    """The JSON leaf types a signature dtype accepts: ints are fine for floats, bools only for bools,
    strings for strings (and ``{"b64": ...}`` objects, checked one by one)."""
    if dtype.is_floating:
        return frozenset((float, int))
    if dtype.is_bool:
        return frozenset((bool,))
    if dtype.is_integer:
        return frozenset((int,))
    if dtype == tf.string:
        return frozenset((str,))
    return frozenset()


def _check_leaf(value, dtype, kinds: frozenset[type]) -> None:
    if not kinds:
        raise ServableError("UNIMPLEMENTED", f"Conversion of JSON Value: {_dump(value)} to type: {dtype.name}")
    if type(value) is dict and dtype == tf.string:
        if not _is_b64(value):
            raise ServableError(
                "INVALID_ARGUMENT", f"JSON Value: {_dump(value)} not formatted correctly for base64 data"
            )
        _b64_decode(value)
    elif type(value) not in kinds:
        expected = _TYPE_NAMES.get(dtype.name, dtype.name)
        raise ServableError(
            "INVALID_ARGUMENT",
            f"JSON Value: {_dump(value)} Type: {_json_type(value)} is not of expected type: {expected}",
        )


def _to_rows(outputs: dict[str, np.ndarray]):
    """One entry per batch row; a single output drops its alias, as TF Serving does."""
    batch = None
    for alias, tensor in outputs.items():
        if tensor.ndim == 0:
            raise ServableError("INVALID_ARGUMENT", f"Tensor name: {alias} has no shape information ")
        if tensor.shape[0] < 1:
            raise ServableError("INVALID_ARGUMENT", f"Tensor name: {alias} has invalid batch size: {tensor.shape[0]}")
        if batch is None:
            batch = tensor.shape[0]
        elif tensor.shape[0] != batch:
            raise ServableError(
                "INVALID_ARGUMENT",
                f"Tensor name: {alias} has inconsistent batch size: {tensor.shape[0]} expecting: {batch}",
            )
    if len(outputs) == 1:
        return _json_values(*next(iter(outputs.items())))
    lists = {alias: _json_values(alias, tensor) for alias, tensor in outputs.items()}
    return [{alias: values[i] for alias, values in lists.items()} for i in range(batch or 0)]


def _to_columns(outputs: dict[str, np.ndarray]):
    if len(outputs) == 1:
        return _json_values(*next(iter(outputs.items())))
    return {alias: _json_values(alias, tensor) for alias, tensor in outputs.items()}


def _json_values(alias: str, tensor: np.ndarray):
    """The tensor as JSON values: strings as text, or ``{"b64": ...}`` when the alias ends in
    ``_bytes`` (TF Serving's rule for binary outputs)."""
    if tensor.dtype != object:
        return tensor.tolist()
    encode = _b64_object if alias.endswith("_bytes") else _text
    if tensor.ndim == 0:
        return encode(tensor.item())
    return np.frompyfunc(encode, 1, 1)(tensor).tolist()


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


def _b64_object(value: bytes) -> dict:
    return {"b64": base64.b64encode(value).decode("ascii")}


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


def _dump(value) -> str:
    """The offending JSON value, cut like TF Serving's debug dump."""
    return json.dumps(value)[:256]


def _json_type(value) -> str:
    if value is None:
        return "Null"
    if value is True or value is False:
        return str(value)
    names: dict[type, str] = {dict: "Object", list: "Array", str: "String"}
    return names.get(type(value), "Number")
