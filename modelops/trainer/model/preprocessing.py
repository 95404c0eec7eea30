"""The schema's preprocessing, fitted on the training rows and exported inside the model.

So stock TF Serving answers raw values: each numeric feature is normalised with the mean and
variance of the training rows (a missing optional value takes the training mean, plus a 0/1
missing indicator); each category is looked up in its declared values, or else the values the
training rows hold, with one out-of-vocabulary bucket, one-hot (plus a missing indicator when
optional); a date or timestamp becomes its year and calendar cycles (``dates.py``). The result,
float32 ``[None, input_dim]``, is what a model sees: the built-in MLP or
the user's ``train.module``. The seed's demo keeps its features as they are (no normalisation),
so its model is the one it has always been.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from modelops.core.errors import DataError
from modelops.core.schema import Schema
from modelops.trainer.data.tables import columns
from modelops.trainer.model import dates


class Encoder(keras.layers.Layer):
    """Named feature columns (``{name: [None]}``) -> float32 ``[None, input_dim]``."""

    def __init__(self, schema: Schema, means: dict[str, float], variances: dict[str, float],
                 vocabularies: dict[str, tuple[str, ...]], fills: dict[str, str] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.schema, self.means, self.variances = schema, means, variances
        self.fills = fills or {}  # a date feature's median moment, for a missing value
        self.normalise = not schema.is_demo
        self.norms = []
        self.lookups = []
        for f in schema.features:
            if f.numeric and self.normalise:
                norm = keras.layers.Normalization(mean=[means[f.name]], variance=[variances[f.name]])
                norm.build((None, 1))
                self.norms.append(norm)
            elif f.type == "category":
                self.lookups.append(keras.layers.StringLookup(
                    vocabulary=list(vocabularies[f.name]), num_oov_indices=1, output_mode="one_hot"))
        self.vocabularies = vocabularies

    @property
    def input_dim(self) -> int:
        return sum(self.widths)

    @property
    def widths(self) -> list[int]:
        """Encoded columns per feature, in schema order (its one-hot and missing indicator included)."""
        widths = []
        for f in self.schema.features:
            one_hot = len(self.vocabularies[f.name]) + 1 if f.type == "category" else 1
            widths.append((dates.width(f.type) if f.temporal else one_hot) + f.optional)
        return widths

    def call(self, inputs: dict):
        parts = []
        norms, lookups = iter(self.norms), iter(self.lookups)
        for f in self.schema.features:
            if f.numeric:
                value = tf.reshape(tf.cast(inputs[f.name], tf.float32), [-1, 1])
                missing = tf.math.is_nan(value)
                if f.optional:
                    value = tf.where(missing, tf.fill(tf.shape(value), self.means[f.name]), value)
                parts.append(next(norms)(value) if self.normalise else value)
            elif f.temporal:
                text = tf.reshape(inputs[f.name], [-1])
                parts.append(dates.derive(text, f.type, self.fills[f.name], self.means[f.name],
                                          self.variances[f.name]))
                missing = tf.equal(text, "")[:, None]
            else:
                text = tf.reshape(inputs[f.name], [-1])
                parts.append(tf.cast(next(lookups)(text), tf.float32))
                missing = tf.equal(text, "")[:, None]
            if f.optional:
                parts.append(tf.cast(missing, tf.float32))
        return tf.concat(parts, axis=-1) if len(parts) > 1 else parts[0]


def fit(schema: Schema, x: np.ndarray, text: np.ndarray | None) -> Encoder:
    """An Encoder fitted on the training rows (``x`` numeric features, ``text`` categories, data.py's layout)."""
    means, variances, vocabularies, fills = {}, {}, {}, {}
    by_name = columns(schema, x, text)
    for f in schema.features:
        values = by_name[f.name]
        if f.temporal:
            means[f.name], variances[f.name], fills[f.name] = dates.fit(values)
        elif f.numeric:
            present = values[~np.isnan(values)]
            means[f.name] = float(present.mean()) if len(present) else 0.0
            variances[f.name] = float(present.var()) if len(present) > 1 else 1.0
        else:
            vocabulary = f.values or tuple(sorted({str(v) for v in values.tolist()} - {""}))
            if not vocabulary:
                raise DataError(f"feature '{f.name}' has no value in any training row: declare its "
                                f"features.{f.name}.values, or bring rows that have one")
            vocabularies[f.name] = vocabulary
    return Encoder(schema, means, variances, vocabularies, fills)


def encode(encoder: Encoder, x: np.ndarray, text: np.ndarray | None) -> np.ndarray:
    """The encoded rows, float32 ``[n, input_dim]``: what the model trains on."""
    return np.asarray(encoder(feeds(encoder.schema, x, text)), dtype=np.float32)


def feeds(schema: Schema, x: np.ndarray, text: np.ndarray | None) -> dict[str, np.ndarray]:
    """The named signature's inputs for these rows: float32 columns, and bytes (object) for categories."""
    return {name: column if column.dtype == np.float32 else np.char.encode(column, "utf-8").astype(object)
            for name, column in columns(schema, x, text).items()}
