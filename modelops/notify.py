"""Human-readable decision lines in ``notifications.log``."""

from __future__ import annotations

from pathlib import Path

from modelops.history import now_iso


def notify(path: Path, event: str, message: str) -> str:
    """Append ``<time> <EVENT> <message>`` to the notifications log and return the line."""
    line = f"{now_iso()} {event.upper():<13} {message}"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")
    return line
