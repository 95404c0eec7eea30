"""Fit a candidate and export it outside the served path. Only the gate publishes."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from modelops import model
from modelops.config import TrainConfig
from modelops.data import Split


@dataclass(frozen=True)
class Candidate:
    path: Path
    training_loss: float
    training_accuracy_percent: float
    seconds: float


def train_candidate(train: TrainConfig, split: Split, out_dir: Path) -> Candidate:
    """Train a seeded model on the training rows and export it as a SavedModel to ``out_dir``."""
    start = time.monotonic()
    keras_model = model.build(train.learning_rate, train.seed)
    fit = keras_model.fit(
        split.x_train, split.y_train, epochs=train.epochs, batch_size=train.batch_size, shuffle=True, verbose=0
    )
    model.export(keras_model, out_dir, warmup_rows=split.x_train[:8])
    return Candidate(
        path=out_dir,
        training_loss=float(fit.history["loss"][-1]),
        training_accuracy_percent=float(fit.history["accuracy"][-1] * 100.0),
        seconds=time.monotonic() - start,
    )
