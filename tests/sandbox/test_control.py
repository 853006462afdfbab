"""The sandbox's parts that need no server: configs, the browser's CSP check, guards."""

from __future__ import annotations

import pytest

from sandbox import control
from sandbox.configs import Ports, render_nginx
from sandbox.faults import Faults, FaultError
from sandbox.loadgen import csp_violations, require_loopback

CSP = "default-src 'self'; script-src 'self'; report-uri /csp-report"


def test_missing_binary_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(control, "_SBIN", (str(tmp_path),))
    with pytest.raises(control.SandboxError) as exc:
        control.Sandbox.up(tmp_path / "sb")
    assert str(exc.value) == (
        "prometheus is not installed; install it with: apt-get install -y --no-install-recommends prometheus "
        "prometheus-alertmanager nginx"
    )
    assert not (tmp_path / "sb").exists()  # nothing half-written


@pytest.mark.parametrize("weight", [0, 100])
def test_nginx_leaves_out_the_server_at_the_ends(tmp_path, weight):
    conf = render_nginx(tmp_path, Ports(), weight)
    weighted = conf[conf.index("upstream weighted"):conf.index("keepalive 32")]
    assert ("18082" in weighted) == (weight == 100)
    assert ("18081" in weighted) == (weight == 0)


def test_nginx_refuses_a_weight_out_of_range(tmp_path):
    with pytest.raises(ValueError, match="weight"):
        render_nginx(tmp_path, Ports(), 101)


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


def test_load_generator_accepts_loopback():
    require_loopback("http://127.0.0.1:18080")
    require_loopback("http://localhost:18080")


def test_fault_update_is_all_or_nothing():
    faults = Faults()
    with pytest.raises(FaultError, match="error_rate: expected a number in \\[0, 1\\]"):
        faults.update({"latency_ms": 10, "error_rate": 2})
    assert faults.active() == {}
    faults.update({"latency_ms": "25"})
    assert faults.active() == {"latency_ms": 25.0}


def test_every_fault_in_the_catalogue_is_a_switch_of_the_service():
    from dataclasses import fields

    from sandbox.faults import FAULTS

    assert [f.name for f in fields(Faults)] == list(FAULTS)
