"""Alertmanager's webhook notifications (golive.alert_webhook): which alerts act, which go-live
they end, and notifications that are not Alertmanager's shape."""

from __future__ import annotations

import pytest

from golive.alert_webhook import WebhookRefused, acting_alerts, go_live_to_end, rollback_reason
from golive.fencing import Fence, FenceHolder


def _notification(*alerts: dict) -> dict:
    """Alertmanager's documented webhook body (version 4)."""
    return {"version": "4", "groupKey": "{}:{alertname=\"x\"}", "truncatedAlerts": 0, "status": "firing",
            "receiver": "golive", "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
            "externalURL": "http://127.0.0.1:9093", "alerts": list(alerts)}


def _alert(status="firing", **labels) -> dict:
    return {"status": status, "labels": {"alertname": "GoLiveSignalFarOverThreshold", "severity": "critical",
                                         "service": "spark", **labels},
            "annotations": {"summary": "far over"}, "startsAt": "2026-12-04T09:00:00.5Z",
            "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": "abc"}


def test_critical_firing_alerts_of_the_canary_or_the_service_act():
    acting = acting_alerts(_notification(
        _alert(signal="api_p95_ms", track="canary"),
        _alert(alertname="GoLiveErrorBudgetBurn"),  # the whole service's
        _alert(signal="api_p95_ms", track="stable"),  # stable's alone: the environment's
        _alert(status="resolved", signal="http_5xx_pct", track="canary"),
        _alert(severity="warning", track="canary"),
        _alert(service="other", track="canary")), "spark")
    assert [(a.name, a.signal, a.track) for a in acting] == [
        ("GoLiveSignalFarOverThreshold", "api_p95_ms", "canary"), ("GoLiveErrorBudgetBurn", None, None)]
    assert rollback_reason(acting) == ("critical-alert from Alertmanager: GoLiveErrorBudgetBurn; "
                                       "GoLiveSignalFarOverThreshold (api_p95_ms, canary)")


@pytest.mark.parametrize("body, field", [
    ([], "notification"), ({"version": "3", "alerts": []}, "version"), ({"version": "4"}, "alerts"),
    (_notification("x"), r"alerts\[0\]"), (_notification({**_alert(), "labels": {"a": 1}}), r"alerts\[0\].labels"),
    (_notification({**_alert(), "status": "pending"}), r"alerts\[0\].status"),
])
def test_a_body_not_in_alertmanagers_shape_is_refused_naming_the_field(body, field):
    with pytest.raises(WebhookRefused, match=f"^{field}: "):
        acting_alerts(body, "spark")


def test_only_a_go_live_holding_the_target_is_ended_by_its_generation():
    go_live = Fence(generation=7, holder=FenceHolder(kind="go-live", name="go-live v1.4.0", run="r1"))
    assert go_live_to_end(go_live) == ("1.4.0", 7)
    rolled = Fence(generation=8, holder=FenceHolder(kind="rollback", name="rollback v1.4.0 (alertmanager)"))
    assert go_live_to_end(rolled) is None  # a rollback holds it already: nothing more to roll back
    assert go_live_to_end(Fence(generation=3, holder=FenceHolder(kind="operator", name="me"))) is None
    assert go_live_to_end(Fence()) is None and go_live_to_end(None) is None
