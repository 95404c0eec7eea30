"""Fit a candidate and export it outside the served path. Only the gate publishes."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from modelops.core.config import TrainConfig
from modelops.core.schema import DEMO_SCHEMA, Schema
from modelops.trainer.data.tables import Split
from modelops.trainer.model import explain, number, preprocessing
from modelops.trainer.model import network as model
from modelops.trainer.model.usermodel import build_user_model


@dataclass(frozen=True)
class Candidate:
    path: Path
    training_loss: float
    training_accuracy_percent: float
    seconds: float
    baseline: dict[str, float | str] | None = None  # the explain signature's baseline row (explain.baseline_row)


def train_candidate(train: TrainConfig, split: Split, out_dir: Path, schema: Schema = DEMO_SCHEMA,
                    module: Path | None = None) -> Candidate:
    """Fit the schema's preprocessing and a seeded model (the built-in MLP, or ``build_model`` of the
    user's ``module``) on the training rows; export both as one SavedModel to ``out_dir``."""
    start = time.monotonic()
    encoder = preprocessing.fit(schema, split.x_train, split.text_train)
    x_train = preprocessing.encode(encoder, split.x_train, split.text_train)
    if schema.label.is_number:
        return _train_number(train, split, out_dir, encoder, x_train, module, start)
    if module is None:
        keras_model = model.build(train.learning_rate, train.seed, encoder.input_dim, schema.num_classes)
    else:
        model.seed(train.seed)
        keras_model = build_user_model(module, encoder.input_dim, schema.num_classes, train.params)
        model.compile_for(keras_model, train.learning_rate)
    fit = keras_model.fit(
        x_train, split.y_train, epochs=train.epochs, batch_size=train.batch_size, shuffle=True, verbose=0
    )
    baseline = explain.baseline_row(schema, split.x_train, split.text_train)
    model.export(keras_model, out_dir, warmup_rows=_warmup(schema, split), encoder=encoder, baseline=baseline)
    return Candidate(
        path=out_dir,
        training_loss=float(fit.history["loss"][-1]),
        training_accuracy_percent=float(fit.history["accuracy"][-1] * 100.0),
        seconds=time.monotonic() - start,
        baseline=baseline,
    )


def _warmup(schema: Schema, split: Split):
    text = None if split.text_train is None else split.text_train[:8]
    return split.x_train[:8] if schema.packed else preprocessing.feeds(schema, split.x_train[:8], text)


def _train_number(train: TrainConfig, split: Split, out_dir: Path, encoder, x_train, module: Path | None,
                  start: float) -> Candidate:
    """A number label: one linear unit on the normalised label, exported answering in its own units."""
    scale = number.label_scale(split.y_train)
    if module is None:
        keras_model = number.build(train.learning_rate, train.seed, encoder.input_dim)
    else:
        model.seed(train.seed)
        keras_model = build_user_model(module, encoder.input_dim, 1, train.params)
        number.compile_for(keras_model, train.learning_rate)
    y = (split.y_train - scale[0]) / scale[1]
    fit = keras_model.fit(x_train, y, epochs=train.epochs, batch_size=train.batch_size, shuffle=True, verbose=0)
    baseline = explain.baseline_row(encoder.schema, split.x_train, split.text_train)
    model.export(keras_model, out_dir, warmup_rows=_warmup(encoder.schema, split), encoder=encoder,
                 baseline=baseline, label_scale=scale)
    # no accuracy for a quantity: the record keeps the normalised loss (NaN stands for "not a class label")
    return Candidate(out_dir, float(fit.history["loss"][-1]), float("nan"), time.monotonic() - start, baseline)
