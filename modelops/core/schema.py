"""The declared table: which columns are features, their types and bounds, and the label's classes.

One place decides a column's journey: ``config.json`` declares it (``features``, ``label``,
``data.missing_values``), :meth:`Feature.parse` is the one parser of a feature's cell (type, range,
blank, category) and words its errors for ingest (``trainer/data/csv_rows.py``), ``compare --input``
and the frontend's form and ``/predict`` alike, and :meth:`Schema.instance_for_serving` spells a
typed row the way TF Serving expects it. Standard library only: the frontend imports it.

The seed's demo (``x1``, ``x2`` float, label ``label`` in ``[0, 1]``) is *packed*: every feature is a
required float and there are two classes, so the SavedModel keeps input ``x`` ``[None, n]`` ->
``probability`` ``[None, 1]``. Any other schema is *named*: one input per feature, ``[None]``
(float32, or string for categories; a missing optional value is NaN or ""), outputs
``probabilities`` ``[None, K]`` in class order and ``class`` (the most probable class name).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelops.core.errors import ConfigError, SchemaValueError
from modelops.core.moments import parse_moment, temporal_expected
from modelops.core.untrusted import quoted

TYPES = ("float", "int", "category", "date", "datetime")
TEMPORAL = ("date", "datetime")  # read with ``format`` (default ISO 8601), kept and served as ISO 8601 text
DEFAULT_MISSING_VALUES = ("", "NA", "NaN", "null")
FEATURE_KEYS = ("type", "values", "min", "max", "optional", "format")
LABEL_KEYS = ("column", "classes", "type", "min", "max")
LABEL_TYPES = ("class", "number")
NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")  # a TF signature input name and a form field name
FLOAT32_MAX = 3.4028234663852886e38  # every number reaches the model as float32


@dataclass(frozen=True)
class Feature:
    name: str
    type: str = "float"
    values: tuple[str, ...] | None = None  # declared categories; None: learned, unknown ones share one bucket
    min: float | None = None
    max: float | None = None
    optional: bool = False
    missing_values: tuple[str, ...] = DEFAULT_MISSING_VALUES
    format: str | None = None  # date/datetime only: how ingest reads the CSV (strptime); None: ISO 8601

    @property
    def numeric(self) -> bool:
        """A float or an int: a column of the number matrix. Categories and dates travel as text."""
        return self.type in ("float", "int")

    @property
    def temporal(self) -> bool:
        return self.type in TEMPORAL

    def _float(self, raw: Any) -> float:
        """A number's value (inf or NaN included: the caller words those); SchemaValueError when it is none."""
        if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
            raise self._refused(raw, f"is not a number: {shown(raw)}")
        try:
            return float(raw)
        except ValueError:
            raise self._refused(raw, f"is not a number: {shown(raw)}") from None
        except OverflowError:  # an integer with hundreds of digits
            return FLOAT32_MAX * 2 if int(raw) > 0 else -FLOAT32_MAX * 2

    def _refused(self, raw: Any, reason: str) -> SchemaValueError:
        """The error for ``raw``, with what to send instead (worded only when raised: parsing is hot)."""
        return SchemaValueError(self.name, raw, f"{reason}; send {self.expected()}")

    def is_missing(self, raw: Any) -> bool:
        """None, a blank string or one of the configured missing spellings."""
        return raw is None or isinstance(raw, str) and (not raw.strip() or raw.strip() in self.missing_values)

    def parse(self, raw: Any, max_abs: float | None = None) -> float | str | None:
        """The typed value of one raw value (a CSV cell or a JSON value); None when missing and optional.

        A number must fit float32 and its declared bounds; ``max_abs`` (``data.max_abs_feature``, for
        training data) also caps a number without declared bounds. Raise SchemaValueError naming this
        feature and the value, and saying how to fix it.
        """
        if self.is_missing(raw):
            if self.optional:
                return None
            raise SchemaValueError(self.name, raw, f"is required but missing; send {self.expected()}")
        if self.type == "category":
            return self._category(raw)
        if self.temporal:
            return self._moment(raw)
        return self._number(raw, max_abs)

    def expected(self) -> str:
        """What a valid value looks like, for error messages and the form."""
        if self.type == "category":
            return f"one of {', '.join(self.values)}" if self.values else "a text value"
        if self.temporal:
            return temporal_expected(self.type, self.format)
        kind = "an integer" if self.type == "int" else "a number"
        if self.min is not None and self.max is not None:
            return f"{kind} between {_num(self.min)} and {_num(self.max)}"
        if self.min is not None:
            return f"{kind} >= {_num(self.min)}"
        if self.max is not None:
            return f"{kind} <= {_num(self.max)}"
        return kind

    def _category(self, raw: Any) -> str:
        if isinstance(raw, bool) or not isinstance(raw, (str, int)):
            raise SchemaValueError(self.name, raw, f"must be text, got {shown(raw)}; send {self.expected()}")
        value = raw.strip() if isinstance(raw, str) else str(raw)
        if self.values is not None and value not in self.values:
            hint = difflib.get_close_matches(value, self.values, n=1)
            mean = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise SchemaValueError(self.name, raw, f"must be {self.expected()}, got {shown(raw)}{mean}")
        return value

    def _moment(self, raw: Any) -> str:
        try:
            return parse_moment(self.type, self.format, raw)
        except ValueError:
            raise SchemaValueError(self.name, raw, f"is not a {self.type}: {shown(raw)}; "
                                                   f"send {self.expected()}") from None

    def _number(self, raw: Any, max_abs: float | None) -> float:
        value = self._float(raw)
        if not math.isfinite(value):
            raise self._refused(raw, f"must be finite, got {shown(raw)}")
        if self.type == "int" and not value.is_integer():
            raise self._refused(raw, f"must be an integer, got {shown(raw)}")
        if self.min is not None and value < self.min:
            raise self._refused(raw, f"must be at least {_num(self.min)}, got {shown(raw)}")
        if self.max is not None and value > self.max:
            raise self._refused(raw, f"must be at most {_num(self.max)}, got {shown(raw)}")
        if max_abs is not None and self.min is None and self.max is None and abs(value) > max_abs:
            raise SchemaValueError(self.name, raw, f"must be a finite number within ±{_num(max_abs)} "
                                                   f"(data.max_abs_feature; declare features.{self.name}.min/max "
                                                   f"for wider values), got {shown(raw)}")
        if abs(value) > FLOAT32_MAX:
            raise SchemaValueError(self.name, raw, f"must be a finite number within ±3.4e38 (32-bit float), "
                                                   f"got {shown(raw)}")
        return value


@dataclass(frozen=True)
class Label:
    column: str
    classes: tuple[str | int, ...]  # empty for a number label
    type: str = "class"  # "class" or "number" (a quantity: the model answers ``value``)
    min: float | None = None  # a number label's bounds, checked at ingest
    max: float | None = None

    @property
    def is_number(self) -> bool:
        return self.type == "number"

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(str(c) for c in self.classes)

    def value(self, raw: Any) -> float:
        """A raw label as the number matrix holds it: the class index, or a number label's value."""
        if not self.is_number:
            return float(self.index(raw))
        parsed = Feature(self.column, "float", min=self.min, max=self.max).parse(raw)
        assert parsed is not None  # a required Feature never answers None
        return float(parsed)

    def index(self, raw: Any) -> int:
        """The position of a raw label (CSV cell or JSON value) in ``classes``; SchemaValueError if none."""
        value = raw.strip() if isinstance(raw, str) else raw
        names = self.class_names
        if not isinstance(value, bool) and isinstance(value, (str, int)) and str(value) in names:
            return names.index(str(value))
        choices = " or ".join(names) if len(names) == 2 else "one of " + ", ".join(names)
        raise SchemaValueError(self.column, raw, f"must be {choices}, got {shown(raw)}")


@dataclass(frozen=True)
class Schema:
    features: tuple[Feature, ...]
    label: Label
    missing_values: tuple[str, ...] = DEFAULT_MISSING_VALUES

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def num_classes(self) -> int:
        return len(self.label.classes)

    @property
    def packed(self) -> bool:
        """Today's signature (``x`` -> ``probability``): all features required floats, two classes."""
        return self.num_classes == 2 and all(f.type == "float" and not f.optional for f in self.features)

    @property
    def is_demo(self) -> bool:
        """The seed's x1, x2 -> 0/1 task: the only schema with synthetic data (bootstrap, ``simulate``)."""
        return self == demo_schema(self.missing_values)

    @property
    def numeric(self) -> tuple[Feature, ...]:
        """The float and int features, in order: the columns of a batch's number matrix."""
        return tuple(f for f in self.features if f.numeric)

    @property
    def categories(self) -> tuple[Feature, ...]:
        """The category features, in order: the columns of a batch's text matrix."""
        return tuple(f for f in self.features if not f.numeric)

    def fingerprint(self) -> str:
        """A short digest of everything that decides how a batch is read (names cached copies)."""
        spec = json.dumps([self.to_config(), list(self.missing_values)], sort_keys=True)
        return hashlib.sha256(spec.encode()).hexdigest()[:12]

    def scoring_gap(self, rows: Schema) -> str | None:
        """Why a model trained on this schema cannot be scored on rows read with ``rows``; None if it can."""
        if self.label.is_number != rows.label.is_number:
            return f"its label was a {self.label.type}, the config now says {rows.label.type}"
        if self.label.class_names != rows.label.class_names:
            return (f"its classes {', '.join(self.label.class_names)} are not label.classes "
                    f"{', '.join(rows.label.class_names)}")
        for f in self.features:
            if f.name not in rows.names:
                return f"the data no longer has its feature '{f.name}'"
            if f.numeric != rows.feature(f.name).numeric:
                return f"its feature '{f.name}' was {f.type}, the config now says {rows.feature(f.name).type}"
        return None

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def parse_row(self, raw: dict[str, Any]) -> dict[str, float | str | None]:
        """A typed row from raw values by feature name (extra keys ignored); SchemaValueError on the first bad one."""
        return {f.name: f.parse(raw.get(f.name)) for f in self.features}

    def instance_for_serving(self, row: dict[str, Any]) -> list[float] | dict[str, float | str]:
        """The JSON instance TF Serving expects for one typed row: packed ``[x1, x2]``; named
        ``{name: value}`` with NaN (numbers) or "" (categories) for a missing value."""
        if self.packed:
            return [float(row[f.name]) for f in self.features]
        return {f.name: serving_value(f, row.get(f.name)) for f in self.features}

    def describe(self) -> str:
        """One line: each feature with its type, then the label and its classes."""
        def one(f: Feature) -> str:
            kind = f"{f.type}: {'|'.join(f.values)}" if f.values else f.type
            return f"{f.name} ({kind}{', optional' if f.optional else ''})"

        target = "number" if self.label.is_number else ", ".join(self.label.class_names)
        return f"{', '.join(map(one, self.features))} -> {self.label.column} ({target})"

    def to_config(self) -> dict[str, Any]:
        """The ``features`` and ``label`` sections as config.json spells them (recorded in metrics.json)."""
        features: dict[str, Any] = {}
        for f in self.features:
            spec: dict[str, Any] = {"type": f.type}
            if f.values is not None:
                spec["values"] = list(f.values)
            for key in ("min", "max"):
                if getattr(f, key) is not None:
                    spec[key] = getattr(f, key)
            if f.optional:
                spec["optional"] = True
            if f.format is not None:
                spec["format"] = f.format
            features[f.name] = spec
        return {"features": features, "label": _label_config(self.label)}

    @classmethod
    def from_config(cls, features: Any = None, label: Any = None,
                    missing_values: tuple[str, ...] = DEFAULT_MISSING_VALUES, source: str | Path = "config.json",
                    ) -> Schema:
        """Validate the ``features`` and ``label`` sections; both absent = the demo schema.

        Raise ConfigError naming the key (with a did-you-mean where one helps).
        """
        if features is None and label is None:
            return demo_schema(missing_values)
        if features is None or label is None:
            missing = "features" if features is None else "label"
            raise ConfigError(f"{source}: '{missing}' is missing: declare 'features' and 'label' together "
                              "(or neither, for the demo x1,x2 -> label 0/1)")
        if not isinstance(features, dict) or not features:
            raise ConfigError(f"{source}: 'features' must be a non-empty JSON object: column name -> "
                              '{"type": "float" | "int" | "category", ...}')
        parsed_label = _label(label, source)
        parsed = tuple(_feature(name, spec, missing_values, source) for name, spec in features.items())
        if parsed_label.column in features:
            raise ConfigError(f"{source}: 'label.column' {parsed_label.column!r} is also declared in 'features': "
                              "the label cannot be a feature; remove it from 'features'")
        return cls(parsed, parsed_label, tuple(missing_values))


def recorded_schema(metrics: Any, missing_values: tuple[str, ...] = DEFAULT_MISSING_VALUES) -> Schema | None:
    """The schema a published version was trained on, from its metrics.json: the demo's for versions
    from before schemas were recorded; None when the record cannot be read as one."""
    recorded = metrics.get("schema") if isinstance(metrics, dict) else None
    if recorded is None:
        return demo_schema(missing_values)
    try:
        return Schema.from_config(recorded.get("features"), recorded.get("label"), missing_values)
    except (ConfigError, AttributeError):
        return None


def _label_config(label: Label) -> dict[str, Any]:
    if not label.is_number:
        return {"column": label.column, "classes": list(label.classes)}
    bounds = {key: getattr(label, key) for key in ("min", "max") if getattr(label, key) is not None}
    return {"column": label.column, "type": "number", **bounds}


def demo_schema(missing_values: tuple[str, ...] = DEFAULT_MISSING_VALUES) -> Schema:
    """The seed's demo: two float features and a 0/1 label (packed signature)."""
    return Schema(tuple(Feature(n, missing_values=tuple(missing_values)) for n in ("x1", "x2")),
                  Label("label", (0, 1)), tuple(missing_values))


DEMO_SCHEMA = demo_schema()


def serving_value(feature: Feature, value: Any) -> float | str:
    if value is None:
        return math.nan if feature.numeric else ""
    return float(value) if feature.numeric else str(value)


def shown(value: Any) -> str:
    """A raw value quoted for a message, cut short and escaped: a message never carries a whole bad
    file, a forged line or markup (``modelops.core.untrusted``)."""
    return quoted(value)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _unknown_key(key: str, known: tuple[str, ...], where: str, source: str | Path) -> ConfigError:
    hint = difflib.get_close_matches(key, known, n=1)
    mean = f" (did you mean '{where}.{hint[0]}'?)" if hint else ""
    return ConfigError(f"{source}: unknown key '{where}.{key}'{mean}; known keys: {', '.join(known)}")


def _feature(name: Any, spec: Any, missing_values: tuple[str, ...], source: str | Path) -> Feature:
    where = f"features.{name}"
    if not NAME_PATTERN.match(name):
        raise ConfigError(f"{source}: feature name {name!r} must start with a letter and use only letters, digits "
                          "and '_' (it names a model input and a form field): rename the column")
    if not isinstance(spec, dict):
        raise ConfigError(f"{source}: '{where}' must be a JSON object like {{\"type\": \"float\"}}")
    for key in spec:
        if key not in FEATURE_KEYS:
            raise _unknown_key(key, FEATURE_KEYS, where, source)
    kind = spec.get("type")
    if kind not in TYPES:
        hint = difflib.get_close_matches(str(kind), TYPES, n=1)
        mean = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise ConfigError(f"{source}: '{where}.type' must be one of {', '.join(TYPES)}, got {json.dumps(kind)}{mean}")
    values = spec.get("values")
    if values is not None:
        if kind != "category":
            raise ConfigError(f"{source}: '{where}.values' is only for type category (this one is {kind})")
        values = _distinct_values(values, f"{where}.values", source, "a category value")
    bounds = {}
    for key in ("min", "max"):
        bound = spec.get(key)
        if bound is None:
            continue
        if kind not in ("float", "int"):
            raise ConfigError(f"{source}: '{where}.{key}' is only for types float and int (this one is {kind})")
        if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not math.isfinite(bound):
            raise ConfigError(f"{source}: '{where}.{key}' must be a finite number, got {json.dumps(bound)}")
        bounds[key] = float(bound)
    if "min" in bounds and "max" in bounds and bounds["min"] > bounds["max"]:
        raise ConfigError(f"{source}: '{where}.min' ({bounds['min']}) must not exceed '{where}.max' ({bounds['max']})")
    optional = spec.get("optional", False)
    if not isinstance(optional, bool):
        raise ConfigError(f"{source}: '{where}.optional' must be true or false, got {json.dumps(optional)}")
    fmt = spec.get("format")
    if fmt is not None and (kind not in ("date", "datetime") or not isinstance(fmt, str) or "%" not in fmt):
        raise ConfigError(f"{source}: '{where}.format' is a strptime pattern like \"%d/%m/%Y\" for types date "
                          f"and datetime (this one is {kind}), got {json.dumps(fmt)}")
    return Feature(name, kind, values, bounds.get("min"), bounds.get("max"), optional, tuple(missing_values), fmt)


def _label(label: Any, source: str | Path) -> Label:
    if not isinstance(label, dict):
        raise ConfigError(f"{source}: 'label' must be a JSON object like {{\"column\": \"species\", "
                          "\"classes\": [\"a\", \"b\"]}}")
    for key in label:
        if key not in LABEL_KEYS:
            raise _unknown_key(key, LABEL_KEYS, "label", source)
    column = label.get("column")
    if not isinstance(column, str) or not column.strip():
        raise ConfigError(f"{source}: 'label.column' must name the label's column, got {json.dumps(column)}")
    kind = label.get("type", "class")
    if kind not in LABEL_TYPES:
        raise ConfigError(f"{source}: 'label.type' must be class (the default) or number, got {json.dumps(kind)}")
    if kind == "number":
        return _number_label(column.strip(), label, source)
    for key in ("min", "max"):
        if key in label:
            raise ConfigError(f"{source}: 'label.{key}' is only for a number label (\"type\": \"number\")")
    classes = _distinct_values(label.get("classes"), "label.classes", source, "a class")
    if len(classes) < 2:
        raise ConfigError(f"{source}: 'label.classes' needs two or more classes, got {json.dumps(list(classes))}")
    return Label(column.strip(), tuple(label["classes"]))


def _number_label(column: str, label: dict[str, Any], source: str | Path) -> Label:
    """A number to predict: no classes; optional bounds checked at ingest like a feature's."""
    if "classes" in label:
        raise ConfigError(f"{source}: 'label.classes' is only for a class label; a number label "
                          "(\"type\": \"number\") predicts a quantity: remove 'classes'")
    bounds: dict[str, float] = {}
    for key in ("min", "max"):
        bound = label.get(key)
        if key in label and (isinstance(bound, bool) or not isinstance(bound, (int, float))
                             or not math.isfinite(bound)):
            raise ConfigError(f"{source}: 'label.{key}' must be a finite number, got {json.dumps(bound)}")
        if isinstance(bound, (int, float)):
            bounds[key] = float(bound)
    if "min" in bounds and "max" in bounds and bounds["min"] > bounds["max"]:
        raise ConfigError(f"{source}: 'label.min' ({bounds['min']}) must not exceed 'label.max' ({bounds['max']})")
    return Label(column, (), "number", bounds.get("min"), bounds.get("max"))


def _distinct_values(values: Any, key: str, source: str | Path, what: str) -> tuple[str, ...]:
    """A non-empty list of distinct strings or integers, as strings."""
    if not isinstance(values, list) or not values:
        raise ConfigError(f"{source}: '{key}' must be a non-empty list, got {json.dumps(values)}")
    names = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (str, int)) or isinstance(value, str) and not value.strip():
            raise ConfigError(f"{source}: '{key}': {what} must be a non-blank string or an integer, "
                              f"got {json.dumps(value)}")
        if str(value) in names:
            raise ConfigError(f"{source}: '{key}' lists {json.dumps(value)} twice; each must be distinct")
        names.append(str(value))
    return tuple(names)
