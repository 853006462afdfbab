"""The service under release: is it up, and is the canary the release?"""

from __future__ import annotations

import httpx
from prefect import task
from prefect.cache_policies import NO_CACHE

from golive.models import ServiceCheck


@task(name="check the canary serves the release", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def check_version(url: str, expected: str) -> ServiceCheck:
    """GET {url}/version and compare its `version` with the release."""
    try:
        served = httpx.get(f"{url.rstrip('/')}/version", timeout=5).json().get("version")
    except (httpx.HTTPError, ValueError) as exc:
        return ServiceCheck(name="version", url=url, ok=False, detail=f"no answer: {exc}")
    ok = served == expected
    return ServiceCheck(name="version", url=url, ok=ok,
                        detail=f"serves {served}" + ("" if ok else f", expected {expected}"))


@task(name="check the service is healthy", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def check_health(url: str) -> ServiceCheck:
    """GET {url}/healthz: 200 is healthy."""
    try:
        response = httpx.get(f"{url.rstrip('/')}/healthz", timeout=5)
    except httpx.HTTPError as exc:
        return ServiceCheck(name="health", url=url, ok=False, detail=f"no answer: {exc}")
    return ServiceCheck(name="health", url=url, ok=response.status_code == 200, detail=f"HTTP {response.status_code}")
