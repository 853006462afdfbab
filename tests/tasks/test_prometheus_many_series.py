"""A query that answers several series is never judged on one of them: the signals check (and so
the preflight) names it, a stage's look has no data for it rather than the first series' numbers,
and the traffic split is not observed on it."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from golive.settings import PolicySettings, PrometheusSettings
from golive.signal_check import ManySeries, check_signals
from golive.signals import TRACKS
from tasks.prometheus import ask_signal_queries, check_promql, check_signal_data, observe_share, query_signals

# A value query that forgot to aggregate: one series per route.
PER_ROUTE = 'rate(spark_http_requests_total{track="$track"}[$window])'


@pytest.fixture
def prometheus():
    """A Prometheus on a free loopback port answering a query that starts with `rate(` with two
    series (1 and 99, the first one healthy), any other with one series of 1."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the standard library's name)
            url = urlparse(self.path)
            params = parse_qs(url.query)
            values = ["1", "99"] if params.get("query", [""])[0].startswith("rate(") else ["1"]
            if url.path.startswith("/api/v1/label/"):
                data = ["spark_http_requests_total", "golive_router_requests_total"]
            elif "step" in params:
                start, end, step = (float(params[k][0].rstrip("s")) for k in ("start", "end", "step"))
                stamps = [start + k * step for k in range(int((end - start) / step + 1e-6) + 1)]
                data = {"resultType": "matrix", "result": [
                    {"metric": {"route": str(i)}, "values": [[t, v] for t in stamps]} for i, v in enumerate(values)]}
            else:
                data = {"resultType": "vector", "result": [{"metric": {"route": str(i)}, "value": [0, v]}
                                                           for i, v in enumerate(values)]}
            body = json.dumps({"status": "success", "data": data}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield PrometheusSettings(url=f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()


POLICY = PolicySettings(signal_pack="router", signals={"http_p95_ms": {"value_query": PER_ROUTE}}, interval_seconds=5)


def test_the_signals_check_names_a_query_answering_several_series(prometheus):
    answers, _ = ask_signal_queries(prometheus, POLICY.catalogue(), 30)
    assert answers[("http_p95_ms", "canary", "value")] == ManySeries(2)
    p95, errors = check_signals(POLICY.catalogue(), answers, None)
    assert not p95.ok and errors.ok
    several = "its value query answers 2 series, not one (aggregate them: sum, max, …)"
    assert p95.line() == f"FAIL  http_p95_ms: {several} on stable; {several} on canary"
    check = check_signal_data.fn(prometheus, POLICY, 30)
    assert not check.ok and check.detail.startswith("http_p95_ms: its value query answers 2 series, not one")


def test_the_preflights_promql_check_refuses_it_too(prometheus):
    check = check_promql.fn(prometheus, POLICY, "http_p95_ms", "canary")
    assert not check.ok and "its value query answers 2 series, not one" in check.detail


def test_a_look_has_no_data_for_it_never_the_first_series(prometheus):
    end = time.time()
    window = query_signals.fn(prometheus, POLICY, 25, end - 10, end)
    assert window.answered
    p95 = window.scenario.signals["http_p95_ms"]
    assert [o.value for o in [*p95.canary, *p95.baseline]] == [None] * 4
    errors = window.scenario.signals["http_5xx_pct"]
    assert all(o.value == 1 for o in [*errors.canary, *errors.baseline])
    assert set(TRACKS) == set(window.queries["http_p95_ms"])


def test_the_traffic_split_is_not_observed_on_a_query_answering_several_series(prometheus):
    per_code = prometheus.model_copy(update={"traffic_canary_query": 'rate(requests_total{track="canary"}[$window])'})
    share = observe_share.fn(per_code, 100, 2.0, 1000.0, 1010.0)
    assert share.observed_pct is None and not share.ok
    assert observe_share.fn(prometheus, 100, 2.0, 1000.0, 1010.0).ok  # one series each: 1 of 1 on the canary
