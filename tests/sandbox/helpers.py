"""Reading the sandbox back: Prometheus queries and the services' own counters."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from prometheus_api_client import PrometheusConnect

from golive.signals import Signal, render_query


def query(sandbox, promql: str) -> float | None:
    result = PrometheusConnect(url=sandbox.prometheus_url, disable_ssl=True).custom_query(promql)
    if not result or result[0]["value"][1] in ("NaN", "+Inf", "-Inf"):
        return None
    return float(result[0]["value"][1])


def signal_value(sandbox, sig: Signal, track: str, window: float = 10) -> float | None:
    return query(sandbox, render_query(sig.value_query, track, window))


def per_request(sandbox, sig: Signal, track: str, window: float = 10) -> float | None:
    bad = query(sandbox, render_query(sig.bad_query, track, window))
    total = query(sandbox, render_query(sig.total_query, track, window))
    return None if bad is None or not total else bad / total


def counter(sandbox, track: str, metric: str, **labels: str) -> float:
    """Sum of a counter's samples in the service's own /metrics, matching `labels`."""
    text = httpx.get(f"{sandbox.service_url(track)}/metrics", timeout=5).text
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(metric + "{"):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def wait_until(check: Callable[[], bool], timeout: float, every: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return check()
