"""TF Serving's JSON <-> tensor rules for predict: the row ("instances") and columnar ("inputs")
formats, ``{"b64": ...}`` strings, type checks and output shaping, with TF Serving's error texts.

Apart from the HTTP handling (rest.py) because these rules are the contract's bulk and change for
their own reasons (a new dtype, a new wording). The checks run in TF Serving's order, which decides
which error a bad request gets; the common case (a list of equal-length lists of fitting leaves)
is checked at C speed, anything else element by element.
"""

from __future__ import annotations

import base64
import binascii
import functools
import itertools
import json
import math
from typing import Any

import numpy as np
import tensorflow as tf

from modelops.core.errors import ServableError
from modelops.savedmodel import Signature

# TF's DataTypeString for the names TF Serving puts in "is not of expected type: ..."
_TYPE_NAMES = {"float32": "float", "float64": "double"}


def request_tensors(request: dict[str, Any], signature: Signature) -> tuple[dict[str, np.ndarray], bool]:
    """The predict request's input tensors, and whether it used the row format (its answer's shape)."""
    if ("instances" in request) == ("inputs" in request):
        if "instances" in request:
            raise ServableError(
                "INVALID_ARGUMENT",
                f"JSON Value: {dump_value(request)} Not formatted correctly "
                "expecting only one of 'inputs' or 'instances' keys to exist ",
            )
        raise ServableError("INVALID_ARGUMENT", "Missing 'inputs' or 'instances' key")
    if "instances" in request:
        return _from_rows(request["instances"], signature), True
    return _from_columns(request["inputs"], signature), False


def response_body(outputs: dict[str, np.ndarray], rows: bool) -> dict[str, Any]:
    """The predict answer in the request's format: ``predictions`` for rows, ``outputs`` for columns."""
    return {"predictions": _to_rows(outputs)} if rows else {"outputs": _to_columns(outputs)}


def _from_rows(instances: Any, signature: Signature) -> dict[str, np.ndarray]:
    """Row format: one element per example, stacked along a new batch dimension."""
    if type(instances) is not list:
        raise ServableError(
            "INVALID_ARGUMENT", f"JSON Value: {dump_value(instances)} Expecting 'instances' to be an list/array"
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


def _from_named_rows(instances: list[Any], signature: Signature) -> dict[str, np.ndarray]:
    """Row format with one object per example, keyed by input alias, checked as TF Serving does:
    key by key in the object's order, then the object's keys against the signature's."""
    columns: dict[str, list[Any]] = {alias: [] for alias in signature.inputs}
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
                f"Failed to process element: {i} of 'instances' list. JSON object: {dump_value(row)} "
                f"keys must be equal to: {','.join(columns)}",
            )
    return {alias: _tensor(values, signature.inputs[alias].dtype) for alias, values in columns.items()}


def _is_named(value: Any) -> bool:
    """An object of named inputs, as opposed to a value (a ``{"b64": ...}`` string is a value)."""
    return type(value) is dict and not _is_b64(value)


def _is_b64(value: Any) -> bool:
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


def _from_columns(inputs: Any, signature: Signature) -> dict[str, np.ndarray]:
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


def _tensor(value: Any, dtype: tf.DType) -> np.ndarray:
    """A checked JSON value as the array fed to the signature; strings as UTF-8 (or base64-decoded) bytes."""
    numpy_dtype = dtype.as_numpy_dtype
    if numpy_dtype is object:  # DT_STRING
        return np.array(_as_bytes(value), dtype=object)
    return np.array(value, dtype=numpy_dtype)


def _as_bytes(value: Any) -> Any:
    if type(value) is list:
        return [_as_bytes(item) for item in value]
    if type(value) is str:
        return value.encode("utf-8", "surrogatepass")
    return _b64_decode(value)


def _b64_decode(value: dict[str, str]) -> bytes:
    text = value["b64"]
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ServableError("INVALID_ARGUMENT", "Unable to base64 decode") from None


def _is_matrix(value: Any, dtype: tf.DType) -> bool:
    """The common case checked at C speed: a list of equal-length lists of leaves that fit ``dtype``.

    Anything else takes the element-by-element path, which also words the error.
    """
    return (
        type(value) is list
        and set(map(type, value)) == {list}
        and len(set(map(len, value))) == 1
        and _leaf_types(dtype).issuperset(map(type, itertools.chain.from_iterable(value)))
    )


def _shape(value: Any, dtype: tf.DType) -> tuple[int, ...]:
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


def _check_dense(value: Any, level: int, shape: list[int], dtype: tf.DType, kinds: frozenset[type]) -> None:
    """TF Serving's FillTensorProto checks, with its texts; a vector of fitting leaves at C speed."""
    rank = len(shape)
    if type(value) is not list:
        if level != rank:
            raise ServableError(
                "INVALID_ARGUMENT",
                f"JSON Value: {dump_value(value)} found at incorrect level: {level + 1} in the JSON DOM. "
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
def _leaf_types(dtype: tf.DType) -> frozenset[type]:
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


def _check_leaf(value: Any, dtype: tf.DType, kinds: frozenset[type]) -> None:
    if not kinds:
        raise ServableError("UNIMPLEMENTED", f"Conversion of JSON Value: {dump_value(value)} to type: {dtype.name}")
    if type(value) is dict and dtype == tf.string:
        if not _is_b64(value):
            raise ServableError(
                "INVALID_ARGUMENT", f"JSON Value: {dump_value(value)} not formatted correctly for base64 data"
            )
        _b64_decode(value)
    elif type(value) not in kinds:
        expected = _TYPE_NAMES.get(dtype.name, dtype.name)
        raise ServableError(
            "INVALID_ARGUMENT",
            f"JSON Value: {dump_value(value)} Type: {_json_type(value)} is not of expected type: {expected}",
        )


def _to_rows(outputs: dict[str, np.ndarray]) -> Any:
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


def _to_columns(outputs: dict[str, np.ndarray]) -> Any:
    if len(outputs) == 1:
        return _json_values(*next(iter(outputs.items())))
    return {alias: _json_values(alias, tensor) for alias, tensor in outputs.items()}


def _json_values(alias: str, tensor: np.ndarray) -> Any:
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


def _b64_object(value: bytes) -> dict[str, str]:
    return {"b64": base64.b64encode(value).decode("ascii")}




def dump_value(value: Any) -> str:
    """The offending JSON value, cut like TF Serving's debug dump."""
    return json.dumps(value)[:256]


def _json_type(value: Any) -> str:
    if value is None:
        return "Null"
    if value is True or value is False:
        return str(value)
    names: dict[type, str] = {dict: "Object", list: "Array", str: "String"}
    return names.get(type(value), "Number")
