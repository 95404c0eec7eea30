"""Score a CSV file through TF Serving: every input row back, in input order, with its answer or its error.

One scorer for ``retrain_pipeline.py score``, the page's upload and ``POST /predict`` with a CSV body,
so the three give the same answers. Standard library only: the frontend imports it.

- Columns are found by header name with the schema of the version scored; other columns pass
  through untouched, in the order given. A row that does not validate (``core.chunk_columns``, which
  words a bad cell with ``Feature.parse``, the one cell parser, as the ``/predict`` 400 does) or has
  more or fewer cells than the header gets no prediction and an ``error`` naming the feature and the
  problem; the others are scored.
- Rows are read ``chunk_rows`` at a time and at most ``in_flight`` chunks wait on serving at once,
  so memory is bounded by ``chunk_rows * (in_flight + 1)`` rows whatever the file's size.
- One version answers the whole file, fixed before the first row (``target_version``): staged
  rollout routing does not apply; the stable version serves a file unless a version or label is asked.
- The answer columns are named by ``answer_columns`` and filled by ``AnswerCells`` only: a class
  and its probabilities, or a number label's ``value``.
"""

from __future__ import annotations

import collections
import csv
import io
import itertools
import operator
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from modelops.core import header as header_rule
from modelops.core import history, rollout, version_schema
from modelops.core import predictions as answers
from modelops.core.chunk_columns import ColumnReader
from modelops.core.errors import ServingHTTPError, UsageError
from modelops.core.predictions import Prediction
from modelops.core.schema import Schema, shown
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
    """The columns appended to every input row: the class and one probability per class (a number
    label: its ``value``), the version, the error."""
    answer = ["value"] if schema.label.is_number else \
        ["class", *(f"probability_{name}" for name in schema.label.class_names)]
    return [*answer, "model_version", "error"]


class AnswerCells:
    """The answer columns' cells of one row (``answer_columns`` order); blanks and the error for a bad row."""

    def __init__(self, schema: Schema, version: int):
        self.names, self.version, self.number = schema.label.class_names, str(version), schema.label.is_number
        self.blank = [""] * (len(answer_columns(schema)) - 2)
        self.quoted = [_cell(name) for name in self.names]  # as the csv writer spells each class name

    def __call__(self, prediction: Prediction | None, error: str | None) -> list[Any]:
        """Probabilities and values stay floats: the csv writer spells them as ``repr`` does, in C."""
        if prediction is None:
            return [*self.blank, self.version, error or ""]
        if self.number:
            return [prediction.value, self.version, ""]
        return [self.names[prediction.index], *prediction.probabilities, self.version, ""]

    def endings(self, predictions: Iterable[Prediction | None]) -> list[str]:
        """Each scored row's answer cells as the csv writer spells them after the input cells: ``,class,
        p1,...,version,`` (or ``,value,version,``; an empty error) and the line's end. Floats as ``repr``,
        as the writer does."""
        names, tail = self.quoted, f",{self.version},\n"
        if self.number:
            return [f",{p.value!r}{tail}" for p in predictions if p is not None]
        return [f",{names[p.index]},{','.join(map(repr, p.probabilities))}{tail}"
                for p in predictions if p is not None]


def schema_of(models_dir: Path, version: int, declared: Schema) -> Schema:
    """The schema ``version`` was trained on (``core.version_schema``: its metrics.json), ``declared``
    (config.json's) when it has none here; SchemaUnreadable when its record is damaged."""
    return version_schema.recorded(models_dir, version, declared.missing_values) or declared


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
    """Turns CSV rows into TF Serving's columnar inputs by header name, or says per row what is wrong."""

    def __init__(self, schema: Schema, header: Sequence[str]):
        self.schema, self.width = schema, len(header)
        try:
            self.columns = header_rule.locate(header, schema.names)
        except header_rule.HeaderMismatch as exc:
            if exc.missing:
                raise UsageError(f"the CSV header has no column {', '.join(map(repr, exc.missing))}; the model "
                                 f"reads {', '.join(schema.names)} (other columns are passed through); header: "
                                 f"{', '.join(header_rule.names(header))[:200]}") from None
            raise UsageError(f"the CSV header names the column {exc.twice[0]!r} more than once: keep one") from None
        self._columns = ColumnReader(schema, self.columns)

    def chunk(self, rows: list[Sequence[str]]) -> tuple[Any, list[str | None]]:
        """The columnar ``inputs`` of the good rows (None when there is none), and per row its error or None."""
        if set(map(len, rows)) == {self.width}:
            return self._columns.read(rows)
        errors: list[str | None] = [self._width_error(row) for row in rows]
        whole = [row for row, error in zip(rows, errors, strict=True) if error is None]
        inputs, found = self._columns.read(whole) if whole else (None, [])
        read = iter(found)
        return inputs, [error or next(read) for error in errors]

    def _width_error(self, row: Sequence[str]) -> str | None:
        if len(row) == self.width:
            return None
        extra = f" (extra, left out of the output: {shown(','.join(row[self.width:]))})" if len(row) > self.width \
            else ""
        return (f"the row has {len(row)} values but the header has {self.width} columns{extra}; "
                f"give one value per column")


class FileScorer:
    """Streams rows through serving in chunks, a bounded number in flight, answers in input order."""

    def __init__(self, client: ServingClient, schema: Schema, version: int, chunk_rows: int = CHUNK_ROWS,
                 in_flight: int = IN_FLIGHT, progress: Callable[[int], None] | None = None):
        self.client, self.schema, self.version = client, schema, version
        self.chunk_rows, self.in_flight, self.progress = chunk_rows, in_flight, progress

    def run(self, header: Sequence[str], rows: Iterable[Sequence[str]], sink: Sink) -> Summary:
        """Score ``rows`` (without the header) into ``sink``; ServingError when serving fails."""
        reader, summary, started = RowReader(self.schema, header), Summary(self.version), time.perf_counter()
        pending: collections.deque[tuple[list[Sequence[str]], list[str | None], Future[Any] | None]]
        pending = collections.deque()
        with ThreadPoolExecutor(max_workers=self.in_flight) as pool:
            try:
                for chunk in _chunks(rows, self.chunk_rows):
                    inputs, errors = reader.chunk(chunk)
                    future = pool.submit(self.ask, inputs) if inputs else None
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

    def ask(self, inputs: Any) -> Any:
        """Serving's columnar answer to one chunk's good rows (``batch_explain`` asks more)."""
        return self.client.predict_columns(inputs, self.version)

    def read(self, got: Any) -> Sequence[Prediction]:
        """``ask``'s answer as predictions, one per row in order."""
        return answers.read_outputs(got, self.schema)

    def _emit(self, chunk: list[Sequence[str]], errors: list[str | None], future: Future[Any] | None,
              sink: Sink, summary: Summary) -> None:
        """Wait for one chunk's answers and hand its rows to ``sink``, in order."""
        got: list[Prediction] = []
        if future is not None:
            try:
                got = list(self.read(future.result()))
            except ServingHTTPError as exc:
                if exc.status != 400:
                    raise
                errors = [error or f"TF Serving rejected the row's chunk: {exc.message}" for error in errors]
            else:
                expected = errors.count(None)
                if len(got) != expected:
                    raise ServingHTTPError(502, f"TF Serving returned {len(got)} predictions for {expected} rows")
        read = iter(got)
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
        writer = csv.writer(buffer, lineterminator="\n")
        if not any(errors) and set(map(len, rows)) == {width}:
            writer.writerows(rows)  # the input rows as the csv module spells them, then each row's answers
            lines = buffer.getvalue().split("\n")
            if len(lines) == len(rows) + 1:  # no cell spans lines
                lines.pop()
                out.write("".join(map(operator.add, lines, cells.endings(predictions))))
                return
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
        writer.writerows(
            [*_fit(row, width), *cells(p, e)] for row, p, e in zip(rows, predictions, errors, strict=True))
        out.write(buffer.getvalue())
    return sink


def write_header(out: IO[str], header: Sequence[str], schema: Schema, extra: Sequence[str] = ()) -> None:
    """The input header followed by the answer columns (and ``extra`` ones after them)."""
    csv.writer(out, lineterminator="\n").writerow([*header, *answer_columns(schema), *extra])


def _cell(text: str) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow([text])
    return buffer.getvalue()[:-1]


def _fit(row: Sequence[str], width: int) -> Sequence[str]:
    if len(row) == width:
        return row
    return [*row[:width], *[""] * (width - len(row))]
