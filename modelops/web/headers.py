"""Security headers on every frontend response, and the curl hint's address without the Host header.

The page's one script is ``static/score.js`` (the upload's summary, posted back here); its styles
come from ``static/`` only (a meter's width is an SVG rect's attribute, not a style), and its chart
is inline SVG, so the policy allows exactly that: no inline script or style, nothing from elsewhere. It may not be
framed (``frame-ancestors 'none'`` and ``X-Frame-Options`` for older browsers), forms post only
here, and responses are never content-sniffed. A request id made for a failure goes out too.

The page's curl hint used to echo the request's Host header (``request.host_url``): any client
could choose the address the page tells users to send their data to. It now names the host
only when ``TRUSTED_HOSTS`` (environment, comma-separated) lists it, which Flask then enforces
(other hosts get 400); else the hint says ``localhost`` with the port this server listens on.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, g, request

POLICY = ("default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; "
          "img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def init_app(app: Flask) -> None:
    app.after_request(_secure)


def _secure(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if "request_id" in g:
        response.headers["X-Request-Id"] = g.request_id
    return response


def curl_base() -> str:
    """The frontend's base URL for the page's curl hint, never taken from an unchecked Host header."""
    if current_app.config.get("TRUSTED_HOSTS"):
        return request.host_url  # Flask checked the host against TRUSTED_HOSTS
    port = request.environ.get("SERVER_PORT") or "5002"
    return f"http://localhost:{port}/"
