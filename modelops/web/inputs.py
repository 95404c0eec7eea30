"""Turn a ``/predict`` request into the instances TF Serving takes, or say what is wrong.

Validation happens here, before anything reaches TF Serving, so every mistake gets a message
naming the offending row and feature with an example of a correct body, instead of TF Serving's
tensor jargon (or, for NaN and overflowing numbers, a silently wrong prediction).

The declared schema (``features`` in config.json) picks the parser once, at app creation:

- packed (every feature a required float, two classes; the demo ``x1``, ``x2``): rows are lists
  ``[x1, x2]`` or objects, checked at C speed in the common case, sent as lists;
- any other schema: rows are objects by feature name (or lists in schema order when every
  feature is a number), each value read by ``Feature.parse``, the one cell parser ingest and
  ``compare --input`` use too, sent as TF Serving's named instances (NaN or "" for a missing
  optional value).
"""

from __future__ import annotations

import difflib
import itertools
import json
import math
from typing import cast

from flask import g

from modelops.core.errors import SchemaValueError
from modelops.core.schema import FLOAT32_MAX, Feature, Schema

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_UNBOUNDED_EXAMPLES = ((1.5, 2.3), (0.8, -1.2))  # the README's rows, for features without bounds


class InputError(ValueError):
    """The request cannot be predicted on; the message says why and how to fix it."""


def parser_for(schema: Schema) -> Inputs:
    """The request parser for ``schema``, chosen once when the app is created."""
    return PackedInputs(schema) if schema.packed else NamedInputs(schema)


class Inputs:
    """What both parsers share: content types, the JSON envelope, the row limit, the examples."""

    def __init__(self, schema: Schema):
        self.schema = schema
        self.names = schema.names
        self.json_example = json.dumps({"instances": self.example_rows()})
        self.form_example = "&".join(f"{f.name}={example_value(f, 0, i)}" for i, f in enumerate(schema.features))

    def example_rows(self) -> list:
        raise NotImplementedError

    def read_request(self, request, max_instances: int) -> tuple[list | dict, bool]:
        """``(the request's rows, not yet checked against a schema, is_form)``: the envelope only, so the
        rows can be checked against the schema of the version they are routed to (``validate``)."""
        mimetype = request.mimetype
        if mimetype == "application/json" or mimetype.endswith("+json"):
            return self.instances(request.get_data(cache=False), max_instances), False
        if mimetype in FORM_TYPES:
            return request.form, True
        shown = f"Content-Type {mimetype!r}" if mimetype else "no Content-Type"
        raise InputError(
            f"unsupported {shown}: send JSON with 'Content-Type: application/json', e.g. {self.json_example}, "
            f"or form fields, e.g. {self.form_example}"
        )

    def validate(self, raw, is_form: bool) -> list:
        """The instances TF Serving takes, from ``read_request``'s rows; InputError names what is wrong."""
        return [self.parse_form(raw)] if is_form else self.rows(raw)

    def instances(self, body: bytes, max_instances: int) -> list:
        """The ``instances`` list of a JSON body, its size checked; the rows themselves are not."""
        if not body:
            raise InputError(f"the request body is empty; send e.g. {self.json_example}")
        try:
            doc = json.loads(body)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            where = f" ({exc.msg} at line {exc.lineno} column {exc.colno})" if isinstance(exc, json.JSONDecodeError) \
                else ""
            raise InputError(f"the body is not valid JSON{where}; send e.g. {self.json_example}") from None
        if not isinstance(doc, dict) or "instances" not in doc:
            raise InputError(f"the JSON body must be an object with an 'instances' list, e.g. {self.json_example}")
        explain = doc.get("explain", False)
        if not isinstance(explain, bool):
            raise InputError("'explain' must be true or false (true adds each row's explanation, docs/explain.md)")
        asked = doc.get("explain_class")  # the class to explain instead of the predicted one
        if asked is not None and (isinstance(asked, bool) or not isinstance(asked, (str, int))):
            raise InputError("'explain_class' must be one of the label's classes, e.g. \"1\" (docs/explain.md)")
        g.explain = explain or asked is not None  # read by web/explanations.py for this request
        g.explain_class = None if asked is None else str(asked)
        instances = doc["instances"]
        if not isinstance(instances, list) or not instances:
            raise InputError(f"'instances' must be a non-empty list of rows, e.g. {self.json_example}")
        if len(instances) > max_instances:
            raise InputError(
                f"too many rows: {len(instances)} instances, at most {max_instances} per request; "
                "split them into several requests"
            )
        return instances

    def rows(self, instances: list) -> list:
        raise NotImplementedError

    def parse_form(self, form) -> list | dict:
        raise NotImplementedError


class PackedInputs(Inputs):
    """Rows of finite float32 numbers in feature order, within any declared bounds."""

    def __init__(self, schema: Schema):
        super().__init__(schema)
        self._bounded = [(i, f) for i, f in enumerate(schema.features) if f.min is not None or f.max is not None]
        self._keys = _and(self.names)
        self._shape = f"[{', '.join(self.names)}]"
        self._object_example = json.dumps(dict(zip(self.names, self.example_rows()[0], strict=True)))

    def example_rows(self) -> list:
        return [[example_value(f, row, i) for i, f in enumerate(self.schema.features)] for row in range(2)]

    def rows(self, instances: list) -> list[list[float]]:
        rows = _plain_rows(instances, len(self.names)) or [self._row(row, i) for i, row in enumerate(instances)]
        if self._bounded:
            for i, row in enumerate(rows):
                self._within_bounds(row, f"instances[{i}].")
        return rows

    def _row(self, row, index: int) -> list[float]:
        where = f"instances[{index}]"
        n = len(self.names)
        if isinstance(row, dict):
            if set(row) != set(self.names):
                got = ", ".join(sorted(map(str, row))) or "no keys"
                raise InputError(
                    f"{where} must have exactly the keys {self._keys} (got {got}), e.g. {self._object_example}"
                )
            return [_number(row[name], f"{where}.{name}", self.json_example) for name in self.names]
        if not isinstance(row, list) or len(row) != n:
            size = f"a list of {len(row)} values" if isinstance(row, list) else _describe(row)
            shape = ", ".join(f'"{name}": ..' for name in self.names)
            raise InputError(
                f"{where} must be a list of exactly {n} numbers {self._shape} or an object {{{shape}}}, "
                f"got {size}; e.g. {self.json_example}"
            )
        return [_number(value, f"{where}[{j}]", self.json_example) for j, value in enumerate(row)]

    def _within_bounds(self, row: list[float], where: str) -> None:
        """A declared ``min``/``max`` holds, checked (and worded) as ingest checks it."""
        for j, feature in self._bounded:
            try:
                feature.parse(row[j])
            except SchemaValueError as exc:
                raise InputError(f"{where}{exc}") from None

    def parse_form(self, form) -> list[float]:
        row = []
        words = "both numbers" if len(self.names) == 2 else f"all {len(self.names)} numbers"
        for name in self.names:
            raw = form.get(name, "").strip()
            if not raw:
                raise InputError(f"{name} is required: send {words}, e.g. {self.form_example}")
            try:
                number = float(raw)
            except ValueError:
                raise InputError(f"{name} must be a number, got {_shorten(raw)}; e.g. {self.form_example}") from None
            row.append(_finite(number, name))
        self._within_bounds(row, "")
        return row


class NamedInputs(Inputs):
    """Rows as objects by feature name (lists in schema order when all features are numbers),
    every value read by ``Feature.parse``; sent as ``{name: value}`` instances."""

    def __init__(self, schema: Schema):
        super().__init__(schema)
        self._lists_ok = all(f.numeric for f in schema.features)

    def example_rows(self) -> list:
        return [{f.name: example_value(f, 0, i) for i, f in enumerate(self.schema.features)}]

    def rows(self, instances: list) -> list[dict]:
        return [self._row(row, i) for i, row in enumerate(instances)]

    def _row(self, row, index: int) -> dict:
        where = f"instances[{index}]"
        if isinstance(row, list) and self._lists_ok:
            if len(row) != len(self.names):
                raise InputError(f"{where} must be a list of exactly {len(self.names)} values in the order "
                                 f"{', '.join(self.names)}, got a list of {len(row)} values; e.g. {self.json_example}")
            row = dict(zip(self.names, row, strict=True))
        elif not isinstance(row, dict):
            form = "an object by feature name" + (" or a list in feature order" if self._lists_ok else "")
            raise InputError(f"{where} must be {form}, got {_describe(row)}; e.g. {self.json_example}")
        for key in row:
            if key not in self.names:
                hint = difflib.get_close_matches(str(key), self.names, n=1)
                mean = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise InputError(f"{where} has an unknown feature {_shorten(key)}{mean}; the features are "
                                 f"{', '.join(self.names)}")
        return self._instance(row, f"{where}.")

    def _instance(self, raw, where: str) -> dict:
        try:
            typed = self.schema.parse_row(raw)
        except SchemaValueError as exc:
            raise InputError(f"{where}{exc}") from None
        return cast(dict, self.schema.instance_for_serving(typed))

    def parse_form(self, form) -> dict:
        return self._instance({name: form.get(name, "") for name in self.names}, "")


def example_value(feature: Feature, row: int, column: int) -> float | str:
    """A valid value for examples and the form: the first declared category, the middle of the
    bounds, or the README's numbers (``[[1.5, 2.3], [0.8, -1.2]]`` by row and column)."""
    if feature.temporal:
        return "2024-07-01" if feature.type == "date" else "2024-07-01T12:00:00"
    if not feature.numeric:
        return feature.values[0] if feature.values else "text"
    low, high = feature.min, feature.max
    if low is not None and high is not None:
        value = round((low + high) / 2, 2)
    elif low is not None or high is not None:
        value = low if low is not None else high  # type: ignore[assignment]
    else:
        value = _UNBOUNDED_EXAMPLES[row % 2][column % 2]
    return int(value) if feature.type == "int" else value


def _and(names: tuple[str, ...]) -> str:
    return " and ".join(names) if len(names) <= 2 else f"{', '.join(names[:-1])} and {names[-1]}"


def _plain_rows(instances: list, n: int) -> list[list[float]] | None:
    """The common case checked at C speed: every row a list of ``n`` finite float32-sized numbers.

    None for anything else, which the row-by-row path then accepts or words an error for.
    """
    if set(map(type, instances)) != {list} or set(map(len, instances)) != {n}:
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
    return [floats[i : i + n] for i in range(0, len(floats), n)]


def _number(value, where: str, example: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{where} must be a number, got {_describe(value)}; e.g. {example}")
    return _finite(value, where)


def _finite(value: int | float, where: str) -> float:
    try:
        number = float(value)
    except OverflowError:  # an integer with hundreds of digits
        number = math.inf
    if not math.isfinite(number) or abs(number) > FLOAT32_MAX:
        raise InputError(f"{where} must be a finite number within ±3.4e38 (32-bit float), got {_shorten(value)}")
    return number


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
