"""SavedModels opened the way ``tensorflow_model_server`` opens them, and run the way it runs them.

Loading includes TF Serving's warmup: the ``PredictionLog`` records in
``assets.extra/tf_serving_warmup_requests`` (at most 1,000) are replayed before the version counts
as loaded, so its first real request is not the slow one; a record that fails fails the load.

Used by the local server for every version it loads and by the gate (through ``model.py``), so an
export is scored exactly as TF Serving will serve it, and one TF Serving could not run fails here.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2, meta_graph_pb2

from modelops.core.errors import ServableError
from modelops.core.signature import SERVING_SIGNATURE

WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000

_TF_CODE_NAMES = {
    getattr(tf.errors, name): name
    for name in (
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    )
}


class Signature:
    """One SignatureDef of a loaded version, run like TF Serving runs it: ``Session::Run`` on the
    SignatureDef's tensor names, through a callable prepared once at load."""

    def __init__(self, session: tf.compat.v1.Session, definition: meta_graph_pb2.SignatureDef):
        self.inputs: dict[str, tf.TensorSpec] = {
            alias: tf.TensorSpec(tf.TensorShape(info.tensor_shape), tf.as_dtype(info.dtype), alias)
            for alias, info in sorted(definition.inputs.items())
        }
        self._outputs = sorted(definition.outputs)
        # Session::Run's own callable, as TF Serving calls it: Session.make_callable would first check
        # each feed against its tensor's static shape in Python, which TF Serving never does.
        options = config_pb2.CallableOptions(
            feed=[definition.inputs[alias].name for alias in self.inputs],
            fetch=[definition.outputs[alias].name for alias in self._outputs],
        )
        self._call = session._make_callable_from_options(options)  # noqa: SLF001 (no public equivalent)
        # plain numpy dtypes: TensorSpec's own checks cost more than the model here
        self._dtypes = {alias: spec.dtype.as_numpy_dtype for alias, spec in self.inputs.items()}

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the signature as TF Serving does: shapes are not checked against the SignatureDef, the
        graph decides (a shape its ops cannot take fails with TF's own code and text)."""
        if inputs.keys() != self.inputs.keys():
            sent, wanted = set(inputs), set(self.inputs)
            raise ServableError(
                "INVALID_ARGUMENT",
                f"input size does not match signature: {len(sent)}!={len(wanted)} len({_names(sent)}) != "
                f"len({_names(wanted)}). Sent extra: {_names(sent - wanted)}. "
                f"Missing but required: {_names(wanted - sent)}.",
            )
        for i, (alias, dtype) in enumerate(self._dtypes.items()):
            value = inputs[alias]
            if value.dtype != dtype:
                raise ServableError(
                    "INVALID_ARGUMENT",
                    f"Expects arg[{i}] to be {self.inputs[alias].dtype.name} but {tf.as_dtype(value.dtype).name} "
                    "is provided",
                )
        try:
            results = self._call(*(inputs[alias] for alias in self.inputs))
        except tf.errors.OpError as e:  # TF Serving's text is the runtime's, without Python's heading
            message = e.message.removeprefix("Graph execution error:").strip()
            raise ServableError(_TF_CODE_NAMES.get(e.error_code, "UNKNOWN"), message) from e
        return dict(zip(self._outputs, results, strict=True))


class Servable:
    """A loaded version, as TF Serving's C++ loader builds it: the ``serve`` MetaGraph imported into
    its own Session, variables restored by the SaverDef's restore op, then the main op run.

    Loading the way the stock server does (not with ``tf.saved_model.load``, whose object-based
    restore forgives more) means an export that TF Serving could not run fails here too.
    """

    def __init__(self, version: int, path: Path, session_config: tf.compat.v1.ConfigProto | None = None):
        self.version = version
        self.path = path
        self.warmup_records = 0  # replayed at load (see warm_up)
        graph = tf.Graph()
        self._session = tf.compat.v1.Session(graph=graph, config=session_config)
        tf_logger = tf.get_logger()  # the TF1 loader logs a deprecation pointing at the very loader not wanted here
        level = tf_logger.level
        tf_logger.setLevel(logging.ERROR)
        try:
            with graph.as_default():
                meta_graph = tf.compat.v1.saved_model.loader.load(self._session, [tf.saved_model.SERVING], str(path))
        finally:
            tf_logger.setLevel(level)
        # as stored, for metadata requests (TF2 exports also list ``__saved_model_init_op``)
        self.signature_defs: dict[str, meta_graph_pb2.SignatureDef] = dict(meta_graph.signature_def)
        self.signatures = {
            name: Signature(self._session, definition)
            for name, definition in self.signature_defs.items()
            if name != "__saved_model_init_op"  # what TF2 exports run at load; not callable
        }


def load_servable(version: int, path: Path, session_config: tf.compat.v1.ConfigProto | None = None) -> Servable:
    """Load one version directory; every failure becomes a ServableError with TF's code."""
    if not (path / "saved_model.pb").is_file() and not (path / "saved_model.pbtxt").is_file():
        raise ServableError(
            "NOT_FOUND", f"Could not find SavedModel .pb or .pbtxt at supplied export directory path: {path}"
        )
    try:
        servable = Servable(version, path, session_config)
        servable.warmup_records = warm_up(servable)
        return servable
    except ServableError:
        raise
    except tf.errors.OpError as e:
        raise ServableError(_TF_CODE_NAMES.get(e.error_code, "UNKNOWN"), e.message) from e
    except FileNotFoundError as e:
        raise ServableError("NOT_FOUND", str(e)) from e
    except Exception as e:  # a broken export can fail in any way: it must end as END, not kill the poller
        raise ServableError("UNKNOWN", f"{type(e).__name__}: {e}") from e


def warm_up(servable: Servable) -> int:
    """Replay the version's warmup records (predict logs) through its signatures; how many ran."""
    path = servable.path / WARMUP_FILE
    if not path.is_file():
        return 0
    from tensorflow_serving.apis import prediction_log_pb2  # only exports with warmup records need it

    count = 0
    for record in tf.compat.v1.io.tf_record_iterator(str(path)):
        count += 1
        if count > MAX_WARMUP_RECORDS:
            raise ServableError(
                "INVALID_ARGUMENT", f"Number of warmup records exceeds the maximum ({MAX_WARMUP_RECORDS}) at {path}"
            )
        log = prediction_log_pb2.PredictionLog.FromString(record)
        if log.WhichOneof("log_type") != "predict_log":
            raise ServableError("UNIMPLEMENTED", f"Unsupported log_type for warmup: {log.WhichOneof('log_type')}")
        request = log.predict_log.request
        name = request.model_spec.signature_name or SERVING_SIGNATURE
        if name not in servable.signatures:
            raise ServableError("FAILED_PRECONDITION", f'Serving signature key "{name}" not found.')
        servable.signatures[name].run({alias: tf.make_ndarray(t) for alias, t in request.inputs.items()})
    return count


def _names(names: set[str]) -> str:
    return "{" + ",".join(sorted(names)) + "}"

