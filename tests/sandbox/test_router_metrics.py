"""The router's own series: every request nginx proxied, counted per track, status and source from
its access log; with the real sandbox, the router pack answers for both tracks with no help from
the service's own metrics."""

from __future__ import annotations

import os

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cli.main import main
from sandbox.router_metrics import RouterMetrics


def _samples(metrics: RouterMetrics) -> dict[tuple, float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(metrics.exposition().decode()) for s in family.samples}


def test_each_logged_request_is_counted_once_by_track_status_and_source(tmp_path):
    log = tmp_path / "access.log"
    log.write_bytes(b"stable 200 0.012 user\ncanary 503 0.250 user\ncanary 200 0.004 probe\nother 502 0.001 user\n"
                    b"canary 200 0.0")  # nginx mid-line: counted when the line is whole
    metrics = RouterMetrics(log)
    samples = _samples(metrics)
    requests = "golive_router_requests_total"
    assert samples[(requests, (("code", "200"), ("source", "user"), ("track", "stable")))] == 1
    assert samples[(requests, (("code", "503"), ("source", "user"), ("track", "canary")))] == 1
    assert samples[(requests, (("code", "200"), ("source", "probe"), ("track", "canary")))] == 1
    assert samples[("golive_router_log_lines_skipped_total", ())] == 1  # no track: not a request of one
    bucket = "golive_router_request_duration_seconds_bucket"
    assert samples[(bucket, (("le", "0.2"), ("track", "canary")))] == 1  # 0.004 s, not the 0.25 s one
    with open(log, "ab") as f:
        f.write(b"12 drill\n")
    samples = _samples(metrics)
    assert samples[(requests, (("code", "200"), ("source", "drill"), ("track", "canary")))] == 1
    assert samples[(requests, (("code", "200"), ("source", "user"), ("track", "stable")))] == 1  # not twice


def test_a_log_replaced_or_cut_short_is_read_from_its_start(tmp_path):
    log = tmp_path / "access.log"
    log.write_bytes(b"stable 200 0.010 user\nstable 200 0.010 user\n")
    metrics = RouterMetrics(log)
    assert metrics.read_new_lines() == 2
    replaced = tmp_path / "new.log"
    replaced.write_bytes(b"canary 500 0.010 user\n")
    os.replace(replaced, log)
    assert metrics.read_new_lines() == 1
    log.write_bytes(b"")
    assert metrics.read_new_lines() == 0
    assert RouterMetrics(tmp_path / "absent.log").read_new_lines() == 0


@pytest.mark.sandbox
def test_the_router_pack_answers_for_both_tracks_from_the_routers_log_alone(sandbox, capsys):
    prometheus = sandbox.golive_settings()["prometheus"]["url"]
    assert main(["signals", "check", "--pack", "router", "--prometheus", prometheus, "--window", "20"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in out[:2]] == ["ok    http_p95_ms", "ok    http_5xx_pct"]
    assert out[-1] == "2/2 signals answer for both tracks over 20 s"
