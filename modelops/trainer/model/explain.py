"""The ``explain`` signature: integrated gradients from a baseline row to each row, in the graph.

Every export carries it beside ``serving_default`` with the very same inputs, so stock TF Serving
answers ``{"signature_name": "explain", "instances": [...]}`` on ``:predict`` with nothing else
running. The path runs in the encoded space (after the schema's preprocessing, which is not
differentiable for categories): ``STEPS`` points from the encoded baseline to the encoded row, the
gradients of the explained class's probability averaged along it (midpoint rule) and multiplied by
the row's distance from the baseline, then the columns of one feature (a category's one-hot, a
missing indicator) summed back to it. Completeness: per row, the attributions add up to
``prediction - baseline_prediction`` within ``COMPLETENESS_TOLERANCE`` (docs/explain.md).

The baseline is the training rows' typical row: each number's mean, each category's most
frequent value (``baseline_row``); the trainer records it in ``metrics.json``. The class explained
is the row's predicted class (for the packed demo as well, whose ``serving_default`` answers
P(second class) only); the ``explain_class`` signature takes the class to explain per row instead,
as an extra ``class_index`` input. A number label's ``explain`` explains the predicted value, in the
label's units (``ValueExplainer``; no ``explained_class`` output).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import tensorflow as tf

from modelops.core.schema import Schema
from modelops.core.signature import (
    ATTRIBUTIONS_OUTPUT,
    BASELINE_OUTPUT,
    CLASS_INPUT,
    EXPLAIN_CLASS_SIGNATURE,
    EXPLAIN_SIGNATURE,
    EXPLAINED_CLASS_OUTPUT,
    PREDICTION_OUTPUT,
)
from modelops.trainer.data.tables import columns
from modelops.trainer.model.preprocessing import Encoder

STEPS = 128  # points on the path; fewer leave a larger completeness error (docs/explain.md)
COMPLETENESS_TOLERANCE = 0.02  # |sum(attributions) - (prediction - baseline)|, in probability
# (a number label: in the label's training standard deviations, so times that deviation in its units)


def baseline_row(schema: Schema, x: np.ndarray, text: np.ndarray | None) -> dict[str, float | str]:
    """The training rows' typical row: a number's mean of its present values (0.0 if none), a
    category's most frequent non-blank value (ties: the first in sorted order)."""
    baseline: dict[str, float | str] = {}
    for f in schema.features:
        values = columns(schema, x, text)[f.name]
        if f.numeric:
            present = values[~np.isnan(values)]
            baseline[f.name] = float(present.mean()) if len(present) else 0.0
        else:
            counts = Counter(str(v) for v in values.tolist() if str(v) != "")
            baseline[f.name] = min(counts, key=lambda v: (-counts[v], v)) if counts else ""
    return baseline


def add_endpoint(archive: Any, model: tf.keras.Model, encoder: Encoder, baseline: dict[str, float | str],
                 steps: int = STEPS) -> None:
    """Add the ``explain`` signature to a Keras ExportArchive that already tracks ``model`` and
    ``encoder``; its inputs are spelled as ``serving_default``'s (packed ``x`` or one per feature)."""
    schema = encoder.schema
    explain = Explainer(model, *_origin_and_owners(encoder, baseline), steps, tf.constant(schema.label.class_names))
    klass = tf.TensorSpec([None], tf.int32, name=CLASS_INPUT)
    if schema.packed:
        def packed(x: tf.Tensor) -> tf.Tensor:
            return encoder({f.name: x[:, i] for i, f in enumerate(schema.features)})

        x_spec = tf.TensorSpec([None, len(schema.features)], tf.float32, name="x")
        archive.add_endpoint(EXPLAIN_SIGNATURE, lambda x: explain(packed(x)), input_signature=[x_spec])
        archive.add_endpoint(EXPLAIN_CLASS_SIGNATURE, lambda inputs: explain(packed(inputs["x"]), inputs[CLASS_INPUT]),
                             input_signature=[{"x": x_spec, CLASS_INPUT: klass}])
        return
    spec = {f.name: tf.TensorSpec([None], tf.float32 if f.numeric else tf.string, name=f.name)
            for f in schema.features}
    archive.add_endpoint(EXPLAIN_SIGNATURE, lambda inputs: explain(encoder(inputs)), input_signature=[spec])
    if CLASS_INPUT not in spec:  # a feature of that name leaves none for the input
        archive.add_endpoint(
            EXPLAIN_CLASS_SIGNATURE,
            lambda inputs: explain(encoder({k: v for k, v in inputs.items() if k != CLASS_INPUT}), inputs[CLASS_INPUT]),
            input_signature=[{**spec, CLASS_INPUT: klass}])


def add_value_endpoint(archive: Any, model: tf.keras.Model, encoder: Encoder, baseline: dict[str, float | str],
                       scale: tuple[float, float], steps: int = STEPS) -> None:
    """A number label's ``explain`` signature (named inputs, as its ``serving_default``): the
    predicted value explained; no ``explain_class`` (there is no class to name)."""
    explain = ValueExplainer(model, *_origin_and_owners(encoder, baseline), steps, scale)
    spec = {f.name: tf.TensorSpec([None], tf.float32 if f.numeric else tf.string, name=f.name)
            for f in encoder.schema.features}
    archive.add_endpoint(EXPLAIN_SIGNATURE, lambda inputs: explain(encoder(inputs)), input_signature=[spec])


def _origin_and_owners(encoder: Encoder, baseline: dict[str, float | str]) -> tuple[tf.Tensor, tf.Tensor]:
    """The encoded baseline row ``[1, D]``, and ``[D, features]``: which feature owns each encoded column."""
    features = encoder.schema.features
    origin = encoder({f.name: tf.constant([baseline[f.name]], tf.float32 if f.numeric else tf.string)
                      for f in features})
    owners = np.repeat(np.eye(len(features), dtype=np.float32), encoder.widths, axis=0)
    return tf.constant(origin, tf.float32), tf.constant(owners)


class Explainer:
    """Integrated gradients of one model in its encoded space (see the module docstring)."""

    def __init__(self, model: tf.keras.Model, origin: tf.Tensor, owners: tf.Tensor, steps: int,
                 class_names: tf.Tensor):
        self.model, self.origin, self.owners, self.steps = model, origin, owners, steps
        self.class_names = class_names

    def probabilities(self, encoded: tf.Tensor) -> tf.Tensor:
        """``[n, K]`` class probabilities; a one-unit sigmoid model answers ``[1 - p, p]``."""
        p = self.model(encoded, training=False)
        return tf.concat([1.0 - p, p], axis=-1) if p.shape[-1] == 1 else p

    def checked(self, asked: tf.Tensor, rows: tf.Tensor) -> tf.Tensor:
        """``asked``, once it is one class index per row within the label's classes (else
        INVALID_ARGUMENT, which TF Serving answers as HTTP 400 with this message)."""
        count = tf.shape(self.class_names)[0]
        checks = [
            tf.debugging.assert_equal(tf.shape(asked)[0], rows,
                                      message=f"'{CLASS_INPUT}' needs one class index per row"),
            tf.debugging.assert_non_negative(asked, message=f"'{CLASS_INPUT}' must be a class index from 0"),
            tf.debugging.assert_less(asked, count, message=f"'{CLASS_INPUT}' must be a class index below the "
                                                          "number of classes"),
        ]
        with tf.control_dependencies(checks):
            return tf.identity(asked)

    def __call__(self, encoded: tf.Tensor, asked: tf.Tensor | None = None) -> dict[str, tf.Tensor]:
        """Explain each row's predicted class, or the class index ``asked`` for it."""
        encoded = tf.cast(encoded, tf.float32)
        predicted = self.probabilities(encoded)
        target = tf.argmax(predicted, axis=-1, output_type=tf.int32) if asked is None \
            else self.checked(asked, tf.shape(encoded)[0])
        targets = tf.tile(target, [self.steps])
        attributions = integrated(lambda path: tf.gather(self.probabilities(path), targets, batch_dims=1),
                                  encoded, self.origin, self.steps)
        return {
            ATTRIBUTIONS_OUTPUT: tf.matmul(attributions, self.owners),
            PREDICTION_OUTPUT: tf.gather(predicted, target, batch_dims=1),
            BASELINE_OUTPUT: tf.gather(self.probabilities(self.origin)[0], target),
            EXPLAINED_CLASS_OUTPUT: tf.gather(self.class_names, target),
        }


class ValueExplainer:
    """A number label's integrated gradients: of the predicted value in the label's own units
    (the unit's output times the training deviation plus the mean, as ``serving_default`` answers)."""

    def __init__(self, model: tf.keras.Model, origin: tf.Tensor, owners: tf.Tensor, steps: int,
                 scale: tuple[float, float]):
        self.model, self.origin, self.owners, self.steps, self.scale = model, origin, owners, steps, scale

    def value(self, encoded: tf.Tensor) -> tf.Tensor:
        """``[n]`` values in the label's units."""
        return tf.reshape(self.model(encoded, training=False), [-1]) * self.scale[1] + self.scale[0]

    def __call__(self, encoded: tf.Tensor) -> dict[str, tf.Tensor]:
        encoded = tf.cast(encoded, tf.float32)
        attributions = integrated(self.value, encoded, self.origin, self.steps)
        return {
            ATTRIBUTIONS_OUTPUT: tf.matmul(attributions, self.owners),
            PREDICTION_OUTPUT: self.value(encoded),
            BASELINE_OUTPUT: tf.fill([tf.shape(encoded)[0]], self.value(self.origin)[0]),
        }


def integrated(score: Any, encoded: tf.Tensor, origin: tf.Tensor, steps: int) -> tf.Tensor:
    """``[n, D]`` integrated gradients of ``score`` (``[S*n, D]`` points -> ``[S*n]``) from ``origin``
    to each row: gradients at ``steps`` midpoints, averaged, times the row's distance from ``origin``."""
    rows, width = tf.shape(encoded)[0], tf.shape(encoded)[1]
    delta = encoded - origin  # [n, D]
    alphas = (tf.range(steps, dtype=tf.float32) + 0.5) / float(steps)
    path = tf.reshape(origin + alphas[:, None, None] * delta[None], [-1, width])  # [S*n, D]
    with tf.GradientTape() as tape:
        tape.watch(path)
        picked = score(path)
    gradients = tf.reshape(tape.gradient(picked, path), [steps, rows, width])
    return tf.reduce_mean(gradients, axis=0) * delta


def importance(path: Any, schema: Schema, x: np.ndarray, text: np.ndarray | None, chunk: int = 256) -> dict[str, float]:
    """Mean absolute attribution per feature over these rows, through the export's ``explain``
    signature as TF Serving runs it (in chunks: the path multiplies each row by ``STEPS``)."""
    from modelops.savedmodel import load_servable

    signature = load_servable(0, path).signatures[EXPLAIN_SIGNATURE]
    total = np.zeros(len(schema.features), dtype=np.float64)
    for start in range(0, len(x), chunk):
        part = None if text is None else text[start:start + chunk]
        total += np.abs(_run(signature, schema, x[start:start + chunk], part)[ATTRIBUTIONS_OUTPUT]).sum(axis=0)
    return {f.name: float(value / max(len(x), 1)) for f, value in zip(schema.features, total, strict=True)}


def attributions(path: Any, schema: Schema, x: np.ndarray, text: np.ndarray | None) -> np.ndarray | None:
    """``[rows, features]``: the export's attributions for these rows, run in-process as TF Serving
    runs the signature; None for an export without an ``explain`` signature (an older version)."""
    from modelops.savedmodel import load_servable

    signatures = load_servable(0, path).signatures
    if EXPLAIN_SIGNATURE not in signatures:
        return None
    return np.asarray(_run(signatures[EXPLAIN_SIGNATURE], schema, x, text)[ATTRIBUTIONS_OUTPUT])


def _run(signature: Any, schema: Schema, x: np.ndarray, text: np.ndarray | None) -> dict[str, np.ndarray]:
    from modelops.trainer.model.preprocessing import feeds

    inputs = {"x": np.asarray(x, dtype=np.float32)} if schema.packed else feeds(schema, x, text)
    result: dict[str, np.ndarray] = signature.run(inputs)
    return result
