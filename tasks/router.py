"""The traffic router: set the canary weight and read back the weight in force.

One small interface (`TrafficRouter`), one implementation per router: the sandbox's nginx
through its control API here, ingress-nginx and Gateway API in `tasks.kubernetes`.
"""

from __future__ import annotations

import time
from typing import Protocol

import httpx
from prefect import task
from prefect.cache_policies import NO_CACHE

from golive.models import WeightReading
from golive.settings import RouterSettings


class RouterError(RuntimeError):
    """The router refused or did not answer; the message says which and why."""


class RouterForbidden(RouterError):
    """The router's API denies golive a permission: asking again will not help."""


def retry_unless_forbidden(task, task_run, state) -> bool:
    """Prefect's retry condition: retry failures, but not a missing permission."""
    try:
        state.result()
    except RouterForbidden:
        return False
    except Exception:
        return True
    return True


class TrafficRouter(Protocol):
    def set_weight(self, weight: int) -> int: ...

    def read_weight(self) -> int: ...


class SandboxRouter:
    """The sandbox's nginx, through `GET/PUT /weight` on its control port."""

    def __init__(self, control_url: str, timeout: float = 20.0):
        self.control_url = control_url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, **kwargs) -> int:
        try:
            response = httpx.request(method, f"{self.control_url}/weight", timeout=self.timeout, **kwargs)
        except httpx.TransportError as exc:
            raise RouterError(f"router at {self.control_url} does not answer: {exc}") from exc
        if response.status_code != 200:
            raise RouterError(f"router refused {method} /weight: {response.json().get('error', response.text)}")
        return int(response.json()["weight"])

    def set_weight(self, weight: int) -> int:
        return self._call("PUT", json={"weight": weight})

    def read_weight(self) -> int:
        return self._call("GET")


def router_for(settings: RouterSettings) -> TrafficRouter:
    if settings.kind == "sandbox":
        return SandboxRouter(settings.control_url)
    from tasks.kubernetes import GatewayApiRouter, IngressNginxRouter

    return {"ingress-nginx": IngressNginxRouter, "gateway-api": GatewayApiRouter}[settings.kind](settings.kubernetes)


@task(name="set the canary weight", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE,
      retry_condition_fn=retry_unless_forbidden)
def set_weight(router: RouterSettings, weight: int) -> WeightReading:
    """Set the canary's share of traffic.

    Args:
        router: which router and how to reach it.
        weight: 0-100.

    Returns:
        The weight the router reports in force once the change applied, and how long it took.
    """
    started = time.monotonic()
    in_force = router_for(router).set_weight(weight)
    return WeightReading(requested=weight, in_force=in_force, at=time.time(), seconds=round(time.monotonic() - started, 3))


@task(name="read back the weight in force", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE,
      retry_condition_fn=retry_unless_forbidden)
def read_weight(router: RouterSettings) -> WeightReading:
    """The weight the router serves now (from the router, never from golive's memory)."""
    return WeightReading(in_force=router_for(router).read_weight(), at=time.time())
