"""``retrain_pipeline.py score IN.csv [-o OUT.csv]``: a whole CSV through the served model.

Files open here (``-`` is stdin/stdout, ``.gz`` is gzip either way); the scoring is
``modelops.core.batch_score``, the same code the frontend's upload and CSV ``/predict`` run. The
progress bar goes to a terminal's stderr only; the summary line always goes to stderr, so the
scored CSV alone goes to stdout. ``--explain`` adds each row's explanation (``core/batch_explain``).

Exit codes: 0 every row scored; 4 some rows had errors (marked in the ``error`` column); 5 nothing
was scored (no valid row), serving could not be reached (the output holds the rows before), or the
version's recorded schema (its metrics.json) cannot be read.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gzip
import io
import os
import sys
import time
from collections.abc import Iterator
from typing import IO, Any

from modelops.core import batch_explain, batch_score
from modelops.core.config import Config
from modelops.core.errors import ServingError, UsageError
from modelops.core.exit_codes import ExitCode
from modelops.core.tfserving_client import ServingClient, from_env

SERVING_TIMEOUT = 60.0  # seconds for one chunk's answer
UNREADABLE = (UnicodeDecodeError, csv.Error, gzip.BadGzipFile, EOFError)  # not UTF-8, not CSV, not gzip


def add_parser(sub: Any) -> None:
    p = sub.add_parser("score", help="score a CSV file through the served model; every row back with its answer",
                       description="Read IN.csv by header name with the schema of the version scored, send the "
                                   "rows to TF Serving ($TF_HOST) in chunks and write every row, in input order, "
                                   "followed by class, one probability per class (a number label: value), "
                                   "model_version and error (with --explain: then baseline_prediction and "
                                   "explain_<feature> per feature).")
    p.add_argument("input", metavar="IN.csv", help="the rows to score ('-': stdin; .gz: gzip)")
    p.add_argument("-o", "--output", default="-", metavar="OUT.csv", help="where to write them (default '-': "
                                                                          "stdout; .gz: gzip)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--version", type=int, metavar="N", help="score with version N (default: the served one)")
    which.add_argument("--label", metavar="NAME", help="score with the version serving's label NAME points at "
                                                       "(stable or canary during a staged rollout)")
    p.add_argument("--chunk-rows", type=int, default=None, metavar="N",
                   help=f"rows per request to serving (default {batch_score.CHUNK_ROWS}; "
                        f"{batch_explain.CHUNK_ROWS} with --explain)")
    p.add_argument("--explain", action="store_true",
                   help="also explain each row: baseline_prediction, then explain_<feature> per feature, its "
                        "contribution; they add up to the predicted class's probability (a number label: the "
                        "value) minus baseline_prediction (docs/explain.md)")


def run(args: argparse.Namespace, config: Config, client: ServingClient | None = None) -> int:
    chunk_rows = args.chunk_rows
    if chunk_rows is None:
        chunk_rows = batch_explain.CHUNK_ROWS if args.explain else batch_score.CHUNK_ROWS
    if chunk_rows < 1:
        raise UsageError(f"--chunk-rows must be a positive number of rows, got {chunk_rows}")
    client = client or from_env(config.model_name, timeout=SERVING_TIMEOUT, remember_failure=0.0)
    with _reader(args.input) as (source, position):
        try:
            version = batch_score.target_version(client, config.history_path, args.version, args.label)
            schema = batch_score.schema_of(config.models_dir, version, config.schema)
        except ServingError as exc:  # SchemaUnreadable included: a damaged record is never guessed past
            print(f"error: {exc}; nothing was scored", file=sys.stderr)
            return ExitCode.UNSCORED
        rows = csv.reader(source)
        header = _header(rows, args.input)
        progress = Progress(position) if sys.stderr.isatty() else None
        scorer = (batch_explain.ExplainingScorer if args.explain else batch_score.FileScorer)(
            client, schema, version, chunk_rows, progress=progress.show if progress else None)
        cells = batch_explain.ExplainCells(schema, version) if args.explain else None
        with _writer(args.output) as out:
            batch_score.write_header(out, header, schema, batch_explain.columns(schema) if args.explain else ())
            try:
                summary = scorer.run(header, rows, batch_score.csv_sink(out, schema, version, len(header), cells))
            except UNREADABLE as exc:
                raise UsageError(f"{args.input}: cannot read the CSV after {rows.line_num} lines: {exc}") from None
            except ServingError as exc:
                print(f"\nerror: {exc}; {args.output} holds only the rows before", file=sys.stderr)
                return ExitCode.UNSCORED
    if progress:
        progress.end()
    print(summary.line(), file=sys.stderr)
    for line in summary.first_errors:
        print(f"  {line}", file=sys.stderr)
    if summary.scored == 0:
        return ExitCode.UNSCORED
    return ExitCode.ROW_ERRORS if summary.errors else ExitCode.OK


@contextlib.contextmanager
def _reader(name: str) -> Iterator[tuple[IO[str], Any]]:
    """The input as text, and a callable giving the fraction read (None when the size is unknown)."""
    if name == "-":
        yield io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", newline=""), None
        return
    try:
        raw = open(name, "rb")  # noqa: SIM115 (closed below)
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror or exc}") from None
    with raw:
        size = os.fstat(raw.fileno()).st_size
        data: Any = gzip.GzipFile(fileobj=raw) if name.endswith(".gz") else raw
        position = (lambda: raw.tell() / size) if size else None
        yield io.TextIOWrapper(data, encoding="utf-8-sig", newline=""), position


@contextlib.contextmanager
def _writer(name: str) -> Iterator[IO[str]]:
    if name == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    try:
        out = gzip.open(name, "wt", encoding="utf-8", newline="") if name.endswith(".gz") \
            else open(name, "w", encoding="utf-8", newline="")  # noqa: SIM115
    except OSError as exc:
        raise UsageError(f"cannot write {name}: {exc.strerror or exc}") from None
    with out:
        yield out


def _header(rows: Any, name: str) -> list[str]:
    try:
        for header in rows:
            if header:
                return list(header)
    except UNREADABLE as exc:
        raise UsageError(f"{name}: cannot read the CSV header: {exc}") from None
    raise UsageError(f"{name} is empty: give a CSV with a header row naming the columns")


class Progress:
    """``rows done, rows/s, time left`` on one terminal line, redrawn at most 4 times a second."""

    def __init__(self, fraction: Any):
        self.fraction, self.started, self.drawn = fraction, time.monotonic(), 0.0

    def show(self, rows: int) -> None:
        now = time.monotonic()
        if now - self.drawn < 0.25:
            return
        self.drawn, elapsed = now, max(now - self.started, 1e-9)
        text = f"\r{rows:,} rows  {rows / elapsed:,.0f} rows/s"
        done = self.fraction() if self.fraction else None
        if done:
            text += f"  {min(done, 1.0):.0%}  {elapsed * (1 - done) / done:,.0f} s left"
        print(text.ljust(60), end="", file=sys.stderr, flush=True)

    def end(self) -> None:
        print(file=sys.stderr)
