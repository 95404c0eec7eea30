"""The user's own model (``train.module``): imported, built and checked before any training.

The module defines ``build_model(input_dim, num_classes, params)`` returning a Keras model from
the encoded rows, float32 ``[None, input_dim]``, to probabilities ``[None, num_classes]`` (two
classes: ``[None, 1]`` sigmoid also accepted); ``params`` is ``train.params``. Whatever goes wrong
fails the run with a message naming the module and the error; the pipeline then publishes nothing.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import keras
import numpy as np

from modelops.core.errors import UserModelError


def build_user_model(path: Path, input_dim: int, num_classes: int, params: dict) -> keras.Model:
    """The module's model, checked to take ``[None, input_dim]`` and answer one of the accepted shapes."""
    where = f"train.module {path}"
    build = getattr(_import(path, where), "build_model", None)
    if not callable(build):
        raise UserModelError(f"{where} defines no build_model(input_dim, num_classes, params)")
    try:
        model = build(input_dim, num_classes, dict(params))
    except Exception as exc:
        raise UserModelError(f"{where}: build_model raised {type(exc).__name__}: {exc}") from None
    if not isinstance(model, keras.Model):
        raise UserModelError(f"{where}: build_model returned {type(model).__name__}, not a Keras model")
    try:
        answer = np.asarray(model(np.zeros((2, input_dim), dtype=np.float32), training=False))
    except Exception as exc:
        raise UserModelError(f"{where}: the model cannot take the encoded rows, float32 [None, {input_dim}]: "
                             f"{type(exc).__name__}: {exc}") from None
    accepted = [[None, num_classes]] + ([[None, 1]] if num_classes == 2 else [])
    if answer.ndim != 2 or [None, answer.shape[1]] not in accepted:
        raise UserModelError(f"{where}: the model answers shape {[None, *answer.shape[1:]]}, expected "
                             f"{' or '.join(map(str, accepted))} (probabilities per class)")
    return model


def _import(path: Path, where: str):
    if not path.is_file():
        raise UserModelError(f"{where}: no such file (the path is relative to config.json)")
    try:
        spec = importlib.util.spec_from_file_location(f"modelops_train_module_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except Exception as exc:
        raise UserModelError(f"{where} does not import: {type(exc).__name__}: {exc}") from None
    return module
