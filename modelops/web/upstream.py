"""What a client is told when TF Serving fails: that it is unavailable, and a request id.

The detail (serving's address, the error) goes to the frontend's log under that id, never to the
client: before, ``/predict``, ``/readyz`` and the page said ``TF Serving at http://... is not
reachable``, credentials in ``TF_HOST`` included. The id also goes out in ``X-Request-Id``
(web/headers.py), so a user's report can be matched with the log line.
"""

from __future__ import annotations

import uuid

from flask import current_app, g

from modelops.core.errors import ModelNotLoaded, ServingError, ServingTimeout
from modelops.core.version_schema import SchemaUnreadable


def request_id() -> str:
    """This request's id: made on first use, kept for the request."""
    if "request_id" not in g:
        g.request_id = uuid.uuid4().hex[:16]
    return str(g.request_id)


def public_message(exc: ServingError) -> str:
    """The client's message for ``exc``; the detail is logged with the request id."""
    rid = request_id()
    current_app.logger.warning("request %s: %s", rid, exc)
    if isinstance(exc, ModelNotLoaded):
        return (f"TF Serving is unavailable: no model {current_app.config['MODEL_NAME']!r} loaded yet; "
                f"train and promote one (python retrain_pipeline.py) and retry in a few seconds (request id {rid})")
    if isinstance(exc, SchemaUnreadable):  # the frontend's own trouble: serving answers, and says nothing secret
        return f"{exc} (request id {rid})"
    if isinstance(exc, ServingTimeout):
        return f"TF Serving is unavailable: it did not answer in time; retry later (request id {rid})"
    return f"TF Serving is unavailable; retry later (request id {rid})"
