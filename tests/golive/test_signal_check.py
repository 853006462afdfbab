"""`golive signals check`'s rules: a signal with data for both tracks passes; one naming a metric
Prometheus has never seen is a wrong name, one that answers nothing on a track says which."""

from __future__ import annotations

from golive.settings import load_settings
from golive.signal_check import check_signals, metric_names, signal_queries, signals_check

ROUTER = load_settings({"release": "1.4.0", "policy": {"signal_pack": "router"}}).policy.catalogue()
KNOWN = ["golive_router_requests_total", "golive_router_request_duration_seconds_bucket", "up"]


def _answers(catalogue, value=1.0, **silent_tracks):
    """Every query answering `value`, but None for the signals and tracks in `silent_tracks`."""
    return {key: (None if key[1] in silent_tracks.get(key[0], ()) else value)
            for key in signal_queries(catalogue, 30)}


def test_metric_names_are_the_selected_ones_not_labels_functions_or_strings():
    query = ('1000 * histogram_quantile(0.95, sum by (le) (rate(a_bucket{track="$track",route=~"/api/{x}[y]"}'
             '[$window]))) / on(track) group_left b_total[5m] + (sum(c_total{code=~"5.."}) or vector(0)) + up')
    assert metric_names(query) == ["a_bucket", "b_total", "c_total"]


def test_queries_are_asked_per_signal_track_and_kind():
    queries = signal_queries(ROUTER, 30)
    assert set(queries) == {(name, track, kind) for name, kinds in (("http_p95_ms", ("value",)),
                                                                   ("http_5xx_pct", ("value", "bad", "total")))
                            for track in ("stable", "canary") for kind in kinds}
    assert 'track="canary"' in queries[("http_5xx_pct", "canary", "total")]
    assert "[30s]" in queries[("http_5xx_pct", "canary", "total")]


def test_every_signal_with_data_on_both_tracks_passes():
    results = check_signals(ROUTER, _answers(ROUTER, 2.5), KNOWN)
    assert [r.ok for r in results] == [True, True]
    assert results[0].line() == "ok    http_p95_ms: stable 2.5, canary 2.5"
    check = signals_check(results, 30)
    assert check.ok and check.detail == "2/2 signals answer for both tracks over 30 s"


def test_a_wrong_metric_name_is_named_with_its_signal():
    wrong = load_settings({"release": "1.4.0", "policy": {"signal_pack": "router", "signals": {"http_p95_ms": {
        "value_query": 'histogram_quantile(0.95, sum by (le) (rate(golive_router_latency_bucket{track="$track"}'
                       '[$window])))'}}}}).policy.catalogue()
    results = check_signals(wrong, _answers(wrong, http_p95_ms=("stable", "canary")), KNOWN)
    assert [r.ok for r in results] == [False, True]
    assert results[0].line() == ("FAIL  http_p95_ms: no such metric in Prometheus: golive_router_latency_bucket "
                                 "(a wrong name, or a target not scraped); no data on stable and canary")
    check = signals_check(results, 30)
    assert not check.ok and check.detail.startswith("http_p95_ms: no such metric in Prometheus")
    assert check.facts["signals"]["http_p95_ms"]["unknown_metrics"] == ["golive_router_latency_bucket"]


def test_a_known_metric_silent_on_one_track_says_which():
    result = check_signals(ROUTER, _answers(ROUTER, http_5xx_pct=("canary",)), KNOWN)[1]
    assert not result.ok and result.values == {"stable": 1.0, "canary": None}
    assert result.detail.startswith("no data on canary: its metrics exist")


def test_unknown_is_not_green_when_prometheus_does_not_answer():
    check = signals_check([], 30, "connection refused")
    assert not check.ok and check.detail == "Prometheus did not answer: connection refused"
