"""Score a CSV file through TF Serving: every input row back, in input order, with its answer or its error.

One scorer for ``retrain_pipeline.py score``, the page's upload and ``POST /predict`` with a CSV body,
so the three give the same answers. Standard library only: the frontend imports it.

- Columns are found by header name with the schema of the version scored; other columns pass
  through untouched, in the order given. A row that does not validate (``Feature.parse``, the one
  cell parser, so the wording is the ``/predict`` 400's) or has more or fewer cells than the header
  gets no prediction and an ``error`` naming the feature and the problem; the others are scored.
- Rows are read ``chunk_rows`` at a time and at most ``in_flight`` chunks wait on serving at once,
  so memory is bounded by ``chunk_rows * (in_flight + 1)`` rows whatever the file's size.
- One version answers the whole file, fixed before the first row (``target_version``): staged
  rollout routing does not apply; the stable version serves a file unless a version or label is asked.
- The answer columns are named and filled by ``answer_columns``/``answer_cells`` only, so a number
  label's ``value`` is one more branch there.
"""

from __future__ import annotations

import collections
import csv
import io
import itertools
import math
import operator
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from modelops.core import history, rollout
from modelops.core import predictions as answers
from modelops.core.errors import SchemaValueError, ServingHTTPError, UsageError
from modelops.core.predictions import Prediction
from modelops.core.schema import FLOAT32_MAX, Schema, recorded_schema, shown
from modelops.core.store import ModelStore
from modelops.core.tfserving_client import ServingClient

CHUNK_ROWS = 2000  # rows per request to serving: large enough to amortise a request, small for memory
IN_FLIGHT = 2  # chunks at serving at once: one being answered while the next is read and sent
FIRST_ERRORS = 5  # error lines kept for a summary

# A chunk's outcome for a sink: its input rows, and per row a prediction or None and an error or None
Sink = Callable[[Sequence[Sequence[str]], Sequence[Prediction | None], Sequence[str | None]], None]


@dataclass
class Summary:
    """What a run did: rows read, rows with an error, the version that answered, seconds taken."""

    version: int
    rows: int = 0
    errors: int = 0
    seconds: float = 0.0
    first_errors: list[str] = field(default_factory=list)  # "line N: message", at most FIRST_ERRORS

    @property
    def scored(self) -> int:
        return self.rows - self.errors

    def line(self) -> str:
        rate = f" ({self.rows / self.seconds:,.0f} rows/s)" if self.seconds > 0 else ""
        return (f"scored {self.scored} of {self.rows} rows with model version {self.version}; "
                f"{self.errors} rows with errors; {self.seconds:.1f} s{rate}")


def answer_columns(schema: Schema) -> list[str]:
    """The columns appended to every input row: the class, one probability per class, the version, the error."""
    return ["class", *(f"probability_{name}" for name in schema.label.class_names), "model_version", "error"]


class AnswerCells:
    """The answer columns' cells of one row (``answer_columns`` order); blanks and the error for a bad row."""

    def __init__(self, schema: Schema, version: int):
        self.names, self.version = schema.label.class_names, str(version)
        self.blank = [""] * (1 + schema.num_classes)

    def __call__(self, prediction: Prediction | None, error: str | None) -> list[Any]:
        """Probabilities stay floats: the csv writer spells them as ``repr`` does, in C."""
        if prediction is None:
            return [*self.blank, self.version, error or ""]
        return [self.names[prediction.index], *prediction.probabilities, self.version, ""]


def schema_of(models_dir: Path, version: int, fallback: Schema) -> Schema:
    """The schema ``version`` was trained on (its metrics.json), else ``fallback`` (config.json's) when
    this side cannot read its record (no metrics.json here, or an unreadable one)."""
    metrics = ModelStore(models_dir).metrics(version)
    return (recorded_schema(metrics) if metrics is not None else None) or fallback


def target_version(client: ServingClient, history_path: Path, version: int | None = None,
                   label: str | None = None) -> int:
    """The one version that answers a file: ``version``, the one serving's ``label`` points at, or the
    served one (the stable version during a staged rollout, else the highest AVAILABLE one)."""
    if version is not None:
        loaded = [int(e["version"]) for e in client.status() if e.get("state") == "AVAILABLE"]
        if version not in loaded:
            raise UsageError(f"version {version} is not AVAILABLE on TF Serving at {client.base_url} "
                             f"(AVAILABLE: {', '.join(map(str, sorted(loaded))) or 'none'})")
        return version
    if label is not None:
        try:
            return client.label_version(label)
        except ServingHTTPError as exc:
            if exc.status not in (400, 404):
                raise
            raise UsageError(f"TF Serving has no version labelled {label!r} ({exc.message}); labels exist "
                             "during a staged rollout (stable, canary)") from None
    records = history.read(history_path)
    current = rollout.state(records)
    if current is not None:
        return current.stable
    return rollout.settled(records) or client.latest_version(max_age=0)


class RowReader:
    """Turns CSV rows into TF Serving instances by header name, or says per row what is wrong."""

    def __init__(self, schema: Schema, header: Sequence[str]):
        self.schema, self.width, self.packed = schema, len(header), schema.packed
        names = [h.strip() for h in header]
        lower = [name.lower() for name in names]  # ingest's header rule: any case, any order, once
        missing = [f.name for f in schema.features if f.name.lower() not in lower]
        if missing:
            raise UsageError(f"the CSV header has no column {', '.join(map(repr, missing))}; the model reads "
                             f"{', '.join(schema.names)} (other columns are passed through); header: "
                             f"{', '.join(names)[:200]}")
        twice = [f.name for f in schema.features if lower.count(f.name.lower()) > 1]
        if twice:
            raise UsageError(f"the CSV header names the column {twice[0]!r} more than once: keep one")
        self.columns = [lower.index(f.name.lower()) for f in schema.features]
        self._bounds = [(-FLOAT32_MAX if f.min is None else f.min, FLOAT32_MAX if f.max is None else f.max)
                        for f in schema.features]

    def chunk(self, rows: list[Sequence[str]]) -> tuple[list[Any], list[str | None]]:
        """The instances of the good rows, and per row its error or None."""
        fast = self._packed_chunk(rows) if self.packed else None
        if fast is not None:
            return fast, [None] * len(rows)
        instances, errors = [], []
        for row in rows:
            instance, error = self.instance(row)
            errors.append(error)
            if error is None:
                instances.append(instance)
        return instances, errors

    def instance(self, row: Sequence[str]) -> tuple[Any, str | None]:
        """``(instance, None)`` for a good row, ``(None, error)`` for a bad one."""
        if len(row) != self.width:
            extra = f" (extra, left out of the output: {shown(','.join(row[self.width:]))})" if len(row) > self.width \
                else ""
            return None, (f"the row has {len(row)} values but the header has {self.width} columns{extra}; "
                          f"give one value per column")
        if self.packed:
            fast = self._packed(row)
            if fast is not None:
                return fast, None
        try:
            typed = self.schema.parse_row({f.name: row[i] for f, i in zip(self.schema.features, self.columns,
                                                                              strict=True)})
        except SchemaValueError as exc:
            return None, str(exc)
        return self.schema.instance_for_serving(typed), None

    def _packed_chunk(self, rows: list[Sequence[str]]) -> list[Any] | None:
        """A whole chunk of good packed rows column by column at C speed; None when any row needs a look."""
        if set(map(len, rows)) != {self.width}:
            return None
        columns = []
        try:
            for i, (low, high) in zip(self.columns, self._bounds, strict=True):
                column = list(map(float, map(operator.itemgetter(i), rows)))
                if not (math.isfinite(sum(column)) and low <= min(column) and max(column) <= high):
                    return None  # NaN, inf or out of bounds somewhere
                columns.append(column)
        except ValueError:
            return None
        return list(map(list, zip(*columns, strict=True)))

    def _packed(self, row: Sequence[str]) -> list[float] | None:
        """The common case at C speed; None sends the row to ``Feature.parse``, which words any error."""
        try:
            values = [float(row[i]) for i in self.columns]
        except ValueError:
            return None
        for value, (low, high) in zip(values, self._bounds, strict=True):
            if not low <= value <= high:  # NaN fails too
                return None
        return values


class FileScorer:
    """Streams rows through serving in chunks, a bounded number in flight, answers in input order."""

    def __init__(self, client: ServingClient, schema: Schema, version: int, chunk_rows: int = CHUNK_ROWS,
                 in_flight: int = IN_FLIGHT, progress: Callable[[int], None] | None = None):
        self.client, self.schema, self.version = client, schema, version
        self.chunk_rows, self.in_flight, self.progress = chunk_rows, in_flight, progress

    def run(self, header: Sequence[str], rows: Iterable[Sequence[str]], sink: Sink) -> Summary:
        """Score ``rows`` (without the header) into ``sink``; ServingError when serving fails."""
        reader, summary, started = RowReader(self.schema, header), Summary(self.version), time.perf_counter()
        pending: collections.deque[tuple[list[Sequence[str]], list[str | None], Future[list[Any]] | None]]
        pending = collections.deque()
        with ThreadPoolExecutor(max_workers=self.in_flight) as pool:
            try:
                for chunk in _chunks(rows, self.chunk_rows):
                    instances, errors = reader.chunk(chunk)
                    future = pool.submit(self.ask, instances) if instances else None
                    time.sleep(0)  # under gevent (the frontend) let the request go out before the next chunk
                    pending.append((chunk, errors, future))
                    if len(pending) > self.in_flight:
                        self._emit(*pending.popleft(), sink, summary)
                while pending:
                    self._emit(*pending.popleft(), sink, summary)
            finally:
                for _chunk, _errors, future in pending:
                    if future is not None:
                        future.cancel()
        summary.seconds = time.perf_counter() - started
        return summary

    def ask(self, instances: list[Any]) -> list[Any]:
        """Serving's answers to one chunk's good rows, one per row (``batch_explain`` asks more)."""
        return self.client.predict(instances, self.version)

    def read(self, got: list[Any]) -> Sequence[Prediction]:
        """``ask``'s answers as predictions, in order."""
        return answers.read_all(got, self.schema)

    def _emit(self, chunk: list[Sequence[str]], errors: list[str | None], future: Future[list[Any]] | None,
              sink: Sink, summary: Summary) -> None:
        """Wait for one chunk's answers and hand its rows to ``sink``, in order."""
        got: list[Any] = []
        if future is not None:
            try:
                got = future.result()
            except ServingHTTPError as exc:
                if exc.status != 400:
                    raise
                errors = [error or f"TF Serving rejected the row's chunk: {exc.message}" for error in errors]
            else:
                expected = errors.count(None)
                if len(got) != expected:
                    raise ServingHTTPError(502, f"TF Serving returned {len(got)} predictions for {expected} rows")
        read = iter(self.read(got))
        predictions = [None if error else next(read) for error in errors]
        bad = len(errors) - errors.count(None)
        if bad and len(summary.first_errors) < FIRST_ERRORS:
            numbered = (f"row {summary.rows + i}: {e}" for i, e in enumerate(errors, start=1) if e)
            summary.first_errors.extend(itertools.islice(numbered, FIRST_ERRORS - len(summary.first_errors)))
        summary.errors += bad
        summary.rows += len(chunk)
        sink(chunk, predictions, errors)
        if self.progress is not None:
            self.progress(summary.rows)


def _chunks(rows: Iterable[Sequence[str]], size: int) -> Iterator[list[Sequence[str]]]:
    """Lists of at most ``size`` rows; blank lines (no cells at all) are not rows and are skipped."""
    source = iter(rows)
    while read := list(itertools.islice(source, size)):
        chunk = [row for row in read if row]
        if chunk:
            yield chunk


def csv_sink(out: IO[str], schema: Schema, version: int, width: int, answer: AnswerCells | None = None) -> Sink:
    """A sink writing each input row (cut or padded to the header's ``width``) followed by its answer
    columns (``answer``'s cells, ``AnswerCells``' by default) to ``out``, one write per chunk."""
    cells = answer or AnswerCells(schema, version)

    def sink(rows: Sequence[Sequence[str]], predictions: Sequence[Prediction | None],
             errors: Sequence[str | None]) -> None:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(
            [*_fit(row, width), *cells(p, e)] for row, p, e in zip(rows, predictions, errors, strict=True))
        out.write(buffer.getvalue())
    return sink


def write_header(out: IO[str], header: Sequence[str], schema: Schema, extra: Sequence[str] = ()) -> None:
    """The input header followed by the answer columns (and ``extra`` ones after them)."""
    csv.writer(out, lineterminator="\n").writerow([*header, *answer_columns(schema), *extra])


def _fit(row: Sequence[str], width: int) -> Sequence[str]:
    if len(row) == width:
        return row
    return [*row[:width], *[""] * (width - len(row))]
