"""A number to predict (``"label": {"type": "number"}``): one linear unit, a normalised label, ``value``.

The label is trained normalised (the training rows' mean and standard deviation) with a mean
squared error loss, and the export turns the unit's output back into the label's own units, so
``serving_default`` answers ``value`` float32 ``[None]`` from the same per-feature inputs as a class
label's signature: a stock TF Serving answers ``{"predictions": [23.4, ...]}``.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

VALUE_OUTPUT = "value"  # [None] float32, in the label's own units


def label_scale(y: np.ndarray) -> tuple[float, float]:
    """The training labels' mean and standard deviation (1 when they do not vary)."""
    std = float(np.std(y)) if len(y) > 1 else 1.0
    return float(np.mean(y)) if len(y) else 0.0, std if std > 0 else 1.0


def build(learning_rate: float, seed: int, input_dim: int) -> keras.Model:
    """The built-in MLP with one linear unit: features -> 16 ReLU -> 1, compiled for regression."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input(shape=(input_dim,), name="x"),
                              keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
    compile_for(model, learning_rate)
    return model


def compile_for(model: keras.Model, learning_rate: float) -> None:
    """Adam on the mean squared error of the normalised label (a user's module's model too)."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss="mse", metrics=["mae"])


def add_endpoint(archive: keras.export.ExportArchive, model: keras.Model, encoder, scale: tuple[float, float],
                 signature: str) -> None:
    """``serving_default``: the named per-feature inputs -> ``value`` in the label's units."""
    mean, std = scale
    schema = encoder.schema

    def named(inputs):
        out = model(encoder(inputs), training=False)
        return {VALUE_OUTPUT: tf.reshape(out, [-1]) * std + mean}

    spec = {f.name: tf.TensorSpec([None], tf.float32 if f.numeric else tf.string, name=f.name)
            for f in schema.features}
    archive.add_endpoint(signature, named, input_signature=[spec])
