"""What made a version: code, library versions, config, data, seed and parent (``metrics.json`` ``lineage``).

Recorded by the trainer for every candidate, promoted or rejected, so a version can be explained
and retrained (``retrain_pipeline.py reproduce N``). A copy of the exact config file the run read
is kept with the version (``config.json`` next to its ``metrics.json``); ``config_sha256`` is its
hash. ``eval_fingerprint`` names the eval rows the gate used, so a reproduction can show that it
was graded on the same rows. Reading and comparing lineage needs neither TensorFlow nor numpy;
collecting it does, so that half lives in the trainer (``modelops.trainer.lineage``).
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from modelops import __version__
from modelops.core.paths import REPO_ROOT

if TYPE_CHECKING:
    from modelops.core.config import Config

CONFIG_COPY = "config.json"
# The keys ``compare`` and ``status`` show, in this order.
KEYS = ("code_version", "python", "tensorflow", "keras", "numpy", "config_sha256", "train_module_sha256",
        "dataset_fingerprint", "dataset_files", "eval_fingerprint", "seed", "parent_version")


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


def code_version() -> dict:
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


def describe_code(code) -> str:
    """``git 1a2b3c4d (dirty)`` / ``package 0.1.0`` for one line of text."""
    if isinstance(code, dict) and code.get("git_commit"):
        return f"git {str(code['git_commit'])[:10]}{' (dirty)' if code.get('dirty') else ''}"
    if isinstance(code, dict) and code.get("package"):
        return f"package {code['package']}"
    return "unknown"


def summary(lineage) -> str:
    """One line: code, library versions, data and parent, for ``status``."""
    if not isinstance(lineage, dict):
        return "no lineage recorded"
    parent = lineage.get("parent_version")
    return (f"{describe_code(lineage.get('code_version'))}, tensorflow {lineage.get('tensorflow', '?')}, "
            f"data {lineage.get('dataset_fingerprint', '?')}, seed {lineage.get('seed', '?')}, "
            f"parent {'v' + str(parent) if parent is not None else 'none'}")


def rows(lineage) -> list[tuple[str, str]]:
    """``(label, text)`` per lineage entry, for the model page; empty when there is none."""
    if not isinstance(lineage, dict):
        return []
    files = lineage.get("dataset_files")
    parent = lineage.get("parent_version")
    return [
        ("Code", describe_code(lineage.get("code_version"))),
        ("Libraries", ", ".join(f"{name} {lineage.get(key, '?')}" for name, key in
                                (("Python", "python"), ("TensorFlow", "tensorflow"), ("Keras", "keras"),
                                 ("NumPy", "numpy")))),
        ("Config sha256", str(lineage.get("config_sha256", "?"))),
        ("Data", f"fingerprint {lineage.get('dataset_fingerprint', '?')} of "
                 f"{', '.join(map(str, files)) if isinstance(files, list) else '?'}"),
        ("Eval rows", f"fingerprint {lineage.get('eval_fingerprint', '?')}"),
        ("Seed", str(lineage.get("seed", "?"))),
        ("Parent", f"version {parent}" if parent is not None else "none (first model)"),
    ]


def differences(a, b) -> list[dict]:
    """Where two lineages differ: ``[{"key", "a", "b"}]`` in ``KEYS`` order (a missing lineage is None)."""
    a, b = (x if isinstance(x, dict) else {} for x in (a, b))
    return [{"key": key, "a": a.get(key), "b": b.get(key)} for key in KEYS if a.get(key) != b.get(key)]
