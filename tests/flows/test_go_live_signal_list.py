"""A real go-live judged on a list of three signals: the router's two (from nginx's log, no metric of
the service) and one of the service's own, added in the settings. The war room, the success
criteria and the one-liner count three, and the traffic split is read from the router's counts."""

from __future__ import annotations

import json

import pytest

from golive import layout
from tests.flows.helpers import flow_settings

pytestmark = pytest.mark.sandbox

LOOP_LAG = {"kind": "quantile", "rule": "max", "threshold": 50, "unit": "ms", "column": "lag",
            "value_query": "1000 * histogram_quantile(0.95, sum by (le) ("
                           'rate(spark_event_loop_lag_seconds_bucket{track="$track"}[$window])))'}


def test_a_go_live_judged_on_three_signals_goes_live_and_counts_three(sandbox, canary_weight, signing_key, tmp_path):
    from flows.go_live import go_live

    settings = flow_settings(sandbox, signing_key, tmp_path, [100],
                             policy={"signal_pack": "router", "signals": {"loop_lag_p95_ms": LOOP_LAG}})
    state = go_live("1.4.0", settings=settings, return_state=True)
    assert (state.type.value, state.name) == ("COMPLETED", "Live"), state.message

    folder = tmp_path / "v1.4.0"
    stage = json.loads((folder / layout.stage_record(100)).read_text())
    assert list(stage["decisions"][-1]["signals"]) == ["http_p95_ms", "http_5xx_pct", "loop_lag_p95_ms"]
    rows = json.loads((folder / layout.WAR_ROOM_JSON).read_text())
    assert rows[-1]["columns"] == ["p95", "5xx%", "lag"]
    assert (folder / layout.WAR_ROOM_MD).read_text().splitlines()[0] == "| Time | Stage | p95 | 5xx% | lag | Decision |"
    assert (folder / layout.RELEASE_ONELINER).read_text().strip().endswith("3/3 green")
    criteria = json.loads((folder / layout.SUCCESS_CRITERIA).read_text())
    assert criteria["each_stage_green_at_proceed"]["ok"] and criteria["final_signals_green"]["ok"]
    preflight = json.loads((folder / layout.preflight_check("signal_data")).read_text())
    assert preflight["ok"] and preflight["detail"].startswith("3/3 signals answer for both tracks")
    recorded = json.loads((folder / layout.SETTINGS).read_text())
    assert recorded["prometheus"]["traffic_canary_query"] == (
        'sum(increase(golive_router_requests_total{source="user",track="canary"}[$window]))')
    share = json.loads((folder / layout.traffic_share(100)).read_text())
    # Counts of increase() are extrapolated: all of them on the canary reads 100 within float rounding.
    assert share["ok"] and share["canary_requests"] > 0 and share["observed_pct"] == pytest.approx(100)
