"""How a version's lineage (``metrics.json`` ``lineage``) reads: on ``status``, the model page and in
``compare``. The trainer records it (modelops.trainer.lineage); reading and comparing needs neither
TensorFlow nor numpy, so the frontend shows it too.
"""

from __future__ import annotations

from typing import Any

CONFIG_COPY = "config.json"
# The keys ``compare`` and ``status`` show, in this order.
KEYS = ("code_version", "python", "tensorflow", "keras", "numpy", "config_sha256", "train_module_sha256",
        "dataset_fingerprint", "dataset_files", "eval_fingerprint", "seed", "parent_version")


def describe_code(code: Any) -> str:
    """``git 1a2b3c4d (dirty)`` / ``package 0.1.0`` for one line of text."""
    if isinstance(code, dict) and code.get("git_commit"):
        return f"git {str(code['git_commit'])[:10]}{' (dirty)' if code.get('dirty') else ''}"
    if isinstance(code, dict) and code.get("package"):
        return f"package {code['package']}"
    return "unknown"


def summary(lineage: Any) -> str:
    """One line: code, library versions, data and parent, for ``status``."""
    if not isinstance(lineage, dict):
        return "no lineage recorded"
    parent = lineage.get("parent_version")
    return (f"{describe_code(lineage.get('code_version'))}, tensorflow {lineage.get('tensorflow', '?')}, "
            f"data {lineage.get('dataset_fingerprint', '?')}, seed {lineage.get('seed', '?')}, "
            f"parent {'v' + str(parent) if parent is not None else 'none'}")


def rows(lineage: Any) -> list[tuple[str, str]]:
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


def differences(a: Any, b: Any) -> list[dict[str, Any]]:
    """Where two lineages differ: ``[{"key", "a", "b"}]`` in ``KEYS`` order (a missing lineage is None)."""
    a, b = (x if isinstance(x, dict) else {} for x in (a, b))
    return [{"key": key, "a": a.get(key), "b": b.get(key)} for key in KEYS if a.get(key) != b.get(key)]
