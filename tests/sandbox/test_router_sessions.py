"""A websocket session through the router is logged when it ends, whole: counted as a session of its
track, never as a request, so that one routed before a weight change is not read as users' traffic
after it, nor its minutes as a request's latency."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from sandbox.router_metrics import RouterMetrics


def _samples(metrics: RouterMetrics) -> dict[tuple, float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(metrics.exposition().decode()) for s in family.samples}


def test_a_websocket_session_is_a_session_of_its_track_not_a_user_request(tmp_path):
    log = tmp_path / "access.log"
    log.write_bytes(b"canary 200 0.010 user\nstable 101 15.753 user\nstable 101 9.900 user\ncanary 502 0.002 user\n")
    metrics = RouterMetrics(log)
    assert metrics.read_new_lines() == 2
    samples = _samples(metrics)
    requests = "golive_router_requests_total"
    assert not [key for key in samples if key[0] == requests and ("track", "stable") in key[1]]
    assert samples[(requests, (("code", "502"), ("source", "user"), ("track", "canary")))] == 1  # a refused upgrade
    assert samples[("golive_router_upgraded_sessions_total", (("source", "user"), ("track", "stable")))] == 2
    assert samples[("golive_router_request_duration_seconds_count", (("track", "canary"),))] == 2
    assert ("golive_router_request_duration_seconds_count", (("track", "stable"),)) not in samples
