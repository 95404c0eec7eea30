"""The keyed split: a keyed hash of each row's values decides its side.

A row's side never changes between runs, the champion is never evaluated on rows the candidate
trained on, and without the per-installation key (``runs/split.key``) no batch can choose its side.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from pathlib import Path

import numpy as np

from modelops.core.config import Config
from modelops.core.errors import DataError
from modelops.trainer.data.tables import Dataset, Split, no_text
from modelops.trainer.data.windowed import row_keys

KEY_BYTES = 32


def split(dataset: Dataset, eval_percent: float, key: bytes) -> Split:
    """A keyed hash of each row's values decides its side: the same in every run, unknowable without the key."""
    text = no_text(len(dataset)) if dataset.text is None else dataset.text
    rows = row_keys(np.column_stack([dataset.x, dataset.y]), text)
    cut = eval_percent * 100
    keyed = hashlib.blake2b(key=key, digest_size=8)

    def bucket(row: bytes) -> int:
        h = keyed.copy()
        h.update(row)
        return int.from_bytes(h.digest(), "big") % 10_000

    mask = np.fromiter((bucket(row) < cut for row in rows), dtype=bool, count=len(dataset))
    texts = (None, None) if dataset.text is None else (dataset.text[~mask], dataset.text[mask])
    return Split(dataset.x[~mask], dataset.y[~mask], dataset.x[mask], dataset.y[mask], *texts)


def split_key(config: Config) -> bytes:
    """This installation's split key, from ``runs/split.key``; drawn once (mode 0600) when absent."""
    path = config.split_key_path
    key = _read_split_key(path)
    if key is None:
        _new_split_key(path)
        key = _read_split_key(path)
    if key is None:
        raise DataError(f"the split key {path} vanished right after it was written; check what else writes runs/")
    return key


def _read_split_key(path: Path) -> bytes | None:
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the split key {path}: {exc}; make it readable by the trainer, or restore it "
                        "from your backup (it decides which rows grade every model)") from None
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise DataError(f"the split key {path} is damaged (expected {2 * KEY_BYTES} hex digits): restore it from "
                        "your backup, or delete it to draw a new one (rows then change sides once)")
    return key


def _new_split_key(path: Path) -> None:
    """Write a fresh key under a temp name, then link it into place: a crash never leaves half a key,
    and a key that another process linked first is kept."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with open(fd, "w", encoding="ascii") as fh:
            fh.write(secrets.token_bytes(KEY_BYTES).hex() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
