"""The one header rule for a CSV read by name: ingest, ``compare --input`` and file scoring alike.

A wanted column is found in any case and any order, spaces around a name ignored, and must be named
once; the other columns are the caller's business (ingest ignores them, scoring passes them
through). Each caller words its own error (a DataError for a batch, a usage error for a file to
score) from what :class:`HeaderMismatch` says is wrong.
"""

from __future__ import annotations

from collections.abc import Sequence


class HeaderMismatch(ValueError):
    """The header lacks some wanted columns (``missing``) or names one more than once (``twice``)."""

    def __init__(self, missing: list[str], twice: list[str]):
        super().__init__(f"missing {missing}" if missing else f"named twice: {twice}")
        self.missing, self.twice = missing, twice


def names(header: Sequence[str]) -> list[str]:
    """The header's column names as the rule reads them: without surrounding spaces."""
    return [cell.strip() for cell in header]


def locate(header: Sequence[str], wanted: Sequence[str]) -> list[int]:
    """The position of each ``wanted`` column in ``header``; HeaderMismatch when one is missing or twice."""
    lower = [name.lower() for name in names(header)]
    missing = [name for name in wanted if name.lower() not in lower]
    if missing:
        raise HeaderMismatch(missing, [])
    twice = [name for name in wanted if lower.count(name.lower()) > 1]
    if twice:
        raise HeaderMismatch([], twice)
    return [lower.index(name.lower()) for name in wanted]
