"""Critical alerts as the canary's trigger: read from Alertmanager's API v2 (or Prometheus'
ALERTS), first against a stand-in transport, then end to end in the sandbox: a canary fault far
over its threshold fires the rule in the real Prometheus, the real Alertmanager holds it, the
task reports it, and it clears once the fault is gone."""

from __future__ import annotations

import time

import httpx
import pytest

from golive.rules import CRITICAL_ALERT, RuleOptions, build_rules, render_rules
from golive.settings import load_settings
from golive.signals import CATALOGUE
from tasks.alerts import AlertsUnreadable, critical_alerts_firing, from_alertmanager

FIRING = {
    "labels": {"alertname": CRITICAL_ALERT, "severity": "critical", "service": "spark", "track": "canary",
               "signal": "api_p95_ms"},
    "annotations": {"summary": "spark canary: API latency p95 2x over its rule (<= 200 ms)"},
    "startsAt": "2026-01-01T00:00:00Z", "status": {"state": "active"},
}


def _alertmanager(answer: httpx.Response, seen: list[httpx.Request]) -> httpx.Client:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer
    return httpx.Client(base_url="http://alertmanager.test", transport=httpx.MockTransport(handle))


def test_alertmanager_is_asked_for_the_services_active_critical_alerts():
    seen: list[httpx.Request] = []
    alerts = from_alertmanager(_alertmanager(httpx.Response(200, json=[FIRING]), seen), "spark")
    assert [(a.name, a.service, a.track, a.signal) for a in alerts] == [
        (CRITICAL_ALERT, "spark", "canary", "api_p95_ms")]
    assert alerts[0].summary.startswith("spark canary")
    params = seen[0].url.params
    assert params.get_list("filter") == ['severity="critical"', 'service="spark"']
    assert (params["active"], params["silenced"], params["inhibited"]) == ("true", "false", "false")


@pytest.mark.parametrize(("since", "started"), [
    ("2026-01-01T00:00:00.473Z", 1767225600.473),  # Alertmanager's startsAt
    ("2026-01-01T00:00:00.123456789Z", 1767225600.123456),  # Prometheus' activeAt, in nanoseconds
    ("2026-01-01T01:00:00+01:00", 1767225600.0),
    (None, None), ("yesterday", None),
])
def test_an_alert_says_when_it_began_firing_or_nothing(since, started):
    alert = from_alertmanager(_alertmanager(httpx.Response(200, json=[{**FIRING, "startsAt": since}]), []), "spark")[0]
    assert alert.started == (pytest.approx(started) if started else None)


@pytest.mark.parametrize("answer", [httpx.Response(503, text="not ready"), httpx.Response(200, text="<html>")])
def test_an_alertmanager_that_does_not_answer_is_never_no_alerts(answer):
    with pytest.raises(AlertsUnreadable, match="Alertmanager http://alertmanager.test"):
        from_alertmanager(_alertmanager(answer, []), "spark")


def _wait_for(condition, timeout: float, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(every)


@pytest.fixture
def fast_rules(sandbox, tmp_path):
    """The sandbox's Prometheus on the latency rules with a 10 s window and a 2 s `for`, taken out
    afterwards. Only latency's: over 10 s a count signal's alert fires by chance, and burn alerts
    look back hours over earlier tests' faults; Alertmanager would hold either into the next
    go-live on this shared sandbox."""
    path = tmp_path / "rules.yml"
    options = RuleOptions(window_seconds=10, alert_for_seconds=2, burn_windows=())
    path.write_text(render_rules(build_rules(tuple(s for s in CATALOGUE if s.name == "api_p95_ms"), options)))
    sandbox.load_rules(path)
    try:
        yield path
    finally:
        sandbox.load_rules(None)


@pytest.mark.sandbox
def test_a_canary_far_over_its_threshold_fires_a_critical_alert_the_task_reports(sandbox, canary_weight,
                                                                                 fast_rules):
    prometheus = load_settings({**sandbox.golive_settings(), "release": "1.4.0"}).prometheus
    via_prometheus = prometheus.model_copy(update={"alertmanager_url": None})
    assert prometheus.alertmanager_url == sandbox.alertmanager_url

    def latency_alerts():
        return [a for a in critical_alerts_firing.fn(prometheus, "spark") if a.signal == "api_p95_ms"]

    # Only the latency alert is known to be quiet here: Alertmanager may still hold another
    # test's alert on this shared sandbox until its end time passes.
    assert latency_alerts() == []
    sandbox.set_faults("canary", {"latency_ms": 600})
    try:
        # Alone it shows within about 5 s; in whole runs on two busy cores it has taken about 30 s
        # at times, and once over 40 (the cause not found: the window, `for` and the evaluation
        # add up to 5 s).
        fired = _wait_for(latency_alerts, timeout=90)
        assert [(a.name, a.track, a.severity) for a in fired] == [(CRITICAL_ALERT, "canary", "critical")]
        assert "API latency p95" in fired[0].summary and fired[0].since
        assert any(a.signal == "api_p95_ms" for a in critical_alerts_firing.fn(via_prometheus, "spark"))
        assert critical_alerts_firing.fn(prometheus, "another-service") == []
    finally:
        sandbox.clear_faults("canary")
    # Prometheus sends the resolution once the 10 s window no longer holds slow requests.
    assert _wait_for(lambda: not latency_alerts(), timeout=40)
