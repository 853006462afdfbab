"""The load generator: loopback only, and what a browser would report under the page's policy."""

from __future__ import annotations

import pytest

from sandbox.loadgen import csp_violations, require_loopback

CSP = "default-src 'self'; script-src 'self'; report-uri /csp-report"


def test_browser_reports_inline_and_foreign_scripts_only():
    page = ('<script src="/static/app.js"></script><script src="https://cdn.widgets.example/x.js"></script>'
            "<script>alert(1)</script>")
    reports = csp_violations(page, CSP)
    assert [r["blocked-uri"] for r in reports] == ["https://cdn.widgets.example/x.js", "inline"]
    assert csp_violations('<script src="/static/app.js"></script>', CSP) == []
    assert csp_violations("<script>alert(1)</script>", "script-src 'self' 'unsafe-inline'") == []


@pytest.mark.parametrize("url", ["http://10.0.0.5:8080", "http://example.com", "http://192.168.1.2"])
def test_load_generator_refuses_anything_but_loopback(url):
    with pytest.raises(SystemExit, match="not a loopback address"):
        require_loopback(url)


@pytest.mark.parametrize("url", ["http://127.0.0.1:18080", "http://localhost:18080", "http://127.0.0.2:80",
                                 "http://[::1]:18080"])
def test_load_generator_accepts_loopback(url):
    assert require_loopback(url) is None  # refusing would raise SystemExit
