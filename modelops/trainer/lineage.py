"""The half of a version's lineage only the trainer can measure: the libraries it trains with and
the eval rows it split off. Reading and comparing lineage is ``modelops.core.lineage`` (the frontend
shows it without TensorFlow or numpy)."""

from __future__ import annotations

import hashlib
import platform
from typing import TYPE_CHECKING

import numpy as np

from modelops.core.lineage import code_version, module_sha256, sha256

if TYPE_CHECKING:
    from modelops.core.config import Config
    from modelops.trainer.data.dataset import Dataset, Split


def collect(config: Config, dataset: Dataset, split: Split, parent_version: int | None) -> dict:
    """The lineage of a candidate trained in this process from ``dataset`` with ``config``."""
    return {
        **environment(),
        "config_sha256": sha256(config.source_text),
        "train_module_sha256": module_sha256(config),
        "dataset_fingerprint": dataset.fingerprint,
        "dataset_files": list(dataset.files),
        "eval_fingerprint": eval_fingerprint(split),
        "seed": config.train.seed,
        "parent_version": parent_version,
    }


def environment() -> dict:
    """The code and library versions this process runs (imports TensorFlow: only a training run
    needs it, and ``retrain_pipeline.py status`` and the other read-only commands load this module)."""
    import keras
    import tensorflow as tf

    return {"code_version": code_version(), "python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": np.__version__}


def eval_fingerprint(split: Split) -> str:
    """A short hash of the eval rows (numbers, then any category text) and their labels, in order."""
    digest = hashlib.sha256(np.ascontiguousarray(split.x_eval, dtype=np.float32).tobytes())
    digest.update(np.ascontiguousarray(split.y_eval, dtype=np.float32).tobytes())
    if split.text_eval is not None:
        digest.update("\x1e".join("\x1f".join(row) for row in split.text_eval.tolist()).encode())
    return digest.hexdigest()[:16]
