"""Where the checkout is: ``config.json``, ``templates/``, ``static/`` and the entry scripts live
at the repository root, next to the ``modelops`` package."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
