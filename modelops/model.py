"""The classifier, its SavedModel export, and calls through the exported signature.

The export has one ``serving_default`` signature: float32 input ``x`` of shape ``[None, 2]``,
one output ``probability`` of shape ``[None, 1]``, so TF Serving answers
``{"predictions": [[p], ...]}``. Everything that scores a model (gate, verify, local server)
goes through that signature, never ``model.predict()``, so what is evaluated is what is served.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from modelops.savedmodel import WARMUP_FILE, load_servable  # noqa: E402
from modelops.signature import SERVING_SIGNATURE  # noqa: E402

INPUT_NAME = "x"
OUTPUT_NAME = "probability"
N_FEATURES = 2


def build(learning_rate: float, seed: int) -> tf.keras.Model:
    """A small MLP: 2 features -> 16 ReLU -> 1 sigmoid, compiled for binary cross-entropy."""
    tf.keras.utils.set_random_seed(seed)
    model = tf.keras.Sequential(
        [
            tf.keras.Input(shape=(N_FEATURES,), name=INPUT_NAME),
            tf.keras.layers.Dense(16, activation="relu"),
            tf.keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(
        optimizer=tf.keras.optimizers.Adam(learning_rate=learning_rate),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    return model


def export(model: tf.keras.Model, path: Path, warmup_rows: np.ndarray | None = None) -> None:
    """Write a SavedModel with the serving signature to ``path`` (which must not exist), with TF
    Serving warmup records of ``warmup_rows`` when given (see ``write_warmup``).

    Keras's ExportArchive, not ``tf.saved_model.save`` of a module holding the model: that one
    stores Keras 3 weights apart from the variables the signature reads, which
    ``tf.saved_model.load`` reconciles but TF Serving's loader does not ("Could not find
    variable" on every request).
    """
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        SERVING_SIGNATURE,  # named so: the archive adds no second, aliased signature
        lambda x: {OUTPUT_NAME: model(x, training=False)},
        input_signature=[tf.TensorSpec([None, N_FEATURES], tf.float32, name=INPUT_NAME)],
    )
    archive.write_out(str(path), verbose=False)
    if warmup_rows is not None:
        write_warmup(Path(path), warmup_rows)


def write_warmup(path: Path, rows: np.ndarray) -> None:
    """``assets.extra/tf_serving_warmup_requests``: predict requests TF Serving (and the local
    server) replay before the version is AVAILABLE, so the first user request is not the slow one.
    One record per batch size a caller sends most (1 row, then up to 8), with real rows.
    """
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    rows = np.asarray(rows, dtype=np.float32)
    target = path / WARMUP_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(target)) as writer:
        for batch in (rows[:1], rows[:8]):
            request = predict_pb2.PredictRequest()
            request.model_spec.signature_name = SERVING_SIGNATURE
            request.inputs[INPUT_NAME].CopyFrom(tf.make_tensor_proto(batch))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())


def load_signature(path: Path):
    """The ``serving_default`` signature of a SavedModel directory, loaded the way TF Serving
    loads it (``modelops.savedmodel``, warmup included), so the gate scores exactly what will be served."""
    return load_servable(0, Path(path)).signatures[SERVING_SIGNATURE]


def predict(signature, x: np.ndarray) -> np.ndarray:
    """Probabilities ``[n, 1]`` for rows ``x`` ``[n, 2]``, through the serving signature."""
    return signature.run({INPUT_NAME: np.asarray(x, dtype=np.float32)})[OUTPUT_NAME]


def correct(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per row, whether ``p >= 0.5`` matches the label: accuracy is its mean, the gate's paired test its input."""
    predicted = (probabilities.reshape(-1) >= 0.5).astype(np.float32)
    return predicted == labels.reshape(-1)
