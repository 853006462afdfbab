"""The Prometheus tasks: reached with its certificate checked and credentials from a Secret block
only; a look's queries asked at once, within one timeout however silent Prometheus is; against
the real sandbox, the window of both tracks as the judge's typed input, the preflight's checks and
the observed split; against a silent port, each check one failed line."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from requests import RequestException

from cli.demo import demo_settings
from golive.models import SignalWindow
from golive.scenario import Scenario
from golive.settings import PolicySettings, PrometheusSettings, SettingsError, load_settings
from sandbox.processes import free_ports
from tasks import secret_blocks
from tasks.prometheus import (QUERIES_IN_FLIGHT, PrometheusAuthError, PrometheusTimeout, _client, check_promql,
                              check_scrape_targets, check_traffic, look_timeout, observe_share, query_signals)
from tasks.secret_blocks import block_credentials

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
def test_credentials_come_from_the_secret_block(secret, headers, auth, monkeypatch):
    monkeypatch.setattr(secret_blocks, "read_secret", {"prom": secret}.__getitem__)
    assert block_credentials("prometheus.auth_secret_block", "prom") == (headers, auth)


@pytest.mark.parametrize("secret", ["", {"user": "x"}, 5, "two\nlines"])
def test_an_unusable_secret_names_the_block_never_the_value(secret, monkeypatch):
    monkeypatch.setattr(secret_blocks, "read_secret", {"prom": secret}.__getitem__)
    with pytest.raises(PrometheusAuthError) as exc:
        _client(PrometheusSettings(auth_secret_block="prom"))
    assert str(exc.value).startswith("prometheus.auth_secret_block 'prom': expected a bearer token")
    assert "two" not in str(exc.value)


def test_a_missing_secret_block_is_one_line_naming_the_setting_and_the_block(monkeypatch):
    def missing(block):
        raise ValueError(f"Unable to find block document named {block} for block type secret")

    monkeypatch.setattr(secret_blocks, "read_secret", missing)
    with pytest.raises(PrometheusAuthError, match=r"^prometheus.auth_secret_block 'prom': Unable to find block"):
        _client(PrometheusSettings(auth_secret_block="prom"))


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


def test_the_secret_reaches_prometheus_as_a_header_not_in_the_url(monkeypatch):
    monkeypatch.setattr(secret_blocks, "read_secret", {"prom": {"username": "golive", "password": "pw"}}.__getitem__)
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
        _client(prometheus).custom_query("up")
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
def test_at_weight_zero_the_canary_serves_no_user(on_sandbox, canary_weight):
    canary_weight(0)  # the worker's sandbox may come from a test that left the canary serving moments ago
    set_at = time.time()
    time.sleep(6 + 1.5)  # a window of requests all routed at weight 0, and its last samples scraped
    share = observe_share.fn(on_sandbox.prometheus, 0, on_sandbox.policy.weight_tolerance_points,
                             set_at + 1, set_at + 6)
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


class _FakePrometheus:
    """A Prometheus on a free loopback port that answers every range query with 1 at each step
    after `delay` seconds, or never (`silent`); it counts the queries and the most in flight."""

    def __init__(self, delay: float = 0.0, silent: bool = False):
        self.queries: list[str] = []
        self.in_flight = self.most_in_flight = 0
        self.released = threading.Event()
        lock, fake = threading.Lock(), self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the standard library's name)
                params = parse_qs(urlparse(self.path).query)
                with lock:
                    fake.queries.append(params["query"][0])
                    fake.in_flight += 1
                    fake.most_in_flight = max(fake.most_in_flight, fake.in_flight)
                try:
                    fake.released.wait(60 if silent else delay)
                    if silent:
                        return
                    start, end, step = (float(params[k][0].rstrip("s")) for k in ("start", "end", "step"))
                    values = [[start + k * step, "1"] for k in range(int((end - start) / step + 1e-6) + 1)]
                    body = json.dumps({"status": "success", "data": {"resultType": "matrix",
                                                                     "result": [{"metric": {}, "values": values}]}})
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(body.encode())
                finally:
                    with lock:
                        fake.in_flight -= 1

            def log_message(self, *args):
                pass

        (port,) = free_ports(1)
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.settings = PrometheusSettings(url=f"http://127.0.0.1:{port}")
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


def _queries_per_look(policy: PolicySettings) -> int:
    return 2 * sum(3 if sig.has_counts else 1 for sig in policy.catalogue())


def test_a_look_asks_every_query_of_both_tracks_at_once_and_reads_one_window():
    fake, policy = _FakePrometheus(delay=0.2), PolicySettings(interval_seconds=5)
    end = time.time()
    try:
        window = query_signals.fn(fake.settings, policy, 25, end - 2 * 5, end)
    finally:
        fake.close()
    assert len(fake.queries) == _queries_per_look(policy)
    assert 1 < fake.most_in_flight <= QUERIES_IN_FLIGHT
    assert window.answered and len(window.timestamps) == 2
    assert set(window.scenario.signals) == {s.name for s in policy.catalogue()}
    assert all(o.value == 1 for series in window.scenario.signals.values() for o in [*series.canary, *series.baseline])
    assert sorted(window.queries["http_5xx_pct"]) == ["canary", "stable"]


def test_a_silent_prometheus_costs_a_look_one_timeout_and_the_queries_not_yet_asked_are_dropped():
    fake, policy = _FakePrometheus(silent=True), PolicySettings(interval_seconds=2)
    end = time.time()
    started = time.monotonic()
    try:
        with pytest.raises((PrometheusTimeout, RequestException)):
            query_signals.fn(fake.settings, policy, 25, end - 2, end)
        elapsed = time.monotonic() - started
        time.sleep(0.5)  # a dropped query would have reached the server by now
        asked = len(fake.queries)
    finally:
        fake.close()
    assert look_timeout(policy.interval_seconds) == 2.0
    assert elapsed < 3 * look_timeout(policy.interval_seconds)  # one timeout, not one per query
    assert asked <= QUERIES_IN_FLIGHT < _queries_per_look(policy)


def test_a_look_waits_one_interval_within_its_bounds():
    assert [look_timeout(s) for s in (1, 5, 60)] == [2.0, 5.0, 10.0]
