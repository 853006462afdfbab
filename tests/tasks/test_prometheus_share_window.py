"""The observed traffic split never counts from before the start it is given: requests counted
earlier may have been routed by the weight before the change."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from golive.settings import PrometheusSettings
from tasks.prometheus import observe_share


@pytest.fixture
def prometheus():
    """A Prometheus on a free loopback port answering every instant query with 40; the queries asked."""
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the standard library's name)
            asked.append(parse_qs(urlparse(self.path).query)["query"][0])
            body = json.dumps({"status": "success", "data": {"resultType": "vector",
                                                             "result": [{"metric": {}, "value": [0, "40"]}]}})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *_args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield PrometheusSettings(url=f"http://127.0.0.1:{server.server_port}"), asked
    finally:
        server.shutdown()


def test_the_split_window_is_rounded_down_never_reaching_before_its_start(prometheus):
    settings, asked = prometheus
    share = observe_share.fn(settings, 100, 2.0, 1000.0, 1004.9)
    assert share.window_seconds == 4 and share.ok
    assert asked and all("[4s]" in query for query in asked)


def test_a_window_too_short_to_count_asks_nothing_and_observes_no_share(prometheus):
    settings, asked = prometheus
    share = observe_share.fn(settings, 100, 2.0, 1000.0, 1001.5)
    assert share.observed_pct is None and not share.ok and share.total_requests == 0
    assert asked == []
