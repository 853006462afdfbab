"""The Prometheus tasks: reached with its certificate checked and credentials from a Secret block
only; against the real sandbox, the window of both tracks as the judge's typed input, the
preflight's checks and the observed split; against a silent port, each check one failed line."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cli.demo import demo_settings
from golive.models import SignalWindow
from golive.scenario import Scenario
from golive.settings import PolicySettings, PrometheusSettings, SettingsError, load_settings
from sandbox.processes import free_ports
from tasks.prometheus import (PrometheusAuthError, _client, check_promql, check_scrape_targets, check_traffic,
                              observe_share, prometheus_auth, query_signals)

INTERVAL = 5.0


def test_tls_is_verified_by_default_and_against_the_ca_file_when_given():
    assert _client(PrometheusSettings())._session.verify is True
    assert _client(PrometheusSettings(ca_file="/etc/ssl/our-ca.pem"))._session.verify == "/etc/ssl/our-ca.pem"
    assert _client(PrometheusSettings(tls_verify=False))._session.verify is False


@pytest.mark.parametrize(("secret", "headers", "auth"), [
    ("s3cr3t-token", {"Authorization": "Bearer s3cr3t-token"}, None),
    ({"token": "s3cr3t-token"}, {"Authorization": "Bearer s3cr3t-token"}, None),
    ({"username": "golive", "password": "pw"}, {}, ("golive", "pw")),
])
def test_credentials_come_from_the_secret_block(secret, headers, auth):
    assert prometheus_auth(secret, "prom") == (headers, auth)


@pytest.mark.parametrize("secret", ["", {"user": "x"}, 5, "two\nlines"])
def test_an_unusable_secret_names_the_block_never_the_value(secret):
    with pytest.raises(PrometheusAuthError) as exc:
        prometheus_auth(secret, "prom")
    assert str(exc.value).startswith("prometheus.auth_secret_block 'prom': expected a bearer token")
    assert "two" not in str(exc.value)


@pytest.mark.parametrize("path", ["prometheus.url", "prometheus.alertmanager_url", "target.canary_url",
                                  "target.stable_url", "target.traffic_url", "target.canary_admin_url",
                                  "target.router.control_url"])
def test_a_url_with_credentials_is_refused_without_repeating_them(path):
    *sections, field = path.split(".")
    settings: dict = {field: "https://golive:hunter2@prometheus.example:9090"}
    for section in reversed(sections):
        settings = {section: settings}
    with pytest.raises(SettingsError) as exc:
        load_settings({"release": "1.4.0", **settings})
    assert str(exc.value) == f"{path}: credentials in the URL are refused: name a Secret block instead"


def test_a_github_api_url_with_a_token_is_refused():
    with pytest.raises(SettingsError, match=r"^process\.github\.api_url: credentials in the URL are refused"):
        load_settings({"release": "1.4.0", "process": {
            "github": {"repository": "spark/trading", "api_url": "https://ghp_x@api.github.com"}}})


def test_the_secret_reaches_prometheus_as_a_header_not_in_the_url():
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the standard library's name)
            seen.append((self.path, self.headers.get("Authorization")))
            body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    (port,) = free_ports(1)
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        prometheus = PrometheusSettings(url=f"http://127.0.0.1:{port}", auth_secret_block="prom")
        _client(prometheus, load_secret=lambda block: {"username": "golive", "password": "pw"}).custom_query("up")
    finally:
        server.shutdown()
    [(path, authorization)] = seen
    assert authorization == "Basic " + base64.b64encode(b"golive:pw").decode() and "pw" not in path


@pytest.fixture(scope="module")
def on_sandbox(sandbox, tmp_path_factory):
    """Settings that reach the sandbox, once Prometheus holds a whole window of its traffic."""
    evidence = tmp_path_factory.mktemp("evidence")
    settings = load_settings(demo_settings("1.4.0", sandbox.golive_settings(), 3 * INTERVAL, INTERVAL, str(evidence)))
    deadline = time.time() + 60
    while time.time() < deadline:
        end = time.time() - 1.5
        window = query_signals.fn(settings.prometheus, settings.policy, 25, end - 3 * INTERVAL, end)
        if all(o.total for o in window.scenario.signals["http_5xx_pct"].baseline):
            break
        time.sleep(1)
    return settings


@pytest.mark.sandbox
def test_a_window_is_every_signal_of_both_tracks_per_interval_as_the_judges_typed_input(on_sandbox):
    end = time.time() - 1.5  # the last interval's samples scraped
    policy = on_sandbox.policy
    window = query_signals.fn(on_sandbox.prometheus, policy, 25, end - 3 * INTERVAL, end)
    assert window.answered and len(window.timestamps) == 3
    assert isinstance(window.scenario, Scenario)
    assert window.scenario.policy == policy.judge_policy() and window.scenario.catalogue == policy.catalogue()
    assert set(window.scenario.signals) == {s.name for s in policy.catalogue()}
    assert all(len(series.canary) == len(series.baseline) == 3 for series in window.scenario.signals.values())
    stable_requests = [o.total for o in window.scenario.signals["http_5xx_pct"].baseline]
    assert all(total is not None and total > 0 for total in stable_requests), stable_requests
    assert all("$" not in promql for tracks in window.queries.values() for kinds in tracks.values()
               for promql in kinds.values())
    assert SignalWindow.model_validate(json.loads(window.model_dump_json())).scenario == window.scenario


@pytest.mark.sandbox
def test_the_preflight_checks_pass_on_a_healthy_sandbox(on_sandbox):
    assert check_scrape_targets.fn(on_sandbox.prometheus).ok
    assert check_traffic.fn(on_sandbox.prometheus).ok
    for track in ("canary", "stable"):
        check = check_promql.fn(on_sandbox.prometheus, on_sandbox.policy, "api_p95_ms", track)
        assert check.ok and check.facts["values"]["value"] is not None, check.detail


@pytest.mark.sandbox
def test_at_weight_zero_the_canary_serves_no_user(on_sandbox):
    end = time.time() - 1.5
    share = observe_share.fn(on_sandbox.prometheus, 0, on_sandbox.policy.weight_tolerance_points, end - 10, end)
    assert share.ok and share.observed_pct == 0.0 and share.total_requests > 0


def test_a_silent_prometheus_fails_each_check_in_one_line():
    (port,) = free_ports(1)
    silent = PrometheusSettings(url=f"http://127.0.0.1:{port}")
    targets = check_scrape_targets.fn(silent)
    assert not targets.ok and targets.detail.startswith("Prometheus does not answer: ")
    promql = check_promql.fn(silent, PolicySettings(), "http_5xx_pct", "canary")
    assert not promql.ok and promql.detail.startswith("refused or unanswered: ")
    assert set(promql.facts["queries"]) == {"value", "bad", "total"}
    traffic = check_traffic.fn(silent)
    assert not traffic.ok and traffic.detail.startswith("refused or unanswered: ")
