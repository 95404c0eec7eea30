"""The trainer's file modes: what it writes is private to its user and group (0640 files, 0750 folders).

Everything under ``models/``, ``runs/`` and ``data/`` is readable by the services that share the
trainer's group (the frontend and, in Kubernetes, TF Serving run as uid/gid 10001 like the
trainer; the stock TF Serving image in compose runs as root) and by no other local user.
``MODELOPS_UMASK`` (octal, default ``027``) changes it; ``022`` gives back world-readable files.
Applied once at each trainer entry point (``retrain_pipeline.py``/``train_tf.py`` and the trainer
service), so every file the process and its children create follows it; modes set on purpose
(the split key, 0600) stay as they are.
"""

from __future__ import annotations

import os

from modelops.core.errors import UsageError

ENV = "MODELOPS_UMASK"
DEFAULT_UMASK = 0o027


def umask_from_env(environ: dict[str, str] | os._Environ[str] = os.environ) -> int:
    """The umask ``MODELOPS_UMASK`` asks for; a value that is not octal 000-777 names the variable."""
    text = environ.get(ENV, "").strip()
    if not text:
        return DEFAULT_UMASK
    try:
        value = int(text, 8)
    except ValueError:
        value = -1
    if not 0 <= value <= 0o777:
        raise UsageError(f"{ENV}={text!r} is not a umask: give three octal digits such as 027 or 022")
    return value


def apply_umask() -> int:
    """Set the process umask from ``MODELOPS_UMASK``; returns the umask now in force."""
    value = umask_from_env()
    os.umask(value)
    return value
