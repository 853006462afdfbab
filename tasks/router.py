"""The traffic router: set the canary weight and read back the weight in force.

One small interface (`tasks.router_base.TrafficRouter`), one implementation per router: the
sandbox's nginx through its control API (`tasks.sandbox_router`), ingress-nginx and Gateway API
(`tasks.kubernetes`).
"""

from __future__ import annotations

import time

from prefect import task
from prefect.cache_policies import NO_CACHE

from golive.models import WeightReading
from golive.settings import RouterSettings
from tasks.kubernetes import GatewayApiRouter, IngressNginxRouter
from tasks.router_base import RouterError, RouterForbidden, TrafficRouter, retry_unless_forbidden
from tasks.sandbox_router import SandboxRouter

__all__ = ["RouterError", "RouterForbidden", "read_weight", "router_for", "set_weight"]


def router_for(settings: RouterSettings) -> TrafficRouter:
    if settings.kind == "sandbox":
        return SandboxRouter(settings.control_url)
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
