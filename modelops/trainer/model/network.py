"""The classifier, its SavedModel export, and calls through the exported signature.

The export has one ``serving_default`` signature, shaped by the schema (``modelops.core.schema``):
packed (the demo) takes float32 ``x`` ``[None, n]`` and answers ``probability`` ``[None, 1]``, so
TF Serving answers ``{"predictions": [[p], ...]}``; named takes one ``[None]`` input per feature
and answers ``probabilities`` ``[None, K]`` and ``class``. The schema's preprocessing
(``modelops.trainer.model.preprocessing``) sits in front of the model inside the export. Everything that scores
a model (gate, verify, local server) goes through that signature, never ``model.predict()``, so
what is evaluated is what is served.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from modelops.core.schema import Schema  # noqa: E402
from modelops.core.signature import EXPLAIN_SIGNATURE, SERVING_SIGNATURE  # noqa: E402
from modelops.savedmodel import WARMUP_FILE, load_servable  # noqa: E402

if TYPE_CHECKING:
    from modelops.trainer.model.preprocessing import Encoder

INPUT_NAME = "x"
OUTPUT_NAME = "probability"
N_FEATURES = 2
NAMED_OUTPUT = "probabilities"  # [None, K] in label.classes order
CLASS_OUTPUT = "class"  # [None] string: the most probable class name


def seed(value: int) -> None:
    """Seed Python, NumPy and TensorFlow: the same data and config train the same model."""
    tf.keras.utils.set_random_seed(value)


def build(learning_rate: float, seed: int, input_dim: int = N_FEATURES, num_classes: int = 2) -> tf.keras.Model:
    """A small MLP: features -> 16 ReLU -> 1 sigmoid (two classes) or K softmax, compiled."""
    tf.keras.utils.set_random_seed(seed)
    model = tf.keras.Sequential(
        [
            tf.keras.Input(shape=(input_dim,), name=INPUT_NAME),
            tf.keras.layers.Dense(16, activation="relu"),
            tf.keras.layers.Dense(1, activation="sigmoid") if num_classes == 2
            else tf.keras.layers.Dense(num_classes, activation="softmax"),
        ]
    )
    compile_for(model, learning_rate)
    return model


def compile_for(model: tf.keras.Model, learning_rate: float) -> None:
    """Adam with the loss its output asks for: binary for one sigmoid unit, else sparse categorical."""
    binary = model.output_shape[-1] == 1
    model.compile(
        optimizer=tf.keras.optimizers.Adam(learning_rate=learning_rate),
        loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )


def export(model: tf.keras.Model, path: Path, warmup_rows: np.ndarray | dict | None = None,
           encoder: Encoder | None = None, baseline: dict[str, float | str] | None = None,
           label_scale: tuple[float, float] | None = None) -> None:
    """Write a SavedModel with the serving signature to ``path`` (which must not exist), with TF
    Serving warmup records of ``warmup_rows`` when given (see ``write_warmup``).

    With ``encoder``, its schema shapes the signature and its preprocessing runs before the model;
    without, the demo's packed ``x`` goes into the model as it is. With both ``encoder`` and
    ``baseline`` (``explain.baseline_row``), the export also carries the ``explain``
    signature (a number label's explains the value). ``label_scale``: a number label's training mean and deviation
    (``modelops.trainer.model.number``).

    Keras's ExportArchive, not ``tf.saved_model.save`` of a module holding the model: that one
    stores Keras 3 weights apart from the variables the signature reads, which
    ``tf.saved_model.load`` reconciles but TF Serving's loader does not ("Could not find
    variable" on every request).
    """
    archive = keras.export.ExportArchive()
    archive.track(model)
    explained = False
    if encoder is None:
        archive.add_endpoint(
            SERVING_SIGNATURE,  # named so: the archive adds no second, aliased signature
            lambda x: {OUTPUT_NAME: model(x, training=False)},
            input_signature=[tf.TensorSpec([None, N_FEATURES], tf.float32, name=INPUT_NAME)],
        )
    elif encoder.schema.label.is_number:
        from modelops.trainer.model import number

        archive.track(encoder)
        number.add_endpoint(archive, model, encoder, label_scale or (0.0, 1.0), SERVING_SIGNATURE)
        if baseline is not None:
            from modelops.trainer.model import explain

            explain.add_value_endpoint(archive, model, encoder, baseline, label_scale or (0.0, 1.0))
            explained = True
    else:
        archive.track(encoder)
        _add_endpoint(archive, model, encoder)
        if baseline is not None:
            from modelops.trainer.model import explain

            explain.add_endpoint(archive, model, encoder, baseline)
            explained = True
    archive.write_out(str(path), verbose=False)
    if warmup_rows is not None:
        write_warmup(Path(path), warmup_rows, explained=explained)


def _add_endpoint(archive: keras.export.ExportArchive, model: tf.keras.Model, encoder: Encoder) -> None:
    """The schema's signature: packed ``x`` -> ``probability`` (P of the second class), or named
    inputs -> ``probabilities`` ``[None, K]`` and ``class``; a one-unit sigmoid model answers [1 - p, p]."""
    schema = encoder.schema
    if schema.packed:
        def packed(x):
            p = model(encoder({f.name: x[:, i] for i, f in enumerate(schema.features)}), training=False)
            return {OUTPUT_NAME: p if p.shape[-1] == 1 else p[:, 1:2]}

        archive.add_endpoint(SERVING_SIGNATURE, packed,
                             input_signature=[tf.TensorSpec([None, len(schema.features)], tf.float32, name=INPUT_NAME)])
        return

    def named(inputs):
        p = model(encoder(inputs), training=False)
        if p.shape[-1] == 1:
            p = tf.concat([1.0 - p, p], axis=-1)
        names = tf.constant(schema.label.class_names)
        return {NAMED_OUTPUT: p, CLASS_OUTPUT: tf.gather(names, tf.argmax(p, axis=-1))}

    spec = {f.name: tf.TensorSpec([None], tf.float32 if f.numeric else tf.string, name=f.name)
            for f in schema.features}
    archive.add_endpoint(SERVING_SIGNATURE, named, input_signature=[spec])


def write_warmup(path: Path, rows: np.ndarray | dict[str, np.ndarray], explained: bool = False) -> None:
    """``assets.extra/tf_serving_warmup_requests``: predict requests TF Serving (and the local
    server) replay before the version is AVAILABLE, so the first user request is not the slow one.
    One record per batch size a caller sends most (1 row, then up to 8), with real rows: packed
    rows ``[n, features]``, or the named signature's inputs by name. ``explained``: the same
    requests for the ``explain`` signature follow, so the first explanation is not the slow one.
    """
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    inputs = rows if isinstance(rows, dict) else {INPUT_NAME: np.asarray(rows, dtype=np.float32)}
    target = path / WARMUP_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(target)) as writer:
        for signature, size in [(s, n) for s in (SERVING_SIGNATURE, EXPLAIN_SIGNATURE)[:1 + explained]
                                for n in (1, 8)]:
            request = predict_pb2.PredictRequest()
            request.model_spec.signature_name = signature
            for name, column in inputs.items():
                request.inputs[name].CopyFrom(tf.make_tensor_proto(column[:size]))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())


def load_signature(path: Path):
    """The ``serving_default`` signature of a SavedModel directory, loaded the way TF Serving
    loads it (``modelops.savedmodel``, warmup included), so the gate scores exactly what will be served."""
    return load_servable(0, Path(path)).signatures[SERVING_SIGNATURE]


def predict(signature, x: np.ndarray, schema: Schema | None = None, text: np.ndarray | None = None) -> np.ndarray:
    """What the serving signature answers for these rows (data.py's layout): packed ``[n, 1]``
    (P of the second class), named ``[n, K]``, a number label's ``value`` ``[n]``. ``schema`` None:
    the demo's packed rows."""
    if schema is None or schema.packed:
        return signature.run({INPUT_NAME: np.asarray(x, dtype=np.float32)})[OUTPUT_NAME]
    from modelops.trainer.model.preprocessing import feeds

    answer = signature.run(feeds(schema, x, text))
    return answer["value"] if schema.label.is_number else answer[NAMED_OUTPUT]

