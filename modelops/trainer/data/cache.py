"""The compact ``.npy`` copy of each accepted batch in ``data/cache/``: later runs need not parse it again."""

from __future__ import annotations

import contextlib
import glob
import os
from pathlib import Path

import numpy as np

from modelops.core.config import Config
from modelops.core.errors import DataError
from modelops.trainer.data.csv_rows import read_rows
from modelops.trainer.data.layout import cache_dir
from modelops.trainer.data.tables import Batch, no_text


def _cache_path(config: Config, batch: Path) -> Path:
    """The cached copy's name carries the batch's size and mtime and the schema's digest: an edited
    batch, or one read under a changed schema, is parsed again."""
    st = batch.stat()
    return cache_dir(config) / f"{batch.name}.{st.st_size}-{st.st_mtime_ns}-{config.schema.fingerprint()}.npy"


def _text_path(numbers: Path) -> Path:
    return numbers.with_name(numbers.name.removesuffix(".npy") + ".text.npy")


def store(config: Config, batch: Path, rows: Batch) -> None:
    """Best effort: without its cached copy (disk full?) a batch is parsed again when loaded.

    The text matrix (category features only) is written first: the numbers file marks the copy complete."""
    path = _cache_path(config, batch)
    targets = ([(_text_path(path), rows.text)] if rows.text.shape[1] else []) + [(path, rows.numbers)]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.glob(f"{glob.escape(batch.name)}.*.npy"):
            stale.unlink(missing_ok=True)
        for target, array in targets:
            tmp = target.with_name(f".{target.name}.tmp")
            try:
                with tmp.open("wb") as fh:
                    np.save(fh, array)
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
    except OSError:
        pass


def _load(config: Config, path: Path) -> Batch | None:
    schema = config.schema
    with contextlib.suppress(OSError, ValueError):
        numbers = np.load(path, mmap_mode="r", allow_pickle=False)
        text = np.load(_text_path(path), allow_pickle=False) if schema.categories else no_text(len(numbers))
        if (numbers.dtype == np.float32 and numbers.shape[1:] == (len(schema.numeric) + 1,)
                and text.shape == (len(numbers), len(schema.categories))):
            return Batch(numbers, text)
    return None


def batch_rows(config: Config, batch: Path) -> Batch:
    """An accepted batch's rows: from its cached copy, else parsed (and cached)."""
    cached = _load(config, _cache_path(config, batch))
    if cached is not None:
        return cached
    try:
        with batch.open("rb") as raw:
            rows = read_rows(raw, config.data, config.schema)
    except (DataError, OSError) as exc:
        raise DataError(f"accepted batch {batch.name} no longer validates: {exc}; "
                        f"move it out of {batch.parent}/ and fix it") from None
    store(config, batch, rows)
    return rows
