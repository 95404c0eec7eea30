"""URLs as they may be printed: never with the user name and password they may carry.

``TF_HOST=https://user:token@serving.example`` is a valid address, and its credentials must stay
out of every message, log line and page that names it.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def without_credentials(url: str) -> str:
    """``url`` with any ``user:password@`` removed (``***@`` in its place), else unchanged."""
    try:
        parts = urlsplit(url if "://" in url else f"//{url}")
    except ValueError:
        return "<an address that is not a URL>"
    if "@" not in parts.netloc:
        return url
    shown = urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))
    return shown if "://" in url else shown.removeprefix("//")
