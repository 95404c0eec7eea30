"""Dates and timestamps as a table holds them: read once, then carried as ISO 8601 text.

A ``date`` or ``datetime`` feature is read from a CSV cell with its declared ``format`` (strptime
style) or, without one, as ISO 8601; from then on it is ISO 8601 text everywhere (the batch's text
matrix, the JSON a stock TF Serving takes, the form), so the SavedModel derives what a model can
learn from (``modelops/trainer/model/dates.py``) from one spelling. A timestamp with a zone is
turned into UTC. Standard library only: the frontend imports it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

DATE_ISO = "%Y-%m-%d"
DATETIME_ISO = "%Y-%m-%dT%H:%M:%S"
EPOCH = dt.datetime(1970, 1, 1)


def parse_moment(kind: str, fmt: str | None, raw: Any) -> str:
    """The ISO 8601 text of a date (``YYYY-MM-DD``) or timestamp (``YYYY-MM-DDTHH:MM:SS``, UTC).

    ``fmt`` is tried first when given; ISO 8601 is always accepted (what serving takes). Raise
    ValueError when ``raw`` is neither.
    """
    if not isinstance(raw, str):
        raise ValueError(f"not text: {raw!r}")
    text = raw.strip()
    moment = None
    if fmt:
        try:
            moment = dt.datetime.strptime(text, fmt)
        except ValueError:
            moment = None
    if moment is None:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    if not 1 <= moment.year <= 9999:
        raise ValueError(f"year out of range: {text!r}")
    return moment.strftime(DATE_ISO if kind == "date" else DATETIME_ISO)


def temporal_expected(kind: str, fmt: str | None) -> str:
    """What a valid value looks like, for messages and the form."""
    iso = "2024-07-01" if kind == "date" else "2024-07-01T13:45:00"
    return f"a {kind} like {iso}" + (f" (or as {fmt})" if fmt else "")


def as_days(iso: str) -> float:
    """Days since 1970-01-01 (fractional for a timestamp): how drift and slices order a date."""
    moment = dt.datetime.fromisoformat(iso)
    return (moment - EPOCH).total_seconds() / 86400.0
