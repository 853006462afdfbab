"""A critical alert for the service rolls the canary back, on the real sandbox's Prometheus and
Alertmanager."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from golive import layout
from golive.rules import build_rules, options_for, render_rules
from golive.settings import load_settings
from tests.flows.helpers import EvidenceWatcher, flow_settings, stage_started

pytestmark = pytest.mark.sandbox


@pytest.fixture
def fast_rules(sandbox, tmp_path):
    """golive's rules for API latency, over 10-second windows firing after 2 s, loaded into the
    sandbox's Prometheus. The latency alert alone: over 10 seconds a count signal's alert fires by
    chance (two idempotency conflicts among a few keyed requests are "far over" 1 %), and the
    error-budget burn alerts look back hours, over every earlier test's 5xx faults on this shared
    sandbox; either would fire before the alert this test is about."""
    settings = load_settings({"release": "1.4.0", **sandbox.golive_settings()})
    latency = tuple(s for s in settings.policy.catalogue() if s.name == "api_p95_ms")
    path = tmp_path / "golive-rules.yml"
    path.write_text(render_rules(build_rules(latency, options_for(settings, window_seconds=10, alert_for_seconds=2,
                                                                  burn_windows=()))))
    sandbox.load_rules(path)
    try:
        yield path
    finally:
        # Mend the canary and let the alert resolve while its rule still runs: Alertmanager would
        # otherwise keep it firing for minutes, and the next go-live on this sandbox would see it.
        sandbox.clear_faults("canary")
        deadline = time.monotonic() + 120
        while _firing(sandbox) and time.monotonic() < deadline:
            time.sleep(1)
        sandbox.load_rules(None)
        assert _firing(sandbox) == [], "the critical alert did not resolve: later go-lives would see it"


def _firing(sandbox) -> list:
    answer = httpx.get(f"{sandbox.alertmanager_url}/api/v2/alerts", params={"active": "true"}, timeout=5)
    return answer.json()


def test_a_critical_alert_rolls_back_with_critical_alert_and_fails_the_criterion(
        sandbox, canary_weight, fast_rules, signing_key, tmp_path):
    # The judge is told to look away from latency (threshold 5 s): only the alert can stop this canary.
    settings = flow_settings(sandbox, signing_key, tmp_path, [25, 100], interval=3.0, policy={
        "dwell_seconds": 60, "final_dwell_seconds": 9, "signals": {"api_p95_ms": {"threshold": 5000}}})
    folder = tmp_path / "v1.4.0"
    with EvidenceWatcher(folder, stage_started(25), lambda: sandbox.set_faults("canary", {"latency_ms": 600})):
        from flows.go_live import go_live

        state = go_live("1.4.0", settings=settings, return_state=True)

    assert (state.type.value, state.name) == ("FAILED", "RolledBack")
    assert "critical-alert" in state.message
    assert sandbox.weight() == 0
    stage = json.loads((folder / layout.stage_record(25)).read_text())
    assert stage["triggers"] == ["critical-alert"]
    assert any("GoLiveSignalFarOverThreshold (api_p95_ms, canary)" in a for a in stage["critical_alerts"])
    criteria = json.loads((folder / layout.SUCCESS_CRITERIA).read_text())
    assert criteria["no_critical_alerts"]["ok"] is False
    assert "25%:GoLiveSignalFarOverThreshold (api_p95_ms, canary)" in criteria["no_critical_alerts"]["fired"]


def test_an_alert_source_that_never_answers_holds_the_gate_and_rolls_back_never_live(
        sandbox, canary_weight, signing_key, tmp_path):
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # Alertmanager "down all along": nothing listens here
    settings = flow_settings(sandbox, signing_key, tmp_path, [100], interval=3.0,
                             prometheus={"alertmanager_url": f"http://127.0.0.1:{port}"})
    from flows.go_live import go_live

    state = go_live("1.4.0", settings=settings, return_state=True)

    assert (state.type.value, state.name) == ("FAILED", "RolledBack")
    assert sandbox.weight() == 0
    stage = json.loads((tmp_path / "v1.4.0" / layout.stage_record(100)).read_text())
    assert stage["triggers"] == ["metrics-unreachable"]  # held on it for the hold budget, never proceeded
    assert stage["alerts_unread"] >= 3 and all(d["decision"] != "proceed" for d in stage["decisions"])
