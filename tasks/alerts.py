"""Alerts: which critical alerts fire for the service now (Alertmanager, else Prometheus' ALERTS)."""

from __future__ import annotations

from datetime import datetime

import httpx
from prefect import task
from prefect.cache_policies import NO_CACHE
from prometheus_api_client import PrometheusApiClientException
from pydantic import BaseModel
from requests import RequestException

from golive.settings import PrometheusSettings
from tasks.http_client import shared_client
from tasks.prometheus import _prometheus

__all__ = ["AlertsUnreadable", "FiringAlert", "critical_alerts_firing"]


class AlertsUnreadable(RuntimeError):
    """Neither Alertmanager nor Prometheus told which alerts fire; one line saying where it failed."""


class FiringAlert(BaseModel):
    name: str
    service: str
    severity: str
    track: str | None = None
    signal: str | None = None
    summary: str = ""
    since: str | None = None  # when it started firing (RFC 3339), as the source tells it
    labels: dict[str, str] = {}

    @property
    def started(self) -> float | None:
        """When it began firing, Unix seconds; None when the source did not say, or said it in a
        form that is not RFC 3339."""
        try:
            return datetime.fromisoformat(self.since).timestamp() if self.since else None
        except ValueError:
            return None


def _alert(labels: dict[str, str], annotations: dict[str, str], since: str | None) -> FiringAlert:
    return FiringAlert(name=labels.get("alertname", ""), service=labels.get("service", ""),
                       severity=labels.get("severity", ""), track=labels.get("track"), signal=labels.get("signal"),
                       summary=annotations.get("summary", ""), since=since, labels=labels)


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def from_alertmanager(client: httpx.Client, service: str, url: str = "") -> list[FiringAlert]:
    """Alertmanager's API v2 at `url` (else the client's base URL): active critical alerts of the
    service. Silenced or inhibited ones are left out (a person or a rule decided they do not count)."""
    params = [("active", "true"), ("silenced", "false"), ("inhibited", "false"),
              ("filter", 'severity="critical"'), ("filter", f'service="{_quoted(service)}"')]
    try:
        response = client.get(f"{url.rstrip('/')}/api/v2/alerts", params=params, timeout=10)
        response.raise_for_status()
        alerts = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise AlertsUnreadable(f"Alertmanager {url or client.base_url}: {exc}") from None
    return sorted((_alert(a.get("labels", {}), a.get("annotations", {}), a.get("startsAt")) for a in alerts),
                  key=lambda a: (a.name, a.signal or "", a.track or ""))


def from_prometheus(prometheus: PrometheusSettings, service: str) -> list[FiringAlert]:
    """Prometheus' own view: `ALERTS{alertstate="firing", severity="critical", service=…}` (no
    annotations, no silences)."""
    query = f'ALERTS{{alertstate="firing",severity="critical",service="{_quoted(service)}"}}'
    try:
        result = _prometheus(prometheus).custom_query(query)
    except (PrometheusApiClientException, RequestException) as exc:
        raise AlertsUnreadable(f"Prometheus {prometheus.url}: {exc}") from None
    return sorted((_alert(r["metric"], {}, None) for r in result), key=lambda a: (a.name, a.signal or "", a.track or ""))


@task(name="read the critical alerts firing", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def critical_alerts_firing(prometheus: PrometheusSettings, service: str) -> list[FiringAlert]:
    """The critical alerts firing for `service` now: any one is the `critical-alert` trigger.

    Args:
        prometheus: its `alertmanager_url` when set, else Prometheus itself (its `ALERTS` series).
        service: the `service` label the alerts carry (`golive rules --service`).

    Returns:
        The firing alerts, sorted by name, signal and track; empty when none fires.

    Raises:
        AlertsUnreadable: the source did not answer; not knowing is never "no alerts".
    """
    if prometheus.alertmanager_url:
        return from_alertmanager(shared_client(), service, prometheus.alertmanager_url)
    return from_prometheus(prometheus, service)
