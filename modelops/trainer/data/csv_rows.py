"""Reading a CSV of the schema's rows: the one header rule, streamed batches, errors by line.

Ingest reads every batch here and ``compare --input`` reads its file with the same
:class:`Header`: declared columns by name, any case, any order, other columns ignored, none
named twice; each cell typed by ``Feature.parse`` (``modelops.core.schema``).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

from modelops.core import header as header_rule
from modelops.core.config import DataConfig
from modelops.core.errors import DataError, SchemaValueError
from modelops.core.schema import DEMO_SCHEMA, Schema
from modelops.core.untrusted import quoted
from modelops.trainer.data.tables import Batch

MAX_REASONS = 5


def expected_columns(schema: Schema, label_required: bool = True) -> str:
    """The header a file of this schema needs, as messages spell it (``[,label]``: optional)."""
    label = schema.label.column
    return ",".join(schema.names) + (f",{label}" if label_required else f"[,{label}]")


def empty_file(schema: Schema, label_required: bool = True) -> DataError:
    return DataError(f"empty file: expected a header '{expected_columns(schema, label_required)}' "
                     "and at least one row")


class Header:
    """Where each declared column sits in a file (the one header rule) and how a data row is read.

    ``max_abs`` caps numbers without declared bounds (``data.max_abs_feature``); without
    ``label_required`` the label column may be absent (rows to predict on).
    """

    def __init__(self, header_row: list[str], schema: Schema, max_abs: float | None = None,
                 label_required: bool = True):
        header = header_rule.names(header_row)
        lower = [h.lower() for h in header]
        label = schema.label.column
        wanted = [*schema.names, label] if label_required or label.lower() in lower else list(schema.names)
        try:
            found = header_rule.locate(header, wanted)
        except header_rule.HeaderMismatch as exc:
            if exc.missing:
                raise DataError(f"header must be the columns {expected_columns(schema, label_required)} (any "
                                f"order; other columns are ignored), got {quoted(','.join(header), 80)}: "
                                f"'{', '.join(exc.missing)}' missing") from None
            raise DataError(f"header names the column '{exc.twice[0]}' more than once: keep one") from None
        self.schema, self.width, self.max_abs = schema, len(header), max_abs
        self.features = list(zip(schema.features, found, strict=False))
        self.label = found[-1] if label in wanted else None
        declared = {name.lower() for name in wanted}
        self.ignored = tuple(h for h in header if h.lower() not in declared)

    def read(self, row: list[str]) -> tuple[list[float | str | None], float | None]:
        """One data row's typed values in schema order and its label (the class index, or a number
        label's value; None without a label column); ValueError says what is wrong."""
        if len(row) != self.width:
            raise ValueError(f"expected {self.width} fields, got {len(row)}")
        try:
            values = [f.parse(row[i], self.max_abs) for f, i in self.features]
            index = None if self.label is None else self.schema.label.value(row[self.label])
        except SchemaValueError as exc:
            raise ValueError(str(exc)) from None
        return values, index


def parse_batch(content: bytes, limits: DataConfig, schema: Schema = DEMO_SCHEMA) -> tuple[np.ndarray, np.ndarray]:
    """Parse one CSV batch held in memory into its numeric features and class indexes; raise DataError."""
    batch = read_rows(io.BytesIO(content), limits, schema)
    return batch.numbers[:, :-1], batch.numbers[:, -1]


def read_rows(raw: BinaryIO, limits: DataConfig, schema: Schema = DEMO_SCHEMA) -> Batch:
    """Stream one CSV batch into a :class:`Batch`, its columns found by name in any order.

    Raise DataError naming the line, the column and the value: the first few bad rows, or the
    first line that is not UTF-8 text or not CSV.
    """
    reader = csv.reader(_TextLines(raw, limits.max_batch_bytes))
    table = _Table(schema)
    problems: list[str] = []
    bad, start = 0, 1
    header = None
    try:
        for row in reader:
            line, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = Header(row, schema, limits.max_abs_feature)
                continue
            if table.rows >= limits.max_batch_rows:
                raise DataError(f"more than {limits.max_batch_rows} data rows (data.max_batch_rows): "
                                "split it into several batches")
            try:
                if line != reader.line_num:
                    raise ValueError(f"a quoted field runs over lines {line}-{reader.line_num}: a stray '\"'? "
                                     "(numbers need no quotes)")
                table.add(*header.read(row))
            except ValueError as exc:
                bad += 1
                if len(problems) < MAX_REASONS:
                    problems.append(f"line {line}: {exc}")
    except csv.Error as exc:
        raise DataError(_csv_problem(exc, start, reader.line_num)) from None
    if header is None:
        raise empty_file(schema)
    if problems:
        more = f" (and {bad - MAX_REASONS} more)" if bad > MAX_REASONS else ""
        raise DataError("; ".join(problems) + more)
    if not limits.min_batch_rows <= table.rows <= limits.max_batch_rows:
        raise DataError(f"{table.rows} data rows; a batch needs between {limits.min_batch_rows} and "
                        f"{limits.max_batch_rows}")
    return table.batch(header.ignored)


class _Table:
    """Rows as they are read, in a batch's two matrices: numbers (class index last) and text."""

    def __init__(self, schema: Schema):
        self.schema, self.rows = schema, 0
        self.numeric = [i for i, f in enumerate(schema.features) if f.numeric]
        self.category = [i for i, f in enumerate(schema.features) if not f.numeric]
        self.numbers: list[float] = []
        self.text: list[str] = []

    def add(self, values: list[float | str | None], index: float | None) -> None:
        assert index is not None  # a batch's header has the label column
        self.numbers.extend(math.nan if v is None else float(v) for v in (values[i] for i in self.numeric))
        self.numbers.append(float(index))
        self.text.extend(str(values[i] or "") for i in self.category)
        self.rows += 1

    def batch(self, ignored: tuple[str, ...]) -> Batch:
        width = len(self.numeric) + 1
        return Batch(np.asarray(self.numbers, dtype=np.float64).reshape(self.rows, width).astype(np.float32),
                     np.asarray(self.text, dtype=np.str_).reshape(self.rows, len(self.category)), ignored)


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

