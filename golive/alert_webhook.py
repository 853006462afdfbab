"""Alerts that act at once: what an Alertmanager webhook notification asks of golive.

Alertmanager POSTs its notifications as JSON (its documented webhook format, version "4":
`status`, `receiver`, `groupLabels`, `commonLabels`, `alerts: [{status, labels, annotations,
startsAt, endsAt, fingerprint}]`). The rules, in order:

1. A body that is not that shape is refused, in one line naming the field; nothing acts on it.
2. An alert acts only when it is `firing`, `severity="critical"`, of the service
   (`service` label) and of the canary or the whole service (no `track`, or `track="canary"`):
   an alert of stable's alone is the environment's, as the stage's own alert check says.
3. It ends the go-live that holds the traffic target now, by that go-live's generation (the
   rollback's conditional take, golive.fencing rule 4). When no go-live holds it (a rollback or
   an operator took it already, or nothing runs), nothing is rolled back: Alertmanager repeats
   a notification, and the stage may see the alert too, but the first rollback is the only one.
4. An alert that began firing more than a minute before the go-live took the target is a
   leftover (an earlier go-live's, still firing and repeated): it ends nothing (`began_during`,
   the stage's rule too).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from golive.fencing import Fence

__all__ = ["ActingAlert", "WebhookRefused", "acting_alerts", "alerts_of_holder", "began_during", "go_live_to_end",
           "rollback_reason", "started_seconds"]

GO_LIVE_HOLDER_PREFIX = "go-live v"  # flows/go_live.py names its fence holder `go-live v<release>`
MAX_ALERTS = 1000
LEFTOVER_MARGIN_SECONDS = 60  # clocks and Prometheus' `for:` differ a little: an alert this much older still counts


def started_seconds(starts_at: str | None) -> float | None:
    """An alert's RFC 3339 start (Alertmanager's startsAt) in Unix seconds; None when absent or not RFC 3339."""
    try:
        return datetime.fromisoformat(starts_at).timestamp() if starts_at else None
    except (TypeError, ValueError):
        return None


def began_during(started: float | None, since: float | None) -> bool:
    """Whether an alert that began firing at `started` is the business of a go-live (or stage)
    that began at `since`: one that began earlier, past the margin, is a leftover of what ran
    before. An unknown start (or since) counts as new: not knowing never silences an alert."""
    return started is None or since is None or started >= since - LEFTOVER_MARGIN_SECONDS


class WebhookRefused(ValueError):
    """The notification is not Alertmanager's webhook shape; one line naming the field."""


@dataclass(frozen=True)
class ActingAlert:
    name: str
    signal: str | None
    track: str | None
    summary: str
    starts_at: str | None
    fingerprint: str | None

    @property
    def started(self) -> float | None:
        return started_seconds(self.starts_at)


def _mapping(value: object, where: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise WebhookRefused(f"{where}: expected an object")
    return value


def _labels(value: object, where: str) -> dict[str, str]:
    labels = _mapping(value if value is not None else {}, where)
    for key, item in labels.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise WebhookRefused(f"{where}: expected text labels")
    return dict(labels)


def acting_alerts(payload: object, service: str) -> list[ActingAlert]:
    """The alerts of the notification that roll the canary back (rules 1 and 2)."""
    body = _mapping(payload, "notification")
    if body.get("version") != "4":
        raise WebhookRefused(f"version: expected Alertmanager's webhook version \"4\", got {body.get('version')!r}")
    alerts = body.get("alerts")
    if not isinstance(alerts, list):
        raise WebhookRefused("alerts: expected a list")
    if len(alerts) > MAX_ALERTS:
        raise WebhookRefused(f"alerts: more than {MAX_ALERTS}")
    acting = []
    for i, alert in enumerate(alerts):
        alert = _mapping(alert, f"alerts[{i}]")
        labels = _labels(alert.get("labels"), f"alerts[{i}].labels")
        annotations = _labels(alert.get("annotations"), f"alerts[{i}].annotations")
        if alert.get("status") not in ("firing", "resolved"):
            raise WebhookRefused(f"alerts[{i}].status: expected firing or resolved, got {alert.get('status')!r}")
        if (alert["status"] != "firing" or labels.get("severity") != "critical" or labels.get("service") != service
                or labels.get("track") not in (None, "canary")):
            continue
        starts = alert.get("startsAt")
        fingerprint = alert.get("fingerprint")
        acting.append(ActingAlert(name=labels.get("alertname", ""), signal=labels.get("signal"),
                                  track=labels.get("track"), summary=annotations.get("summary", ""),
                                  starts_at=starts if isinstance(starts, str) else None,
                                  fingerprint=fingerprint if isinstance(fingerprint, str) else None))
    return acting


def go_live_to_end(fence: Fence | None) -> tuple[str, int] | None:
    """The release and generation of the go-live holding the target (rule 3); None when none does."""
    if fence is None or fence.holder is None or fence.holder.kind != "go-live":
        return None
    if not fence.holder.name.startswith(GO_LIVE_HOLDER_PREFIX):
        return None
    return fence.holder.name.removeprefix(GO_LIVE_HOLDER_PREFIX), fence.generation


def alerts_of_holder(alerts: list[ActingAlert], fence: Fence | None) -> list[ActingAlert]:
    """The alerts that began while the target's holder held it (rule 4)."""
    since = fence.holder.at if fence is not None and fence.holder is not None else None
    return [a for a in alerts if began_during(a.started, since)]


def rollback_reason(alerts: list[ActingAlert]) -> str:
    """`critical-alert: GoLiveSignalFarOverThreshold (api_p95_ms, canary); …` (the stage's words)."""
    named = sorted({a.name + (f" ({a.signal}, {a.track or 'service'})" if a.signal else "") for a in alerts})
    return f"critical-alert from Alertmanager: {'; '.join(named)}"
