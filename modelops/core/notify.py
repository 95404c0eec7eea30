"""Human-readable decision lines in ``notifications.log``, and an optional webhook.

With ``NOTIFY_WEBHOOK_URL`` set, each line is also POSTed as JSON: a Slack-compatible ``text``
plus the structured ``record`` (the history record of the decision). The webhook has a short
timeout and can never fail a run: a failed delivery is written to stderr and, as a
``WEBHOOK-FAILED`` line, to ``notifications.log``. Neither can an unwritable log: the line then
goes to stderr (the history stays the record of truth). The URL is never logged beyond its
host (Slack-style URLs carry a secret in the path).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from modelops.core.timestamps import now_iso

WEBHOOK_ENV = "NOTIFY_WEBHOOK_URL"
WEBHOOK_TIMEOUT_SECONDS = 3.0


def notify(path: Path, event: str, message: str, record: dict[str, Any] | None = None) -> str:
    """Append ``<time> <EVENT> <message>`` to the notifications log, post it, return the line."""
    line = _line(event, message)
    _append(path, line)
    url = os.environ.get(WEBHOOK_ENV, "").strip()
    if url:
        failure = _post(url, {"text": line, "event": event, "message": message, "record": record})
        if failure:
            print(f"warning: {failure}", file=sys.stderr)
            _append(path, _line("webhook-failed", failure))
    return line


def _line(event: str, message: str) -> str:
    return f"{now_iso()} {event.upper():<13} {message}"


def _append(path: Path, line: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
    except OSError as exc:
        print(f"warning: could not write to {path} ({exc.strerror or exc}): {line}", file=sys.stderr)


def _post(url: str, payload: dict[str, Any]) -> str | None:
    """POST the payload; return what went wrong, or None when delivered."""
    parts = urlsplit(url)
    where = f"{parts.scheme}://{parts.netloc}" if parts.netloc else "an invalid URL"
    try:
        response = requests.post(url, json=payload, timeout=WEBHOOK_TIMEOUT_SECONDS)
    except requests.RequestException as exc:
        return f"{payload['event']} notification not delivered to the webhook at {where} ({type(exc).__name__})"
    if response.status_code >= 300:
        return f"{payload['event']} notification not delivered to the webhook at {where} (HTTP {response.status_code})"
    return None
