"""Turn a ``/predict`` request into rows of two finite float32 numbers, or say what is wrong.

Validation happens here, before anything reaches TF Serving, so every mistake gets a message
naming the offending row and an example of a correct body, instead of TF Serving's tensor
jargon (or, for NaN and overflowing numbers, a silently wrong prediction).
"""

from __future__ import annotations

import itertools
import json
import math

FEATURES = ("x1", "x2")
FLOAT32_MAX = 3.4028234663852886e38
JSON_EXAMPLE = '{"instances": [[1.5, 2.3], [0.8, -1.2]]}'
FORM_EXAMPLE = "x1=1.5&x2=2.3"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class InputError(ValueError):
    """The request cannot be predicted on; the message says why and how to fix it."""


def parse_request(request, max_instances: int) -> tuple[list[list[float]], bool]:
    """``(rows, is_form)`` from a JSON or form ``/predict`` request."""
    mimetype = request.mimetype
    if mimetype == "application/json" or mimetype.endswith("+json"):
        return parse_json(request.get_data(cache=False), max_instances), False
    if mimetype in FORM_TYPES:
        return [parse_form(request.form)], True
    shown = f"Content-Type {mimetype!r}" if mimetype else "no Content-Type"
    raise InputError(
        f"unsupported {shown}: send JSON with 'Content-Type: application/json', e.g. {JSON_EXAMPLE}, "
        f"or form fields, e.g. {FORM_EXAMPLE}"
    )


def parse_json(body: bytes, max_instances: int) -> list[list[float]]:
    if not body:
        raise InputError(f"the request body is empty; send e.g. {JSON_EXAMPLE}")
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        where = f" ({exc.msg} at line {exc.lineno} column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise InputError(f"the body is not valid JSON{where}; send e.g. {JSON_EXAMPLE}") from None
    if not isinstance(doc, dict) or "instances" not in doc:
        raise InputError(f"the JSON body must be an object with an 'instances' list, e.g. {JSON_EXAMPLE}")
    instances = doc["instances"]
    if not isinstance(instances, list) or not instances:
        raise InputError(f"'instances' must be a non-empty list of rows, e.g. {JSON_EXAMPLE}")
    if len(instances) > max_instances:
        raise InputError(
            f"too many rows: {len(instances)} instances, at most {max_instances} per request; "
            "split them into several requests"
        )
    return _plain_rows(instances) or [_row(row, i) for i, row in enumerate(instances)]


def _plain_rows(instances: list) -> list[list[float]] | None:
    """The common case checked at C speed: every row ``[x1, x2]`` of finite float32-sized numbers.

    None for anything else, which the row-by-row path then accepts or words an error for.
    """
    if set(map(type, instances)) != {list} or set(map(len, instances)) != {len(FEATURES)}:
        return None
    values = list(itertools.chain.from_iterable(instances))
    if not {float, int}.issuperset(map(type, values)):  # bool is its own type: not let through
        return None
    try:
        floats = list(map(float, values))
    except OverflowError:  # an integer with hundreds of digits
        return None
    if not all(map(math.isfinite, floats)) or max(map(abs, floats)) > FLOAT32_MAX:
        return None
    return [floats[i : i + len(FEATURES)] for i in range(0, len(floats), len(FEATURES))]


def _row(row, index: int) -> list[float]:
    where = f"instances[{index}]"
    if isinstance(row, dict):
        if set(row) != set(FEATURES):
            got = ", ".join(sorted(map(str, row))) or "no keys"
            raise InputError(f'{where} must have exactly the keys x1 and x2 (got {got}), e.g. {{"x1": 1.5, "x2": 2.3}}')
        return [_number(row[name], f"{where}.{name}") for name in FEATURES]
    if not isinstance(row, list) or len(row) != len(FEATURES):
        size = f"a list of {len(row)} values" if isinstance(row, list) else _describe(row)
        raise InputError(
            f'{where} must be a list of exactly 2 numbers [x1, x2] or an object {{"x1": .., "x2": ..}}, '
            f"got {size}; e.g. {JSON_EXAMPLE}"
        )
    return [_number(value, f"{where}[{j}]") for j, value in enumerate(row)]


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{where} must be a number, got {_describe(value)}; e.g. {JSON_EXAMPLE}")
    return _finite(value, where)


def _finite(value: int | float, where: str) -> float:
    try:
        number = float(value)
    except OverflowError:  # an integer with hundreds of digits
        number = math.inf
    if not math.isfinite(number) or abs(number) > FLOAT32_MAX:
        raise InputError(f"{where} must be a finite number within ±3.4e38 (32-bit float), got {_shorten(value)}")
    return number


def parse_form(form) -> list[float]:
    row = []
    for name in FEATURES:
        raw = form.get(name, "").strip()
        if not raw:
            raise InputError(f"{name} is required: send both numbers, e.g. {FORM_EXAMPLE}")
        try:
            number = float(raw)
        except ValueError:
            raise InputError(f"{name} must be a number, got {_shorten(raw)}; e.g. {FORM_EXAMPLE}") from None
        row.append(_finite(number, name))
    return row


def _describe(value) -> str:
    """How a wrong JSON value is shown in a message: its type, and scalars shortened."""
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    kind = {bool: "a boolean ", str: "a string ", type(None): ""}.get(type(value), "")
    return kind + _shorten(value)


def _shorten(value) -> str:
    text = repr(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."
