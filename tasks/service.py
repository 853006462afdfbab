"""The service under release: is it up, is the canary the release, what did it count?"""

from __future__ import annotations

import time

import httpx
from prefect import task
from prefect.cache_policies import NO_CACHE
from prometheus_client.parser import text_string_to_metric_families

from golive.drift import checked_fills
from golive.response_diff import checked_responses
from golive.models import RolloutObservation, ServiceCheck
from golive.signals import DRILL_REQUESTS_METRIC, IDEMPOTENCY_CONFLICTS_METRIC, PROBE_MARK
from tasks.http_client import shared_client


@task(name="check which version is served", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def check_version(url: str, expected: str | None = None) -> ServiceCheck:
    """GET {url}/version; ok when it answers with `expected` (any version when None)."""
    try:
        served = shared_client().get(f"{url.rstrip('/')}/version", headers=PROBE_MARK, timeout=5).json().get("version")
    except (httpx.HTTPError, ValueError) as exc:
        return ServiceCheck(name="version", url=url, ok=False, detail=f"no answer: {exc}")
    ok = served is not None and expected in (None, served)
    return ServiceCheck(name="version", url=url, ok=ok, version=served,
                        detail=f"serves {served}" + ("" if ok else f", expected {expected}"))


@task(name="check the service is healthy", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def check_health(url: str) -> ServiceCheck:
    """GET {url}/healthz: 200 is healthy."""
    try:
        response = shared_client().get(f"{url.rstrip('/')}/healthz", headers=PROBE_MARK, timeout=5)
    except httpx.HTTPError as exc:
        return ServiceCheck(name="health", url=url, ok=False, detail=f"no answer: {exc}")
    return ServiceCheck(name="health", url=url, ok=response.status_code == 200, detail=f"HTTP {response.status_code}")


@task(name="read the canary's process", retries=1, retry_delay_seconds=1, cache_policy=NO_CACHE)
def read_service_rollout(url: str) -> RolloutObservation:
    """A canary that is one process: ready when /healthz answers 200, its version from /version.
    (Restarts are not visible from outside a process.)"""
    health, version = check_health.fn(url), check_version.fn(url)
    return RolloutObservation(source=url, desired=1, ready=int(health.ok),
                              versions=[version.version] if version.version else [],
                              detail=f"{health.detail}; {version.detail}", at=time.time())


def _counter(url: str, name: str, labels: dict[str, str]) -> float | None:
    try:
        response = shared_client().get(f"{url.rstrip('/')}/metrics", timeout=5)
        response.raise_for_status()
    except httpx.HTTPError:
        return None
    return sum(
        sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


@task(name="read the service's drill counter", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def read_drill_requests(url: str, metric: str = DRILL_REQUESTS_METRIC, track: str | None = None) -> float | None:
    """How many drill requests (`source="drill"`) the service at `url` has counted, from its
    /metrics; or, with `track`, the sandbox router's count of that track's (`metric` of its
    control API's /metrics); None when it does not answer."""
    return _counter(url, metric, {"source": "drill", **({"track": track} if track else {})})


@task(name="read the service's idempotency conflicts", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def read_idempotency_conflicts(url: str) -> float | None:
    """The service's idempotency-conflict counter, from its /metrics; None when it does not answer."""
    return _counter(url, IDEMPOTENCY_CONFLICTS_METRIC, {})


@task(name="read the service's GC pauses", retries=1, retry_delay_seconds=1, cache_policy=NO_CACHE)
def read_gc_pauses(url: str, metric: str) -> dict[str, dict[str, float]] | None:
    """The service's GC pause histogram per generation so far, from its /metrics (`loopwatch`'s
    `<metric>_sum` and `<metric>_count` with a `generation` label).

    Args:
        url: the track's URL.
        metric: the histogram's name, e.g. "spark_gc_pause_seconds".

    Returns:
        `{generation: {"seconds": total pause, "count": pauses}}`; None when it does not answer."""
    try:
        response = shared_client().get(f"{url.rstrip('/')}/metrics", timeout=5)
        response.raise_for_status()
    except httpx.HTTPError:
        return None
    pauses: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            generation = sample.labels.get("generation")
            field = {f"{metric}_sum": "seconds", f"{metric}_count": "count"}.get(sample.name)
            if generation is not None and field:
                entry = pauses.setdefault(generation, {"seconds": 0.0, "count": 0.0})
                entry[field] += sample.value
    return pauses


@task(name="read the service's fills", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def read_fills(url: str, since_ns: int) -> dict:
    """The order decisions, live and paper, the service at `url` kept (its newest 10,000) that are
    newer than `since_ns` on its monotonic clock, from GET {url}/__golive/fills.

    Returns:
        `{"clock": "monotonic_ns", "now_ns": the service's clock now (the next read's since_ns),
        "fills": [{request_id, at_ns, paper, symbol, side, quantity, price, status}, ...]}`, checked.

    Raises:
        ValueError: a `since_ns` that is not a whole number >= 0, or an answer of another shape.
        RuntimeError: any answer but 200. Each one line; the task retries twice before it fails."""
    return checked_fills(_read_ring(url, "/__golive/fills", since_ns), f"{url.rstrip('/')}/__golive/fills")


@task(name="read the service's responses", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def read_responses(url: str, since_ns: int) -> dict:
    """The answers the service at `url` gave to the requests the router sent (its newest 10,000)
    that are newer than `since_ns` on its monotonic clock, from GET {url}/__golive/responses.

    Returns:
        `{"clock": "monotonic_ns", "now_ns": the service's clock now (the next read's since_ns),
        "responses": [{request_id, at_ns, method, path, route, status, shadow, content_type, bytes,
        sha256, json}, ...]}`, checked.

    Raises:
        ValueError: a `since_ns` that is not a whole number >= 0, or an answer of another shape.
        RuntimeError: any answer but 200. Each one line; the task retries twice before it fails."""
    return checked_responses(_read_ring(url, "/__golive/responses", since_ns), f"{url.rstrip('/')}/__golive/responses")


def _read_ring(url: str, path: str, since_ns: int) -> object:
    """The JSON a service's ring at `path` answers for `since_ns`; ValueError or RuntimeError, one line."""
    if isinstance(since_ns, bool) or not isinstance(since_ns, int) or since_ns < 0:
        raise ValueError(f"since_ns: expected a whole number of nanoseconds >= 0, got {since_ns!r}")
    where = f"{url.rstrip('/')}{path}"
    response = shared_client().get(where, params={"since_ns": str(since_ns)}, timeout=5)
    if response.status_code != 200:
        said = " ".join(response.text.split())[:200]
        raise RuntimeError(f"{where}: HTTP {response.status_code}: {said}")
    try:
        return response.json()
    except ValueError:
        raise ValueError(f"{where}: expected a JSON object, got {response.text[:80]!r}") from None


@task(name="fetch the API contract", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def fetch_openapi(url: str) -> dict:
    """The OpenAPI document the service publishes at /openapi.json."""
    response = shared_client().get(f"{url.rstrip('/')}/openapi.json", timeout=5)
    response.raise_for_status()
    return response.json()


@task(name="call the API", retries=1, retry_delay_seconds=1, cache_policy=NO_CACHE)
def call_api(url: str, method: str, path: str, body: dict | None = None, headers: dict | None = None) -> dict:
    """One request; its status and JSON body (None when not JSON)."""
    response = shared_client().request(method, f"{url.rstrip('/')}{path}", json=body, headers=headers, timeout=10)
    try:
        payload = response.json()
    except ValueError:
        payload = None
    return {"method": method, "path": path, "status": response.status_code, "body": payload}
