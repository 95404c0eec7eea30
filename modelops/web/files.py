"""A whole CSV scored through serving: the page's upload (``POST /score``) and ``POST /predict`` with
``Content-Type: text/csv``, both by ``modelops.core.batch_score``, the code ``retrain_pipeline.py
score`` runs, so all three answer the same rows the same way.

The body may be up to ``score.max_upload_mb`` (config.json), not the JSON limit; the rows go to
serving in chunks. The answer is the same CSV with the answer columns (or JSON when asked with
``Accept: application/json``), spooled to a temporary file past a few MB; the served version and a
summary go out in headers (``X-Model-Version``, ``X-Rows``, ``X-Row-Errors``, ``X-First-Errors``), which
the page's script shows. Staged rollout routing does not apply: the stable version answers a file
unless ``?version=N`` or ``?label=NAME`` asks for another.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Iterator
from typing import IO, Any

from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from modelops.core import batch_score
from modelops.core import predictions as answers
from modelops.core.errors import UsageError
from modelops.web.deps import serving
from modelops.web.inputs import InputError

bp = Blueprint("files", __name__)

SPOOL_BYTES = 4 * 1024 * 1024  # answers kept in memory up to this size, then in a temporary file
BLOCK = 64 * 1024


class UploadTooLarge(HTTPException):
    code = 413


def upload_limit() -> int:
    return int(current_app.config["MODELOPS"].score.max_upload_mb * 1024 * 1024)


@bp.post("/score")
def score_upload():
    """The page's upload form: a multipart ``file`` field; answers the scored CSV as a download."""
    _check_size()
    try:
        upload = request.files.get("file")
    except RequestEntityTooLarge:
        raise _too_large() from None
    if upload is None or not upload.filename:
        raise InputError("choose a CSV file to score (the form field 'file')")
    text = io.TextIOWrapper(upload.stream, encoding="utf-8-sig", newline="")
    name = (upload.filename.rsplit("/", 1)[-1].rsplit(".", 1)[0] or "rows")[:80]
    response = _score(text, want_json=False)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    response.headers["Content-Disposition"] = f'attachment; filename="{safe}.scored.csv"'
    return response


def predict_csv():
    """``POST /predict`` with a CSV body (called by ``web/predict.py``); CSV back unless JSON is asked."""
    _check_size()
    try:
        body = request.get_data(cache=False)
    except RequestEntityTooLarge:
        raise _too_large() from None
    best = request.accept_mimetypes.best_match(["text/csv", "application/json"], default="text/csv")
    text = io.TextIOWrapper(io.BytesIO(body), encoding="utf-8-sig", newline="")  # decoded as it is read
    return _score(text, want_json=best == "application/json")


def _check_size() -> None:
    request.max_content_length = upload_limit()  # this route's limit, not the JSON one
    if request.content_length is not None and request.content_length > upload_limit():
        raise _too_large()


def _too_large() -> UploadTooLarge:
    limit = current_app.config["MODELOPS"].score.max_upload_mb
    return UploadTooLarge(f"the CSV is larger than {limit:g} MB (score.max_upload_mb in config.json); split it, "
                          "or score it with 'python retrain_pipeline.py score FILE.csv', which has no size limit")


def _score(source: IO[str], want_json: bool) -> Response:
    cfg = current_app.config["MODELOPS"]
    client = serving()
    rows = csv.reader(source)
    try:
        version = batch_score.target_version(client, cfg.history_path, _int_arg("version"),
                                             request.args.get("label"))
        schema = current_app.extensions["schemas"].schema(version)  # the schema that version was trained on
        header = next((h for h in rows if h), None)
        if header is None:
            raise InputError(f"the CSV is empty; send a header row naming {', '.join(schema.names)}, then one row "
                             "per line")
        scorer = batch_score.FileScorer(client, schema, version)
        if want_json:
            collected = JsonAnswers(schema)
            summary = scorer.run(header, rows, collected)
            response = jsonify(model_version=version, rows=summary.rows, predictions=collected.predictions,
                               errors=collected.errors)
        else:
            spool = tempfile.SpooledTemporaryFile(SPOOL_BYTES, mode="w+", newline="", encoding="utf-8")  # noqa: SIM115 (_blocks closes it)
            batch_score.write_header(spool, header, schema)
            summary = scorer.run(header, rows, batch_score.csv_sink(spool, schema, version, len(header)))
            spool.seek(0)
            response = Response(_blocks(spool), mimetype="text/csv")
    except UsageError as exc:
        raise InputError(str(exc)) from None
    except UnicodeDecodeError:
        raise InputError(f"the CSV is not UTF-8 text (after {rows.line_num} lines); save it as UTF-8") from None
    except csv.Error as exc:
        raise InputError(f"the CSV cannot be read after {rows.line_num} lines: {exc}") from None
    current_app.extensions["metrics"].instances.inc(summary.scored)
    response.headers.update({"X-Model-Version": str(version), "X-Rows": str(summary.rows),
                             "X-Row-Errors": str(summary.errors), "X-First-Errors": json.dumps(summary.first_errors)})
    return response


def _int_arg(name: str) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise InputError(f"'{name}' must be a version number, got {raw[:40]!r}")
    return int(raw)


def _blocks(spool: IO[str]) -> Iterator[str]:
    with spool:
        while block := spool.read(BLOCK):
            yield block


class JsonAnswers:
    """A sink collecting the answers as JSON ``/predict`` gives them, and the errors by row number."""

    def __init__(self, schema: Any):
        self.schema, self.predictions, self.errors = schema, [], []  # type: ignore[var-annotated]
        self.rows = 0

    def __call__(self, rows: Any, predictions: Any, errors: Any) -> None:
        for prediction, error in zip(predictions, errors, strict=True):
            self.rows += 1
            if prediction is None:
                self.predictions.append(None)
                self.errors.append({"row": self.rows, "error": error})
            elif self.schema.packed:
                self.predictions.append([prediction.probabilities[1]])
            else:
                self.predictions.append(answers.as_json(prediction, self.schema))


def document(doc: dict[str, Any], schema: Any, max_upload_mb: float) -> dict[str, Any]:
    """``doc`` (the OpenAPI document) with the CSV body of ``/predict`` and the ``/score`` upload."""
    header = ",".join(schema.names)
    columns = ", ".join(batch_score.answer_columns(schema))
    csv_in = {"schema": {"type": "string"}, "example": f"id,{header}\n"}
    csv_out = {"schema": {"type": "string", "description": f"every input row, in order, then {columns}"}}
    headers = {name: {"description": text, "schema": {"type": kind}} for name, text, kind in (
        ("X-Model-Version", "The model version that answered every row", "integer"),
        ("X-Rows", "Rows read", "integer"), ("X-Row-Errors", "Rows not scored (their error column says why)",
                                             "integer"),
        ("X-First-Errors", "The first few errors as a JSON list of 'row N: message'", "string"))}
    limit = f"A CSV body may be up to {max_upload_mb:g} MB (score.max_upload_mb), any number of rows."
    post = doc["paths"]["/predict"]["post"]
    post["requestBody"]["content"]["text/csv"] = {**csv_in, "description": (
        "A CSV with a header row naming the features (other columns pass through); scored in chunks by "
        "the stable version (?version=N or ?label=NAME asks for another). " + limit)}
    post["requestBody"]["description"] += " " + limit
    answer = post["responses"]["200"]
    answer["content"]["text/csv"] = csv_out
    answer["headers"] = {**answer.get("headers", {}), **headers}
    answer["description"] += (" A CSV body is answered in CSV (Accept: text/csv, the default) or in JSON "
                              "({model_version, rows, predictions with null for a row not scored, errors}).")
    doc["paths"]["/score"] = {"post": {
        "summary": "The page's upload: score a CSV file, answered as a CSV download", "requestBody": {
            "required": True, "description": limit, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["file"], "properties": {
                    "file": {"type": "string", "contentMediaType": "text/csv"}}}}}},
        "responses": {"200": {"description": "The scored CSV, as for POST /predict with a CSV body",
                              "headers": headers, "content": {"text/csv": csv_out}},
                      **{code: post["responses"][code] for code in ("400", "413", "502", "503", "504")}}}}
    return doc
