"""Untrusted text is data: how anything a file or a client sent is quoted where people read it.

Everything quoted from outside (a batch's file name, its header, a cell, a link's target, a client's
value) reaches a reason file, ``notifications.log``, the webhook (Slack), the model page and JSON
errors. One rule for all of them, so none can be fooled: cut short, then every character that
could act on a reader is written as an escape instead of itself:

- control, format and other unprintable characters (a newline would forge a log line; a
  right-to-left mark would reorder one) as ``\\n``, ``\\x1b``, ``\\u202e``;
- Slack's ``<`` ``>`` ``&`` (``<!channel>`` pings everyone, ``<https://x|text>`` is a disguised
  link) as ``\\x3c`` ``\\x3e`` ``\\x26``;
- Markdown's ``* ` [ ] |`` (links, code, tables) and the backslash itself with a backslash.

The result never holds a newline or a markup character that means anything, in any of the sinks.
"""

from __future__ import annotations

import unicodedata
from typing import Any

LIMIT = 40  # characters of the original kept in a message: never a whole bad file
SLACK = {"<": "\\x3c", ">": "\\x3e", "&": "\\x26"}
MARKDOWN = frozenset("\\*`[]|")  # not _ or ~: names are full of them, and they only emphasise


def quoted(value: Any, limit: int = LIMIT) -> str:
    """``value`` (text as it is, anything else by its repr) cut to ``limit`` characters, escaped, in quotes."""
    text = value if isinstance(value, str) else repr(value)
    cut = len(text) > limit
    return "'" + escaped(text[:limit]) + ("...'" if cut else "'")


def escaped(text: str) -> str:
    """``text`` with every character that could act on a reader (see the module) written as an escape."""
    return "".join(_escape(c) for c in text)


def _escape(c: str) -> str:
    if c in SLACK:
        return SLACK[c]
    if c in MARKDOWN:
        return "\\" + c
    if c == "'":
        return "\\'"
    if c.isprintable() and unicodedata.category(c) != "Cf":
        return c
    if c in "\n\r\t":
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}[c]
    code = ord(c)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def safe_file_name(name: str) -> str | None:
    """None for a name fit to keep; else a stand-in: every control or undecodable character as ``_``.

    Names that are not valid UTF-8 reach Python holding lone surrogates (``surrogateescape``).
    """
    if all(_fit(c) for c in name):
        return None
    return "".join(c if _fit(c) else "_" for c in name) or "_"


def _fit(c: str) -> bool:
    return c.isprintable() and unicodedata.category(c) not in ("Cf", "Cs")
