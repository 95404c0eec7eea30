"""The dataset a retrain uses: the newest accepted batches within ``data.window``, de-duplicated.

Its cost stays bounded as data accumulates; the window counts distinct rows, so a batch of copies
cannot push the older data out.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from modelops.core.config import Config
from modelops.core.errors import DataError
from modelops.trainer.data.cache import batch_rows
from modelops.trainer.data.csv_rows import expected_columns
from modelops.trainer.data.layout import accepted_dir, incoming_dir, quarantine_dir
from modelops.trainer.data.tables import Batch, Dataset


def load_dataset(config: Config) -> Dataset:
    """The newest accepted batches within ``data.window``, de-duplicated, with a fingerprint of their content.

    The window counts distinct rows, so a batch of copies cannot push the older data out.
    """
    files = sorted(accepted_dir(config).glob("*.csv"), key=lambda p: (p.stat().st_mtime_ns, p.name), reverse=True)
    if not files and not config.schema.is_demo:
        quarantined = sorted(p.name for p in quarantine_dir(config).glob("*.csv")) if quarantine_dir(config).is_dir() \
            else []
        if quarantined:  # batches were dropped: "no data yet" would send the user looking in the wrong place
            raise DataError(f"no accepted data: every batch was quarantined ({len(quarantined)} in "
                            f"{quarantine_dir(config)}, e.g. {quarantined[0]}; each has a .reason.txt saying why); "
                            f"fix them and drop them into {incoming_dir(config)} again")
        raise DataError(f"no data yet: drop CSV batches with the columns {expected_columns(config.schema)} into "
                        f"{incoming_dir(config)} (synthetic data exists for the demo schema only)")
    if not files:
        raise DataError(f"no accepted data in {accepted_dir(config)}")
    window, used = config.data.window, dict[str, Batch]()
    raw_rows = distinct_rows = 0
    for path in files[:window.max_batches]:
        rows = batch_rows(config, path)
        distinct = _distinct(rows)
        if used and distinct_rows + len(distinct) > window.max_rows:
            break
        used[path.name] = distinct
        raw_rows, distinct_rows = raw_rows + len(rows), distinct_rows + len(distinct)
    left_out = tuple(sorted(p.name for p in files if p.name not in used))
    return _assemble(used, left_out, raw_rows)


def load_batches(config: Config, names: list[str]) -> Dataset:
    """The dataset of exactly these accepted batches (a version's lineage names them), window aside.

    DataError names a batch that is no longer in ``data/accepted/``.
    """
    missing = [name for name in names if Path(name).name != name or not (accepted_dir(config) / name).is_file()]
    if missing or not names:
        raise DataError(f"batch(es) {', '.join(missing) or '(none named)'} no longer in {accepted_dir(config)}")
    used, raw_rows = dict[str, Batch](), 0
    for name in names:
        rows = batch_rows(config, accepted_dir(config) / name)
        used[name], raw_rows = _distinct(rows), raw_rows + len(rows)
    return _assemble(used, (), raw_rows)


def _assemble(used: dict[str, Batch], left_out: tuple[str, ...], raw_rows: int) -> Dataset:
    """One de-duplicated dataset from distinct rows per batch, in batch name order, fingerprinted."""
    names = sorted(used)
    digest = hashlib.sha256()
    for name in names:
        digest.update(hashlib.sha256(used[name].numbers.tobytes() + used[name].text.tobytes()).digest())
    unique = _distinct(Batch(np.concatenate([used[name].numbers for name in names]),
                             np.concatenate([used[name].text for name in names])))
    return Dataset(np.ascontiguousarray(unique.numbers[:, :-1]), np.ascontiguousarray(unique.numbers[:, -1]),
                   digest.hexdigest()[:16], tuple(names), left_out, raw_rows - len(unique),
                   unique.text if unique.text.shape[1] else None)


def _distinct(rows: Batch) -> Batch:
    """The rows without copies, first occurrences in their order (training is seeded on the row order)."""
    if not rows.text.shape[1]:
        _, first = np.unique(rows.numbers, axis=0, return_index=True)
    else:
        seen: dict[bytes, int] = {}
        for i, key in enumerate(row_keys(rows.numbers, rows.text)):
            seen.setdefault(key, i)
        first = np.fromiter(seen.values(), dtype=np.int64, count=len(seen))
    keep = np.sort(first)
    return Batch(rows.numbers[keep], rows.text[keep])


def row_keys(numbers: np.ndarray, text: np.ndarray) -> list[bytes]:
    """Each row's identity: its float32 bytes, then its text cells."""
    raw = np.ascontiguousarray(numbers, dtype=np.float32).tobytes()
    width = numbers.shape[1] * 4
    keys = [raw[i * width:(i + 1) * width] for i in range(len(numbers))]
    if text.shape[1]:
        keys = [key + "\x1f".join(cells).encode() for key, cells in zip(keys, text.tolist(), strict=True)]
    return keys
