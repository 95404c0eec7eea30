"""What one REST request may cost the local server: its body, its rows, its nesting.

TF Serving has no such limits (it is sized by whoever runs it); this stand-in runs beside the
trainer and the frontend on one machine, so one client's request must not take its memory. The
defaults sit a step above what the frontend forwards (``MAX_CONTENT_LENGTH`` 1 MiB,
``MAX_INSTANCES`` 1000 rows per request) and above ``verify.rows``' default, so no request of the
project's own is refused; ``--rest_api_max_request_bytes`` and ``--rest_api_max_instances`` raise
them. A request over a limit is 413 saying which flag; a malformed ``Content-Length`` is 400.
"""

from __future__ import annotations

from typing import Any

from modelops.core.errors import ServableError

DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_INSTANCES = 10_000
MAX_DEPTH = 32  # JSON nesting levels: a tensor's rank plus the request's own objects (numpy's ndarray limit)
LISTEN_BACKLOG = 1024  # connections the kernel queues before the server accepts them (cheroot's default: 5)


class RequestTooLarge(ServableError):
    """A request over a limit: 413 (not a TF Serving status: it has no limit), saying how to fit."""

    def __init__(self, what: str, flag: str = "--rest_api_max_request_bytes"):
        super().__init__("RESOURCE_EXHAUSTED", f"{what} ({flag}); send fewer instances per request")


def content_length(environ: dict[str, Any]) -> int:
    """The declared body length; 400 for one that is not a plain non-negative number."""
    text = (environ.get("CONTENT_LENGTH") or "0").strip()
    if not text.isdigit() or not text.isascii():
        raise ServableError("INVALID_ARGUMENT", "Malformed request: the Content-Length header must be a "
                                                "non-negative whole number of bytes")
    return int(text)


def check_rows(request: dict[str, Any], limit: int) -> None:
    """413 when the predict request holds more than ``limit`` rows (``instances``, or the first
    dimension of any columnar ``inputs``)."""
    instances, inputs = request.get("instances"), request.get("inputs")
    if isinstance(instances, list):
        rows = len(instances)
    elif isinstance(inputs, dict):
        rows = max((len(v) for v in inputs.values() if isinstance(v, list)), default=0)
    else:
        rows = len(inputs) if isinstance(inputs, list) else 0
    if rows > limit:
        raise RequestTooLarge(f"{rows} instances, more than {limit} per request", "--rest_api_max_instances")


def check_depth(document: Any, limit: int = MAX_DEPTH) -> None:
    """400 when arrays and objects nest deeper than ``limit`` anywhere in ``document`` (walked without
    recursion, stopping at the first too deep), before any converter recurses into it."""
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is None:
            continue
        if depth > limit:
            raise ServableError("INVALID_ARGUMENT", f"JSON Parse error: nested too deeply (more than {limit} levels)")
        stack.extend((child, depth + 1) for child in children if isinstance(child, (list, dict)))
