"""TF Serving's gRPC API on ``--port``: PredictionService (Predict, GetModelMetadata) and
ModelService (GetModelStatus), with the ``tensorflow_serving.apis`` protos, so stock clients work.

Errors are TF Serving's raw codes (NOT_FOUND, INVALID_ARGUMENT, FAILED_PRECONDITION), and the
PredictResponse names the version that answered, which REST cannot.
"""

from __future__ import annotations

import math
import time
from concurrent import futures

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import any_pb2
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    status_pb2,
)

from modelops.core.errors import ConfigError, ServableError
from modelops.core.signature import SERVING_SIGNATURE
from modelops.localserving import model_config
from modelops.localserving.monitoring import Metrics
from modelops.localserving.registry import ModelRegistry
from modelops.localserving.request_limits import DEFAULT_MAX_BODY_BYTES

_TYPED_FIELDS = {
    tf.float32: "float_val", tf.float64: "double_val", tf.int64: "int64_val", tf.bool: "bool_val",
    tf.string: "string_val", tf.uint32: "uint32_val", tf.uint64: "uint64_val",
    **dict.fromkeys((tf.int32, tf.int16, tf.int8, tf.uint8, tf.uint16), "int_val"),
}
_STATE = get_model_status_pb2.ModelVersionStatus.State
_ERROR_CODE = status_pb2.StatusProto.DESCRIPTOR.fields_by_name["error_code"].enum_type.values_by_name


def _version_request(spec) -> tuple[int | None, str | None]:
    version = spec.version.value if spec.HasField("version") else None
    return version, (spec.version_label or None)


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, manager: ModelRegistry, metrics: Metrics, max_tensor_bytes: int):
        self._manager = manager
        self._metrics = metrics
        self._max_tensor_bytes = max_tensor_bytes

    def _array(self, alias: str, proto) -> np.ndarray:
        """The input as an array, its size checked before it is allocated: a TensorProto with one
        value and a huge shape would otherwise be filled out to that shape."""
        dims = [d.size for d in proto.tensor_shape.dim]
        if proto.tensor_shape.unknown_rank or any(d < 0 for d in dims):
            raise ServableError("INVALID_ARGUMENT", f"tensor parsing error: {alias}")
        try:
            item_bytes = tf.as_dtype(proto.dtype).size or 8  # a string element is at least an object pointer
        except TypeError:
            raise ServableError("INVALID_ARGUMENT", f"tensor parsing error: {alias}") from None
        if math.prod(dims) * item_bytes > self._max_tensor_bytes:
            raise ServableError(
                "INVALID_ARGUMENT",
                f"Input {alias} declares shape {dims}: {math.prod(dims)} elements, more than fit in "
                f"{self._max_tensor_bytes} bytes (grpc.max_receive_message_length); send a smaller tensor",
            )
        try:
            return tf.make_ndarray(proto)
        except (ValueError, TypeError):
            raise ServableError("INVALID_ARGUMENT", f"tensor parsing error: {alias}") from None

    def Predict(self, request: predict_pb2.PredictRequest, context) -> predict_pb2.PredictResponse:  # noqa: N802
        start = time.perf_counter()
        spec = request.model_spec
        try:
            servable = self._manager.servable(spec.name, *_version_request(spec))
            signature_name = spec.signature_name or SERVING_SIGNATURE
            signature = servable.signatures.get(signature_name)
            if signature is None:
                raise ServableError("FAILED_PRECONDITION", f'Serving signature key "{signature_name}" not found.')
            outputs = signature.run({alias: self._array(alias, proto) for alias, proto in request.inputs.items()})
        except ServableError as e:
            self._metrics.request(spec.name, e.code, "Predict", "GRPC", time.perf_counter() - start)
            context.abort(grpc.StatusCode[e.code], e.message)
        response = predict_pb2.PredictResponse()
        for alias, value in outputs.items():
            if not request.output_filter or alias in request.output_filter:
                response.outputs[alias].CopyFrom(_as_proto_field(value))
        response.model_spec.name = spec.name
        response.model_spec.version.value = servable.version
        response.model_spec.signature_name = signature_name
        self._metrics.request(spec.name, "OK", "Predict", "GRPC", time.perf_counter() - start)
        return response

    def GetModelMetadata(self, request, context):  # noqa: N802
        spec = request.model_spec
        fields = list(request.metadata_field)
        if not fields:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "GetModelMetadataRequest must specify at least one metadata_field"
            )
        unsupported = [f for f in fields if f != "signature_def"]
        if unsupported:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"Metadata field {unsupported[0]} is not supported")
        try:
            servable = self._manager.servable(spec.name, *_version_request(spec))
        except ServableError as e:
            context.abort(grpc.StatusCode[e.code], e.message)
        definitions = get_model_metadata_pb2.SignatureDefMap()
        for name, definition in servable.signature_defs.items():
            definitions.signature_def[name].CopyFrom(definition)
        packed = any_pb2.Any()
        packed.Pack(definitions)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = spec.name
        response.model_spec.version.value = servable.version
        response.metadata["signature_def"].CopyFrom(packed)
        return response


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, manager: ModelRegistry):
        self._manager = manager

    def HandleReloadConfigRequest(self, request, context):  # noqa: N802
        """Realise the request's ModelServerConfig now, as a config file reload would."""
        try:
            self._manager.reload(model_config.specs_of(request.config, "ReloadConfigRequest"))
        except ConfigError as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        except ServableError as e:
            context.abort(grpc.StatusCode[e.code], e.message)
        return model_management_pb2.ReloadConfigResponse(status=status_pb2.StatusProto(error_code=0))

    def GetModelStatus(self, request, context):  # noqa: N802
        spec = request.model_spec
        try:
            statuses = self._manager.status(spec.name, _version_request(spec)[0])
        except ServableError as e:
            context.abort(grpc.StatusCode[e.code], e.message)
        response = get_model_status_pb2.GetModelStatusResponse()
        for s in statuses:
            entry = response.model_version_status.add(version=s.version, state=_STATE.Value(s.state))
            entry.status.error_code = _ERROR_CODE[s.error_code].number
            entry.status.error_message = s.error_message
        return response


def _as_proto_field(value: np.ndarray) -> tensor_pb2.TensorProto:
    """The tensor in its typed repeated field (``float_val``...), as TF Serving writes outputs unless
    ``--enable_serialization_as_tensor_content``; other dtypes as ``tensor_content``."""
    dtype = tf.as_dtype(value.dtype)
    field = _TYPED_FIELDS.get(dtype)
    if field is None:
        return tf.make_tensor_proto(value)
    proto = tensor_pb2.TensorProto(dtype=dtype.as_datatype_enum, tensor_shape=tf.TensorShape(value.shape).as_proto())
    getattr(proto, field).extend(value.ravel().tolist())
    return proto


def channel_options(text: str) -> dict[str, int | str]:
    """``--grpc_channel_arguments`` (``k=v,k2=v2``) over this server's defaults: replies up to 2 GiB
    like TF Serving, requests up to 4 MiB, as REST bodies (TF Serving: 2 GiB)."""
    options: dict[str, int | str] = {
        "grpc.max_send_message_length": 2**31 - 1,
        "grpc.max_receive_message_length": DEFAULT_MAX_BODY_BYTES,
    }
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--grpc_channel_arguments: expected key=value, got {item!r}")
        value = value.strip()
        options[key.strip()] = int(value) if value.lstrip("-").isdigit() else value
    return options


def start(manager: ModelRegistry, metrics: Metrics, host: str, port: int, threads: int, options: dict
          ) -> grpc.Server:
    """Serve both services on ``host:port``; raises if the port cannot be bound."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="grpc"), options=list(options.items())
    )
    max_tensor_bytes = int(options["grpc.max_receive_message_length"])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(manager, metrics, max_tensor_bytes), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(manager), server)
    if server.add_insecure_port(f"{host}:{port}") == 0:
        raise OSError(f"cannot bind gRPC port {port}")
    server.start()
    return server
