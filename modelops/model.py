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

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

SIGNATURE = "serving_default"
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


class _Exported(tf.Module):
    def __init__(self, model: tf.keras.Model):
        super().__init__()
        self.model = model

    @tf.function(input_signature=[tf.TensorSpec([None, N_FEATURES], tf.float32, name=INPUT_NAME)])
    def serve(self, x):
        return {OUTPUT_NAME: self.model(x, training=False)}


def export(model: tf.keras.Model, path: Path) -> None:
    """Write a SavedModel with the serving signature to ``path`` (which must not exist)."""
    module = _Exported(model)
    tf.saved_model.save(module, str(path), signatures={SIGNATURE: module.serve})


def load_signature(path: Path):
    """The ``serving_default`` concrete function of a SavedModel directory."""
    return tf.saved_model.load(str(path)).signatures[SIGNATURE]


def predict(signature, x: np.ndarray) -> np.ndarray:
    """Probabilities ``[n, 1]`` for rows ``x`` ``[n, 2]``, through the serving signature."""
    out = signature(**{INPUT_NAME: tf.constant(np.asarray(x, dtype=np.float32))})
    return out[OUTPUT_NAME].numpy()


def accuracy_percent(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Share of rows where ``p >= 0.5`` matches the label, in percent."""
    predicted = (probabilities.reshape(-1) >= 0.5).astype(np.float32)
    return float((predicted == labels.reshape(-1)).mean() * 100.0)
