"""A leftover alert (one that began before the go-live took the target) ends nothing: the rule
golive.alert_webhook.began_during, which the webhook and the stage both use."""

from __future__ import annotations

from golive.alert_webhook import acting_alerts, alerts_of_holder, began_during
from golive.fencing import Fence, FenceHolder

TOOK_AT = 1796378300.0  # 2026-12-04T09:58:20Z


def _notification(starts_at: str) -> dict:
    alert = {"status": "firing", "labels": {"alertname": "GoLiveSignalFarOverThreshold", "severity": "critical",
                                            "service": "spark", "signal": "api_p95_ms", "track": "canary"},
             "annotations": {}, "startsAt": starts_at, "fingerprint": "abc"}
    return {"version": "4", "status": "firing", "alerts": [alert]}


def _held_by_v150(at: float | None = TOOK_AT) -> Fence:
    return Fence(generation=7, holder=FenceHolder(kind="go-live", name="go-live v1.5.0", run="r", at=at))


def test_an_alert_still_firing_from_the_go_live_before_ends_nothing():
    leftover = acting_alerts(_notification("2020-01-01T00:00:00Z"), "spark")
    assert leftover and alerts_of_holder(leftover, _held_by_v150()) == []
    minutes_before = acting_alerts(_notification("2026-12-04T09:55:00Z"), "spark")
    assert alerts_of_holder(minutes_before, _held_by_v150()) == []


def test_an_alert_that_began_after_the_take_or_within_the_margin_acts():
    after = acting_alerts(_notification("2026-12-04T10:00:00Z"), "spark")
    assert alerts_of_holder(after, _held_by_v150()) == after
    just_before = acting_alerts(_notification("2026-12-04T09:57:50Z"), "spark")
    assert alerts_of_holder(just_before, _held_by_v150()) == just_before


def test_an_unknown_start_or_take_time_counts_as_new():
    unknown = acting_alerts(_notification("not a time"), "spark")
    assert alerts_of_holder(unknown, _held_by_v150()) == unknown
    old = acting_alerts(_notification("2020-01-01T00:00:00Z"), "spark")
    assert alerts_of_holder(old, _held_by_v150(at=None)) == old
    assert began_during(None, TOOK_AT) and began_during(TOOK_AT - 3600, None)
    assert not began_during(TOOK_AT - 61, TOOK_AT) and began_during(TOOK_AT - 59, TOOK_AT)
