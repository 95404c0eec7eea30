"""``retrain_pipeline.py add-batch``: bring a CSV batch into ``data/incoming/`` by the hand-off rules.

The way in that works where the inbox is out of reach: under Docker Compose ``data/`` lives in the
trainer's volume, and ``docker compose exec -T trainer python retrain_pipeline.py add-batch --name
week-01.csv - < week-01.csv`` streams the file in (compose 1.29 has no ``cp``). The copy is written
under a ``.partial`` name, flushed, then renamed, so ingest never judges half a batch; a name
already taken gets a numbered one, so no earlier batch is overwritten. Nothing is validated here:
the next retrain judges the batch as any other (accepted, or quarantined with a reason).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from modelops.core.config import Config
from modelops.core.errors import UsageError
from modelops.trainer.data.layout import free_name, incoming_dir

CHUNK = 1024 * 1024


def add_batches(config: Config, files: Sequence[str], name: str | None) -> list[str]:
    """Copy each file (``-``: standard input, named by ``name``) into the inbox; a line for each."""
    if "-" in files and (len(files) > 1 or not name):
        raise UsageError("add-batch -: give the batch's name with --name NAME.csv (and no other file)")
    if name and files != ["-"] and len(files) > 1:
        raise UsageError("add-batch: --name renames one file; give one FILE with it")
    lines = []
    for file in files:
        batch_name = _checked_name(name or Path(file).name)
        if file == "-":
            target = add_batch(config, sys.stdin.buffer, batch_name)
        else:
            try:
                with open(file, "rb") as source:
                    target = add_batch(config, source, batch_name)
            except FileNotFoundError:
                raise UsageError(f"add-batch: {file}: no such file") from None
            except IsADirectoryError:
                raise UsageError(f"add-batch: {file} is a directory: give the CSV files themselves") from None
        lines.append(f"{file} -> {target}: the next retrain judges it (accepted into {config.data_dir / 'accepted'}/, "
                     f"or quarantined in {config.data_dir / 'quarantine'}/ with a reason)")
    return lines


def add_batch(config: Config, source: BinaryIO, name: str) -> Path:
    """Stream ``source`` into ``incoming/<name>``: ``.partial`` first, then one rename. Bounded by
    ``data.max_batch_bytes``, which ingest would enforce anyway."""
    inbox = incoming_dir(config)
    inbox.mkdir(parents=True, exist_ok=True)
    target = free_name(inbox, name)
    partial = target.with_name(target.name + ".partial")
    limit = config.data.max_batch_bytes
    try:
        with open(partial, "xb") as out:
            copied = 0
            while chunk := source.read(CHUNK):
                copied += len(chunk)
                if copied > limit:
                    raise UsageError(f"add-batch: {name} is over data.max_batch_bytes ({limit} bytes): "
                                     "split it into smaller batches (or raise the limit)")
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, target)
    except FileExistsError:
        raise UsageError(f"add-batch: {partial} exists: another add-batch is writing {name}; "
                         "wait for it, or remove the .partial file if none is") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise
    return target


def _checked_name(name: str) -> str:
    """A plain ``*.csv`` file name: no folder, not hidden, not a hand-off name ingest skips."""
    if not name or name != Path(name).name or name.startswith(".") or not name.lower().endswith(".csv"):
        raise UsageError(f"add-batch: {name!r} is not a batch name: give a plain file name ending in .csv "
                         "(no folder, not starting with a dot)")
    return name


