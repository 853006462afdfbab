"""golive's own series, pushed to a Prometheus Pushgateway (`prometheus.pushgateway_url`) as a
batch job's are: a go-live lives for hours, not for Prometheus' scrape, so its numbers are pushed
where Prometheus scrapes them (with `honor_labels: true`, the labels pushed are kept).

One group per service and release (`job="golive"`), replaced whole at each push (PUT): a series not
pushed again is gone. A push that fails is a warning in the caller's log, never the stage's end:
the dashboard is for people, the gate reads its numbers itself.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Gauge, delete_from_gateway, push_to_gateway

__all__ = ["JOB", "delete_series", "push_series"]

JOB = "golive"
TIMEOUT_SECONDS = 5.0


def _grouping(service: str, release: str) -> dict[str, str]:
    return {"service": service, "release": release}


def push_series(url: str, service: str, release: str, values: Mapping[str, float],
                helps: Mapping[str, str]) -> None:
    """Replace the group of `service` and `release` with `values` (name → gauge value)."""
    registry = CollectorRegistry()
    for name, value in values.items():
        Gauge(name, helps[name], registry=registry).set(value)
    push_to_gateway(url, job=JOB, registry=registry, grouping_key=_grouping(service, release),
                    timeout=TIMEOUT_SECONDS)


def delete_series(url: str, service: str, release: str) -> None:
    """Remove the group of `service` and `release`: its series end in Prometheus at once."""
    delete_from_gateway(url, job=JOB, grouping_key=_grouping(service, release), timeout=TIMEOUT_SECONDS)
