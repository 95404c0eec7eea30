"""The demo's synthetic batches step aside when config.json declares another table.

A project that starts as the demo (``bootstrap.csv``, ``simulate``'s ``sim-*.csv``) and then declares
its own table would otherwise fail every run on rows of the old schema ("no longer validates").
Those batches were never the user's data: the first run on another schema moves them from
``data/accepted/`` to ``data/retired/`` (kept, not deleted) and its log says so once. A batch that
is not ours (another name, or another header) is never touched.
"""

from __future__ import annotations

import contextlib
import os
import re

from modelops.core.config import Config
from modelops.trainer.data.layout import accepted_dir, free_name
from modelops.trainer.data.synthetic import COLUMNS

OURS = re.compile(r"bootstrap(\.\d+)?\.csv|sim-[^/]*\.csv")  # the names ingest and simulate give them


def retire_demo_batches(config: Config) -> tuple[str, ...]:
    """Move the demo's synthetic batches out of the window unless the schema is the demo's; their names."""
    accepted = accepted_dir(config)
    if config.schema.is_demo or not accepted.is_dir():
        return ()
    moved = []
    for path in sorted(accepted.glob("*.csv")):
        if not OURS.fullmatch(path.name) or _header(path) != ",".join(COLUMNS):
            continue
        target_dir = config.data_dir / "retired"
        target_dir.mkdir(parents=True, exist_ok=True)
        os.replace(path, free_name(target_dir, path.name))
        moved.append(path.name)
    return tuple(moved)


def _header(path: os.PathLike[str]) -> str:
    with contextlib.suppress(OSError, UnicodeDecodeError), open(path, encoding="utf-8") as fh:
        return fh.readline(256).strip()
    return ""
