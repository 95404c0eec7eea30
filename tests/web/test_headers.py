"""Issue 33 finding 6 (frontend): security headers everywhere, and no Host header echoed in the page."""

from __future__ import annotations

import pytest

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.mark.parametrize(("method", "path", "kwargs"), [
    ("get", "/", {"headers": {"Accept": BROWSER_ACCEPT}}),
    ("post", "/predict", {"json": {"instances": [[1.0, 2.0]]}}),
    ("post", "/predict", {"json": {"instances": "nope"}}),
    ("get", "/healthz", {}),
    ("get", "/metrics", {}),
    ("get", "/static/style.css", {}),
    ("get", "/no-such-page", {}),
])
def test_every_response_forbids_framing_sniffing_foreign_scripts_and_referrers(client, method, path, kwargs):
    r = getattr(client, method)(path, **kwargs)
    policy = r.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy  # no inline script, no inline style
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "no-referrer"


def test_the_curl_hint_does_not_echo_a_clients_host_header(client):
    page = client.get("/", headers={"Accept": BROWSER_ACCEPT, "Host": "phish.example"}).get_data(as_text=True)
    assert "phish.example" not in page
    assert "curl -X POST http://localhost:" in page


def test_trusted_hosts_are_named_in_the_hint_and_other_hosts_refused(make_app):
    client = make_app(TRUSTED_HOSTS=["frontend.example"]).test_client()
    page = client.get("/", headers={"Accept": BROWSER_ACCEPT, "Host": "frontend.example"}).get_data(as_text=True)
    assert "curl -X POST http://frontend.example/predict" in page
    r = client.get("/", headers={"Host": "phish.example"})
    assert r.status_code == 400 and "error" in r.json
