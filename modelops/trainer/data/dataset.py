"""Ingest, validate, window, de-duplicate and split the training data (docs/data.md).

CSV batches dropped into ``data/incoming/`` are checked one file at a time against the declared
schema (``modelops.core.schema``: columns by name in any order, other columns ignored, each value typed
by its feature), streamed, so memory stays bounded whatever the file. A good batch moves to ``data/accepted/``
(with a compact ``.npy`` copy in ``data/cache/`` so later runs need not parse it again); anything
else, whatever went wrong reading it, moves to ``data/quarantine/`` next to a ``.reason.txt``
saying what is wrong and how to fix it, and the run goes on with the good data: one bad file
never blocks the loop. Entries that are not regular files (symlinks, FIFOs, directories) are
never followed or opened. Hand-off names (``*.partial``, ``*.tmp``, dot files) are ignored, and a
file that changes while ingest looks at it is left for the next run. With no data at all a seeded
synthetic bootstrap batch is written for the demo schema, so the demo works on a fresh clone; any
other schema waits for real data.

In memory a batch is two matrices: numbers (float32, the numeric features in order, NaN for a
missing value, then the label's class index) and text (the category features, "" for missing).

A retrain uses the newest accepted batches only (``data.window``), so its cost stays bounded as
data accumulates. Rows are de-duplicated, then split by a keyed hash of their values: a row's
side never changes between runs, the champion is never evaluated on rows the candidate trained
on, and without the per-installation key (``runs/split.key``) no batch can choose its side.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import hashlib
import io
import math
import os
import secrets
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from modelops.core.config import Config, DataConfig
from modelops.core.errors import DataError, SchemaValueError, UsageError
from modelops.core.schema import DEMO_SCHEMA, Schema
from modelops.core.timestamps import local_compact

COLUMNS = ("x1", "x2", "label")  # the demo schema's synthetic batches
BOUNDARY = 1.0  # ground truth of the synthetic task: label = 1 when x1 + x2 > BOUNDARY
MAX_REASONS = 5
HANDOFF_SUFFIXES = (".partial", ".tmp")  # names still being written: never judged
RETRY = "fix it and move it back into data/incoming/ (the next run picks it up), or delete it"
KEY_BYTES = 32


def no_text(rows: int) -> np.ndarray:
    """The text matrix of a table without category features."""
    return np.empty((rows, 0), dtype=np.str_)


@dataclass(frozen=True)
class Batch:
    """One batch's rows: ``numbers`` float32 [n, numeric features + 1] (class index last), ``text`` str
    [n, category features]; ``ignored``: header columns the schema does not declare."""

    numbers: np.ndarray
    text: np.ndarray
    ignored: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.numbers)


@dataclass(frozen=True)
class Dataset:
    x: np.ndarray  # float32, shape [n, numeric features] (NaN = missing); no two rows (with their label) alike
    y: np.ndarray  # float32, shape [n]: the class index (the demo: 0.0 / 1.0)
    fingerprint: str
    files: tuple[str, ...]  # the batches in the window
    left_out: tuple[str, ...] = ()  # accepted batches outside the window
    duplicates: int = 0  # rows dropped as copies of another row
    text: np.ndarray | None = None  # str, shape [n, category features] ("" = missing); None: there are none

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class Split:
    x_train: np.ndarray
    y_train: np.ndarray
    x_eval: np.ndarray
    y_eval: np.ndarray
    text_train: np.ndarray | None = None
    text_eval: np.ndarray | None = None


def columns(schema: Schema, x: np.ndarray, text: np.ndarray | None) -> dict[str, np.ndarray]:
    """The rows as one column per feature, by name: float32, or str for categories (the named signature's inputs)."""
    text = no_text(len(x)) if text is None else text
    numeric = {f.name: np.asarray(x[:, i], dtype=np.float32) for i, f in enumerate(schema.numeric)}
    category = {f.name: np.asarray(text[:, i]) for i, f in enumerate(schema.categories)}
    return {name: numeric[name] if name in numeric else category[name] for name in schema.names}


def relayout(rows: Schema, target: Schema, x: np.ndarray, text: np.ndarray | None,
             ) -> tuple[np.ndarray, np.ndarray | None]:
    """Rows read with ``rows`` in the layout of ``target`` (a served model's own schema, whose features
    the rows hold: ``Schema.scoring_gap``): its numeric features, then its categories."""
    by_name = columns(rows, x, text)
    numbers = np.empty((len(x), 0), dtype=np.float32)
    if target.numeric:
        numbers = np.column_stack([by_name[f.name] for f in target.numeric]).astype(np.float32)
    texts = np.column_stack([by_name[f.name] for f in target.categories]) if target.categories else None
    return numbers, texts


def typed_rows(schema: Schema, x: np.ndarray, text: np.ndarray | None) -> list[dict[str, float | str | None]]:
    """The rows as typed values by feature name, None for missing (``Schema.instance_for_serving`` spells them)."""
    by_name = columns(schema, x, text)
    return [{f.name: _typed(f.numeric, by_name[f.name][i]) for f in schema.features} for i in range(len(x))]


def _typed(numeric: bool, value) -> float | str | None:
    if numeric:
        return None if math.isnan(value) else float(value)
    return str(value) or None


@dataclass(frozen=True)
class IngestReport:
    accepted: tuple[str, ...]
    quarantined: tuple[tuple[str, str], ...]  # (file name, reason)
    rows_accepted: int
    bootstrapped: bool
    waiting: tuple[str, ...] = ()  # still changing: left for the next run
    ignored: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (file name, its columns the schema does not declare)


def incoming_dir(config: Config) -> Path:
    return config.data_dir / "incoming"


def accepted_dir(config: Config) -> Path:
    return config.data_dir / "accepted"


def quarantine_dir(config: Config) -> Path:
    return config.data_dir / "quarantine"


def cache_dir(config: Config) -> Path:
    return config.data_dir / "cache"


def parse_batch(content: bytes, limits: DataConfig, schema: Schema = DEMO_SCHEMA) -> tuple[np.ndarray, np.ndarray]:
    """Parse one CSV batch held in memory into its numeric features and class indexes; raise DataError."""
    batch = read_rows(io.BytesIO(content), limits, schema)
    return batch.numbers[:, :-1], batch.numbers[:, -1]


def read_rows(raw: BinaryIO, limits: DataConfig, schema: Schema = DEMO_SCHEMA) -> Batch:
    """Stream one CSV batch into a :class:`Batch`, its columns found by name in any order.

    Raise DataError naming the line, the column and the value: the first few bad rows, or the
    first line that is not UTF-8 text or not CSV.
    """
    lines = _TextLines(raw, limits.max_batch_bytes)
    reader = csv.reader(lines)
    numbers: list[float] = []
    text: list[str] = []
    problems: list[str] = []
    bad, start, rows = 0, 1, 0
    try:
        header = None
        for row in reader:
            line, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = _Header(row, schema)
                continue
            if rows >= limits.max_batch_rows:
                raise DataError(f"more than {limits.max_batch_rows} data rows (data.max_batch_rows): "
                                "split it into several batches")
            try:
                row_numbers, row_text = header.parse(row, limits.max_abs_feature, line, reader.line_num)
            except ValueError as exc:
                bad += 1
                if len(problems) < MAX_REASONS:
                    problems.append(f"line {line}: {exc}")
                continue
            numbers.extend(row_numbers)
            text.extend(row_text)
            rows += 1
    except csv.Error as exc:
        raise DataError(_csv_problem(exc, start, reader.line_num)) from None
    if header is None:
        raise DataError(f"empty file: expected a header '{','.join(_wanted(schema))}' and at least one row")
    if problems:
        more = f" (and {bad - MAX_REASONS} more)" if bad > MAX_REASONS else ""
        raise DataError("; ".join(problems) + more)
    if not limits.min_batch_rows <= rows <= limits.max_batch_rows:
        raise DataError(f"{rows} data rows; a batch needs between {limits.min_batch_rows} and {limits.max_batch_rows}")
    width = len(schema.numeric) + 1
    return Batch(np.asarray(numbers, dtype=np.float64).reshape(rows, width).astype(np.float32),
                 np.asarray(text, dtype=np.str_).reshape(rows, len(schema.categories)), header.ignored)


def _wanted(schema: Schema) -> list[str]:
    return [*schema.names, schema.label.column]


class _Header:
    """Where each declared column sits in a batch (matched by name, any case, any order) and how a row is read."""

    def __init__(self, header_row: list[str], schema: Schema):
        header = [cell.strip() for cell in header_row]
        wanted = _wanted(schema)
        lower = [h.lower() for h in header]
        missing = [name for name in wanted if name.lower() not in lower]
        if missing:
            raise DataError(f"header must be the columns {','.join(wanted)} (any order; other columns are ignored), "
                            f"got {','.join(header)[:80]}: '{', '.join(missing)}' missing")
        twice = [name for name in wanted if lower.count(name.lower()) > 1]
        if twice:
            raise DataError(f"header names the column '{twice[0]}' more than once: keep one")
        self.schema, self.width = schema, len(header)
        self.numeric = [(f, lower.index(f.name.lower())) for f in schema.numeric]
        self.category = [(f, lower.index(f.name.lower())) for f in schema.categories]
        self.label = lower.index(schema.label.column.lower())
        declared = {name.lower() for name in wanted}
        self.ignored = tuple(h for h in header if h.lower() not in declared)

    def parse(self, row: list[str], max_abs: float, first: int, last: int) -> tuple[list[float], list[str]]:
        """One data row as its numbers (class index last) and its text cells; ValueError says what is wrong."""
        if first != last:
            raise ValueError(f"a quoted field runs over lines {first}-{last}: a stray '\"'? (numbers need no quotes)")
        if len(row) != self.width:
            raise ValueError(f"expected {self.width} fields, got {len(row)}")
        try:
            numbers = [self._number(f, row[i], max_abs) for f, i in self.numeric]
            text = [str(f.parse(row[i]) or "") for f, i in self.category]
            numbers.append(float(self.schema.label.index(row[self.label])))
        except SchemaValueError as exc:
            raise ValueError(str(exc)) from None
        return numbers, text

    @staticmethod
    def _number(feature, cell: str, max_abs: float) -> float:
        value = feature.parse(cell)
        if value is None:
            return math.nan
        if feature.min is None and feature.max is None and abs(value) > max_abs:
            raise ValueError(f"{feature.name}={value} is outside [-{max_abs}, {max_abs}] (data.max_abs_feature; "
                             f"declare features.{feature.name}.min/max for wider values)")
        return value


class _TextLines:
    """The lines of a byte stream as text, for csv: each checked for UTF-8, NUL bytes and the size cap."""

    def __init__(self, raw: BinaryIO, max_bytes: int):
        self.raw, self.max_bytes, self.line, self.size = raw, max_bytes, 0, 0

    def __iter__(self) -> Iterator[str]:
        while chunk := self.raw.readline(self.max_bytes + 1 - self.size):  # never reads past the cap
            self.line += 1
            self.size += len(chunk)
            if self.size > self.max_bytes:
                raise DataError(f"over data.max_batch_bytes ({self.max_bytes} bytes) at line {self.line}: "
                                "split it into smaller batches")
            try:
                text = chunk.decode("utf-8-sig" if self.line == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"line {self.line}: not UTF-8 text (binary file?): byte 0x{chunk[exc.start]:02x} "
                                "cannot be decoded; save it as UTF-8 CSV") from None
            if "\x00" in text:
                raise DataError(f"line {self.line}: contains NUL bytes (binary file?)")
            yield text


def _csv_problem(exc: csv.Error, start: int, line: int) -> str:
    if "field limit" in str(exc):
        return (f"line {start}: a field runs on for more than {csv.field_size_limit()} characters (to line {line}): "
                f"most likely a stray or unclosed '\"' on line {start} swallows the rows after it; "
                "remove the quote (numbers need none)")
    return f"line {line}: not valid CSV ({exc})"


def ingest(config: Config) -> IngestReport:
    """Judge every settled entry in ``incoming/``: accept or quarantine it; bootstrap if no data."""
    inbox, accepted, quarantine = incoming_dir(config), accepted_dir(config), quarantine_dir(config)
    for d in (inbox, accepted, quarantine):
        d.mkdir(parents=True, exist_ok=True)
    entries = _inbox_entries(inbox)
    waiting = _still_changing(entries, config.data.settle_seconds)
    good, bad, ignored, rows = [], [], [], 0
    for path, st in entries:
        if path.name in waiting:
            continue
        try:
            batch = _read_batch(path, st, config)
        except FileNotFoundError:
            continue  # taken away since the listing: nothing to judge
        except DataError as exc:
            bad.append((path.name, _quarantine(path, quarantine, str(exc))))
            continue
        try:
            _accept(config, path, batch)
        except OSError as exc:
            bad.append((path.name, _quarantine(path, quarantine, _os_problem("moving it to data/accepted/", exc))))
            continue
        good.append(path.name)
        rows += len(batch)
        if batch.ignored:
            ignored.append((path.name, batch.ignored))
    bootstrapped = False
    if config.schema.is_demo and not any(accepted.glob("*.csv")):
        x, y = synthetic(config.data.bootstrap_rows, seed=config.train.seed)
        write_batch(accepted / "bootstrap.csv", x, y)
        # cached at once, as an accepted batch is: our own rows are never judged by the limits for incoming files
        _cache_store(config, accepted / "bootstrap.csv", Batch(np.column_stack([x, y]), no_text(len(x))))
        bootstrapped = True
    return IngestReport(tuple(good), tuple(bad), rows, bootstrapped, tuple(sorted(waiting)), tuple(ignored))


def _accept(config: Config, path: Path, rows: Batch) -> None:
    target = _free_name(accepted_dir(config), path.name)
    os.replace(path, target)
    with contextlib.suppress(OSError):
        os.utime(target)  # the acceptance time: the window takes the newest batches
    _cache_store(config, target, rows)


def _inbox_entries(inbox: Path) -> list[tuple[Path, os.stat_result]]:
    """Every entry to judge, with its lstat (links are not followed); hand-off names are skipped."""
    entries = []
    for path in sorted(inbox.iterdir()):
        if path.name.startswith(".") or path.name.lower().endswith(HANDOFF_SUFFIXES):
            continue
        with contextlib.suppress(FileNotFoundError):
            entries.append((path, os.lstat(path)))
    return entries


def _still_changing(entries: list[tuple[Path, os.stat_result]], settle: float) -> set[str]:
    """Names of the files modified in the last ``settle`` seconds that change while we wait that long.

    One wait covers every fresh file (at most ``settle`` seconds); a file left here is judged by the
    next run, once its copy has finished.
    """
    now = time.time()
    fresh = [(p, st) for p, st in entries if stat.S_ISREG(st.st_mode) and now - st.st_mtime < settle]
    if not fresh:
        return set()
    time.sleep(min(settle, max(st.st_mtime for _, st in fresh) + settle - now))
    changing = set()
    for path, st in fresh:
        try:
            again = os.lstat(path)
        except FileNotFoundError:
            again = None
        if again is None or (again.st_ino, again.st_size, again.st_mtime_ns) != (st.st_ino, st.st_size, st.st_mtime_ns):
            changing.add(path.name)
    return changing


def _read_batch(path: Path, st: os.stat_result, config: Config) -> Batch:
    """Check the entry by its lstat, then open it without following links and parse it streaming."""
    limits = config.data
    _check_entry(path, st, limits)
    if path.suffix.lower() != ".csv":
        raise DataError("not a .csv file: batches are CSV files named *.csv")
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise DataError(_os_problem("cannot open it", exc)) from None
    with open(fd, "rb") as raw:
        _check_entry(path, os.fstat(raw.fileno()), limits)  # swapped for something else since the listing?
        try:
            return read_rows(raw, limits, config.schema)
        except OSError as exc:
            raise DataError(_os_problem("reading it failed", exc)) from None


def _check_entry(path: Path, st: os.stat_result, limits: DataConfig) -> None:
    if stat.S_ISLNK(st.st_mode):
        try:
            target = f" to {os.readlink(path)}"
        except OSError:
            target = ""
        raise DataError(f"a symbolic link{target}, not a file: links are never followed; "
                        "copy the file itself into data/incoming/")
    if stat.S_ISDIR(st.st_mode):
        raise DataError("a directory: put the CSV files themselves into data/incoming/")
    if not stat.S_ISREG(st.st_mode):
        kind = "a named pipe (FIFO)" if stat.S_ISFIFO(st.st_mode) else "a socket or device"
        raise DataError(f"{kind}, not a regular file: never opened; write the batch to a file")
    if st.st_size > limits.max_batch_bytes:
        raise DataError(f"{st.st_size} bytes, over data.max_batch_bytes ({limits.max_batch_bytes}): "
                        "split it into smaller batches (or raise the limit)")


def _os_problem(what: str, exc: OSError) -> str:
    hint = " (make it readable by the user the trainer runs as)" if isinstance(exc, PermissionError) else ""
    return f"{what}: {exc.strerror or exc}{hint}"


def _quarantine(path: Path, quarantine: Path, reason: str) -> str:
    """Move an entry (never following it) into quarantine next to its reason; return the reason."""
    target = _free_name(quarantine, path.name)
    try:
        os.replace(path, target)
    except OSError as exc:
        return f"{reason} (could not move it to {quarantine}: {exc.strerror or exc}; it stays in data/incoming/)"
    with contextlib.suppress(OSError):  # the reason is also in the run log and the notification
        target.with_name(target.name + ".reason.txt").write_text(
            f"{path.name}: {reason}\nTo use it: {RETRY}.\n", encoding="utf-8")
    return reason


def _free_name(directory: Path, name: str) -> Path:
    """A path in ``directory`` for ``name`` that does not overwrite an earlier batch (or a link)."""
    target = directory / name
    stem, suffix = os.path.splitext(name)
    n = 1
    while os.path.lexists(target):
        target = directory / f"{stem}.{n}{suffix}"
        n += 1
    return target


def _cache_path(config: Config, batch: Path) -> Path:
    """The cached copy's name carries the batch's size and mtime and the schema's digest: an edited
    batch, or one read under a changed schema, is parsed again."""
    st = batch.stat()
    return cache_dir(config) / f"{batch.name}.{st.st_size}-{st.st_mtime_ns}-{config.schema.fingerprint()}.npy"


def _text_path(numbers: Path) -> Path:
    return numbers.with_name(numbers.name.removesuffix(".npy") + ".text.npy")


def _cache_store(config: Config, batch: Path, rows: Batch) -> None:
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


def _cache_load(config: Config, path: Path) -> Batch | None:
    schema = config.schema
    with contextlib.suppress(OSError, ValueError):
        numbers = np.load(path, mmap_mode="r", allow_pickle=False)
        text = np.load(_text_path(path), allow_pickle=False) if schema.categories else no_text(len(numbers))
        if (numbers.dtype == np.float32 and numbers.shape[1:] == (len(schema.numeric) + 1,)
                and text.shape == (len(numbers), len(schema.categories))):
            return Batch(numbers, text)
    return None


def _batch_rows(config: Config, batch: Path) -> Batch:
    """An accepted batch: from its cached copy, else parsed (and cached)."""
    cached = _cache_load(config, _cache_path(config, batch))
    if cached is not None:
        return cached
    try:
        with batch.open("rb") as raw:
            rows = read_rows(raw, config.data, config.schema)
    except (DataError, OSError) as exc:
        raise DataError(f"accepted batch {batch.name} no longer validates: {exc}; "
                        "move it out of data/accepted/ and fix it") from None
    _cache_store(config, batch, rows)
    return rows


def batch_rows(config: Config, batch: Path) -> Batch:
    """An accepted batch's rows, from its cached copy (drift reports score batches one by one)."""
    return _batch_rows(config, batch)


def load_dataset(config: Config) -> Dataset:
    """The newest accepted batches within ``data.window``, de-duplicated, with a fingerprint of their content.

    The window counts distinct rows, so a batch of copies cannot push the older data out.
    """
    files = sorted(accepted_dir(config).glob("*.csv"), key=lambda p: (p.stat().st_mtime_ns, p.name), reverse=True)
    if not files and not config.schema.is_demo:
        raise DataError(f"no data yet: drop CSV batches with the columns {','.join(_wanted(config.schema))} into "
                        f"{incoming_dir(config)} (synthetic data exists for the demo schema only)")
    if not files:
        raise DataError(f"no accepted data in {accepted_dir(config)}")
    window, used = config.data.window, dict[str, Batch]()
    raw_rows = distinct_rows = 0
    for path in files[:window.max_batches]:
        rows = _batch_rows(config, path)
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
        rows = _batch_rows(config, accepted_dir(config) / name)
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
        for i, key in enumerate(_row_keys(rows.numbers, rows.text)):
            seen.setdefault(key, i)
        first = np.fromiter(seen.values(), dtype=np.int64, count=len(seen))
    keep = np.sort(first)
    return Batch(rows.numbers[keep], rows.text[keep])


def _row_keys(numbers: np.ndarray, text: np.ndarray) -> list[bytes]:
    """Each row's identity: its float32 bytes, then its text cells."""
    raw = np.ascontiguousarray(numbers, dtype=np.float32).tobytes()
    width = numbers.shape[1] * 4
    keys = [raw[i * width:(i + 1) * width] for i in range(len(numbers))]
    if text.shape[1]:
        keys = [key + "\x1f".join(cells).encode() for key, cells in zip(keys, text.tolist(), strict=True)]
    return keys


def split(dataset: Dataset, eval_percent: float, key: bytes) -> Split:
    """A keyed hash of each row's values decides its side: the same in every run, unknowable without the key."""
    text = no_text(len(dataset)) if dataset.text is None else dataset.text
    rows = _row_keys(np.column_stack([dataset.x, dataset.y]), text)
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
    """Write a new synthetic batch into ``incoming/`` for the next retrain to pick up (demo schema only)."""
    if not config.schema.is_demo:
        raise UsageError("simulate writes the demo's synthetic x1,x2,label rows; this config.json declares another "
                         "table, so drop your own CSV batches into data/incoming/ instead")
    seed = seed if seed is not None else time.time_ns() % 2**31
    path = _free_name(incoming_dir(config), f"sim-{local_compact()}-seed{seed}.csv")
    write_batch(path, *synthetic(rows, seed=seed, noise=noise, shift=shift))
    return path
