"""What made a version: code, library versions, config, data, seed and parent (``metrics.json`` ``lineage``).

Recorded by the trainer for every candidate, promoted or rejected, so a version can be explained
and retrained (``retrain_pipeline.py reproduce N``). A copy of the exact config file the run read
is kept with the version (``config.json`` next to its ``metrics.json``); ``config_sha256`` is its
hash. ``eval_fingerprint`` names the eval rows the gate used, so a reproduction can show that it
was graded on the same rows. Reading the record is modelops.core.lineage's job.
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from modelops import __version__
from modelops.core.config import Config
from modelops.core.lineage import CONFIG_COPY
from modelops.core.paths import REPO_ROOT
from modelops.trainer.data.tables import Dataset, Split


def collect(config: Config, dataset: Dataset, split: Split, parent_version: int | None) -> dict[str, Any]:
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


def environment() -> dict[str, Any]:
    """The code and library versions this process runs. TensorFlow is imported here, not at the top:
    only a training run needs it, and ``status`` and the other read-only commands load this module."""
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


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def module_sha256(config: Config) -> str | None:
    """The sha256 of the user's model file (``train.module``), None for the built-in MLP: the config
    copy names the file, this says whether it is still the same code."""
    path = config.train_module_path
    return None if path is None else hashlib.sha256(path.read_bytes()).hexdigest()


def keep_config(config: Config, directory: Path) -> None:
    """Keep the exact config text the run read with the candidate (it moves with it when published)."""
    (directory / CONFIG_COPY).write_text(config.source_text, encoding="utf-8")


def code_version() -> dict[str, Any]:
    """``{"git_commit", "dirty"}`` in a git checkout, else ``{"package": version}`` (an image has no .git)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()

    if (REPO_ROOT / ".git").exists():
        try:
            commit = git("rev-parse", "HEAD")
            dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
            return {"git_commit": commit, "dirty": dirty}
        except (OSError, subprocess.SubprocessError):
            pass  # no git binary, or not a repository after all
    return {"package": __version__}


