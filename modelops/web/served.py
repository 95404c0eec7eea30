"""The schema of each served version: what the frontend validates, shows and counts with.

Every version records the schema it was trained on in its ``metrics.json`` (``schema``). That
record, not config.json, is what a request to that version must match, so the frontend asks the
version first and reads its schema here: a schema change is followed as soon as serving answers
with the new version (the client's version polling), without a restart. Versions never change
once published, so a version's parser is kept; config.json's schema is used only for a version
without a ``metrics.json`` the frontend can see (a frontend without the models volume, a SavedModel
copied in by hand).

A version whose ``metrics.json`` is there but cannot be read, or records no valid schema, is unusable: requests routed
to it and ``/readyz`` answer 503 with the reason (``SchemaUnreadable``). The reading is
``modelops.core.version_schema``'s, the same as file scoring's.
"""

from __future__ import annotations

import threading
from pathlib import Path

from flask import current_app

from modelops.core import version_schema
from modelops.core.errors import ServingError
from modelops.core.schema import Schema
from modelops.core.store import ModelStore
from modelops.core.version_schema import SchemaUnreadable
from modelops.web.inputs import Inputs, parser_for

KEPT = 32  # parsers kept (versions); beyond that the oldest are read again when asked


class SchemaBook:
    """``inputs(version)``: the request parser for the schema ``version`` was trained on."""

    def __init__(self, models_dir: Path, declared: Schema):
        self.store, self.declared = ModelStore(models_dir), declared
        self._declared_inputs = parser_for(declared)
        self._parsers: dict[int, Inputs] = {}
        self._lock = threading.Lock()
        self.last = self._declared_inputs  # the parser of the version last asked for: the best guess before routing

    def inputs(self, version: int | None) -> Inputs:
        if version is None:
            return self.last
        found = self._parsers.get(version)
        if found is None:
            found = self._read(version)
        self.last = found
        return found

    def schema(self, version: int | None) -> Schema:
        return self.inputs(version).schema

    def _read(self, version: int) -> Inputs:
        schema = version_schema.recorded(self.store.root, version, self.declared.missing_values)
        if schema is None:
            return self._declared_inputs  # not visible here, or not the trainer's: config.json's schema (not kept)
        parser = self._declared_inputs if schema == self.declared else parser_for(schema)
        with self._lock:
            if len(self._parsers) >= KEPT:
                self._parsers.pop(min(self._parsers))
            self._parsers[version] = parser
        return parser


def served_inputs() -> Inputs:
    """The parser of the version serving answers with now; the last one known when serving cannot say."""
    book: SchemaBook = current_app.extensions["schemas"]
    try:
        version = current_app.extensions["serving"].latest_version()
    except ServingError:
        return book.inputs(None)
    try:
        return book.inputs(version)
    except SchemaUnreadable:
        return book.inputs(None)
