"""The service under release: is it up, is the canary the release, what did it count?"""

from __future__ import annotations

import httpx
from prefect import task
from prefect.cache_policies import NO_CACHE
from prometheus_client.parser import text_string_to_metric_families

from golive.models import ServiceCheck
from golive.signals import DRILL_REQUESTS_METRIC


@task(name="check which version is served", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def check_version(url: str, expected: str | None = None) -> ServiceCheck:
    """GET {url}/version; ok when it answers with `expected` (any version when None)."""
    try:
        served = httpx.get(f"{url.rstrip('/')}/version", timeout=5).json().get("version")
    except (httpx.HTTPError, ValueError) as exc:
        return ServiceCheck(name="version", url=url, ok=False, detail=f"no answer: {exc}")
    ok = served is not None and expected in (None, served)
    return ServiceCheck(name="version", url=url, ok=ok, version=served,
                        detail=f"serves {served}" + ("" if ok else f", expected {expected}"))


@task(name="check the service is healthy", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def check_health(url: str) -> ServiceCheck:
    """GET {url}/healthz: 200 is healthy."""
    try:
        response = httpx.get(f"{url.rstrip('/')}/healthz", timeout=5)
    except httpx.HTTPError as exc:
        return ServiceCheck(name="health", url=url, ok=False, detail=f"no answer: {exc}")
    return ServiceCheck(name="health", url=url, ok=response.status_code == 200, detail=f"HTTP {response.status_code}")


@task(name="read the service's drill counter", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def read_drill_requests(url: str) -> float | None:
    """How many drill requests (`source="drill"`) the service at `url` has counted, from its
    /metrics; None when it does not answer."""
    try:
        response = httpx.get(f"{url.rstrip('/')}/metrics", timeout=5)
        response.raise_for_status()
    except httpx.HTTPError:
        return None
    return sum(
        sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == DRILL_REQUESTS_METRIC and sample.labels.get("source") == "drill"
    )
