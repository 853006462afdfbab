"""Prometheus is reached with its certificate checked and credentials from a Secret block only."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from golive.settings import SettingsError, load_settings
from sandbox.processes import free_ports
from tasks.prometheus import PrometheusAuthError, _client, prometheus_auth


def _settings(**changes):
    return load_settings({"release": "1.4.0", **changes})


def test_tls_is_verified_by_default_and_against_the_ca_file_when_given():
    assert _client(_settings())._session.verify is True
    assert _client(_settings(prometheus_ca_file="/etc/ssl/our-ca.pem"))._session.verify == "/etc/ssl/our-ca.pem"
    assert _client(_settings(prometheus_tls_verify=False))._session.verify is False


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
    assert str(exc.value).startswith("prometheus_auth_secret_block 'prom': expected a bearer token")
    assert "two" not in str(exc.value)


@pytest.mark.parametrize("field", ["prometheus_url", "canary_url", "traffic_url"])
def test_a_url_with_credentials_is_refused_without_repeating_them(field):
    with pytest.raises(SettingsError) as exc:
        _settings(**{field: "https://golive:hunter2@prometheus.example:9090"})
    assert str(exc.value) == f"{field}: credentials in the URL are refused: name a Secret block instead"


def test_a_github_api_url_with_a_token_is_refused():
    with pytest.raises(SettingsError, match=r"^github\.api_url: credentials in the URL are refused"):
        _settings(github={"repository": "spark/trading", "api_url": "https://ghp_x@api.github.com"})


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
        settings = _settings(prometheus_url=f"http://127.0.0.1:{port}", prometheus_auth_secret_block="prom")
        _client(settings, load_secret=lambda block: {"username": "golive", "password": "pw"}).custom_query("up")
    finally:
        server.shutdown()
    [(path, authorization)] = seen
    assert authorization == "Basic " + base64.b64encode(b"golive:pw").decode() and "pw" not in path
