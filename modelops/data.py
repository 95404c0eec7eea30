"""Ingest, validate, split and fingerprint the training data.

CSV batches (``x1,x2,label``) dropped into ``data/incoming/`` are checked one file at a time.
A good batch moves to ``data/accepted/`` and stays part of the dataset for good; a bad one moves
to ``data/quarantine/`` next to a ``.reason.txt`` saying what was wrong, and the run goes on with
the good data. With no data at all a seeded synthetic bootstrap batch is written, so the demo
works on a fresh clone.

The train/eval split hashes each row's values, so a row's side never changes between runs and
the champion is never evaluated on rows the candidate trained on.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modelops.config import Config, DataConfig
from modelops.errors import DataError
from modelops.timestamps import local_compact

COLUMNS = ("x1", "x2", "label")
BOUNDARY = 1.0  # ground truth of the synthetic task: label = 1 when x1 + x2 > BOUNDARY
MAX_REASONS = 5


@dataclass(frozen=True)
class Dataset:
    x: np.ndarray  # float32, shape [n, 2]
    y: np.ndarray  # float32, shape [n], values 0.0 / 1.0
    fingerprint: str
    files: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class Split:
    x_train: np.ndarray
    y_train: np.ndarray
    x_eval: np.ndarray
    y_eval: np.ndarray


@dataclass(frozen=True)
class IngestReport:
    accepted: tuple[str, ...]
    quarantined: tuple[tuple[str, str], ...]  # (file name, reason)
    rows_accepted: int
    bootstrapped: bool


def incoming_dir(config: Config) -> Path:
    return config.data_dir / "incoming"


def accepted_dir(config: Config) -> Path:
    return config.data_dir / "accepted"


def quarantine_dir(config: Config) -> Path:
    return config.data_dir / "quarantine"


def parse_batch(content: bytes, limits: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    """Parse one CSV batch; raise DataError listing what is wrong (first few rows)."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError("not UTF-8 text (binary file?)") from None
    if "\x00" in text:
        raise DataError("contains NUL bytes (binary file?)")
    rows = list(csv.reader(io.StringIO(text)))
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise DataError("empty file: expected a header 'x1,x2,label' and at least one row")
    header = tuple(cell.strip().lower() for cell in rows[0])
    if sorted(header) != sorted(COLUMNS) or len(header) != len(COLUMNS):
        raise DataError(f"header must be the columns x1,x2,label (any order), got {','.join(header) or 'nothing'}")
    order = [header.index(c) for c in COLUMNS]
    body = rows[1:]
    if not limits.min_batch_rows <= len(body) <= limits.max_batch_rows:
        raise DataError(
            f"{len(body)} data rows; a batch needs between {limits.min_batch_rows} and {limits.max_batch_rows}"
        )
    values, problems = [], []
    for line, row in enumerate(body, start=2):
        try:
            values.append(_parse_row(row, order, limits.max_abs_feature))
        except ValueError as exc:
            problems.append(f"line {line}: {exc}")
    if problems:
        more = f" (and {len(problems) - MAX_REASONS} more)" if len(problems) > MAX_REASONS else ""
        raise DataError("; ".join(problems[:MAX_REASONS]) + more)
    arr = np.asarray(values, dtype=np.float64)
    return arr[:, :2].astype(np.float32), arr[:, 2].astype(np.float32)


def _parse_row(row: list[str], order: list[int], max_abs: float) -> tuple[float, float, float]:
    if len(row) != len(COLUMNS):
        raise ValueError(f"expected 3 fields, got {len(row)}")
    x1, x2, label = (row[i].strip() for i in order)
    features = []
    for name, cell in (("x1", x1), ("x2", x2)):
        try:
            value = float(cell)
        except ValueError:
            raise ValueError(f"{name} is not a number: {cell[:40]!r}") from None
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {cell!r}")
        if abs(value) > max_abs:
            raise ValueError(f"{name}={value} is outside [-{max_abs}, {max_abs}] (data.max_abs_feature)")
        features.append(value)
    if label not in ("0", "1"):
        raise ValueError(f"label must be 0 or 1, got {label[:40]!r}")
    return features[0], features[1], float(label)


def ingest(config: Config) -> IngestReport:
    """Validate every batch in ``incoming/``: accept or quarantine it; bootstrap if no data."""
    inbox, accepted, quarantine = incoming_dir(config), accepted_dir(config), quarantine_dir(config)
    for d in (inbox, accepted, quarantine):
        d.mkdir(parents=True, exist_ok=True)
    good, bad, rows = [], [], 0
    for path in sorted(p for p in inbox.iterdir() if p.is_file() and not p.name.startswith(".")):
        try:
            if path.suffix.lower() != ".csv":
                raise DataError("not a .csv file")
            _, y = parse_batch(path.read_bytes(), config.data)
        except DataError as exc:
            target = _free_name(quarantine, path.name)
            os.replace(path, target)
            target.with_name(target.name + ".reason.txt").write_text(f"{exc}\n", encoding="utf-8")
            bad.append((path.name, str(exc)))
            continue
        os.replace(path, _free_name(accepted, path.name))
        good.append(path.name)
        rows += len(y)
    bootstrapped = False
    if not any(accepted.glob("*.csv")):
        write_batch(accepted / "bootstrap.csv", *synthetic(config.data.bootstrap_rows, seed=config.train.seed))
        bootstrapped = True
    return IngestReport(tuple(good), tuple(bad), rows, bootstrapped)


def _free_name(directory: Path, name: str) -> Path:
    """A path in ``directory`` for ``name`` that does not overwrite an earlier batch."""
    target = directory / name
    stem, suffix = os.path.splitext(name)
    n = 1
    while target.exists():
        target = directory / f"{stem}.{n}{suffix}"
        n += 1
    return target


def load_dataset(config: Config) -> Dataset:
    """All accepted batches, in file-name order, with a fingerprint of their content."""
    files = sorted(accepted_dir(config).glob("*.csv"))
    if not files:
        raise DataError(f"no accepted data in {accepted_dir(config)}")
    xs, ys, digest = [], [], hashlib.sha256()
    for path in files:
        content = path.read_bytes()
        try:
            x, y = parse_batch(content, config.data)
        except DataError as exc:
            raise DataError(f"accepted batch {path.name} no longer validates: {exc}") from None
        xs.append(x)
        ys.append(y)
        digest.update(hashlib.sha256(content).digest())
    return Dataset(np.concatenate(xs), np.concatenate(ys), digest.hexdigest()[:16], tuple(p.name for p in files))


def split(dataset: Dataset, eval_percent: float) -> Split:
    """Hash each row's values: the same row lands on the same side in every run."""
    mask = np.fromiter(
        (_row_bucket(x, y) < eval_percent * 100 for x, y in zip(dataset.x, dataset.y, strict=True)),
        dtype=bool,
        count=len(dataset),
    )
    return Split(dataset.x[~mask], dataset.y[~mask], dataset.x[mask], dataset.y[mask])


def _row_bucket(x: np.ndarray, y: float) -> int:
    key = np.asarray([x[0], x[1], y], dtype=np.float32).tobytes()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") % 10_000


def synthetic(rows: int, seed: int, noise: float = 0.0, shift: float = 0.0, base_noise: float = 0.005):
    """Rows of the demo task: label = x1 + x2 > BOUNDARY + shift, a fraction of labels flipped.

    ``noise`` is the extra fraction of flipped labels on top of ``base_noise``; ``shift`` moves the
    decision boundary (concept drift).
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(0.5, 1.5, size=(rows, 2)).round(4).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > BOUNDARY + shift).astype(np.float32)
    flip = rng.random(rows) < min(1.0, base_noise + noise)
    y[flip] = 1.0 - y[flip]
    return x, y


def write_batch(path: Path, x: np.ndarray, y: np.ndarray) -> None:
    """Write a batch atomically (temp name, then rename) so no reader sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        writer.writerows((f"{a:.4f}", f"{b:.4f}", int(c)) for (a, b), c in zip(x.tolist(), y.tolist(), strict=True))
    os.replace(tmp, path)


def simulate(config: Config, rows: int, noise: float, shift: float, seed: int | None) -> Path:
    """Write a new synthetic batch into ``incoming/`` for the next retrain to pick up."""
    seed = seed if seed is not None else time.time_ns() % 2**31
    path = _free_name(incoming_dir(config), f"sim-{local_compact()}-seed{seed}.csv")
    write_batch(path, *synthetic(rows, seed=seed, noise=noise, shift=shift))
    return path
