"""The traffic router: take the target (a fencing generation), set the canary weight with it, and
read back the weight in force and the fence beside it.

One small interface (`tasks.router_base.TrafficRouter`), one implementation per router: the
sandbox's nginx through its control API (`tasks.sandbox_router`), ingress-nginx and Gateway API
(`tasks.kubernetes`). `deadline` (a `time.monotonic()` instant) bounds every request and retry
inside a call, so a budget holds inside an attempt, not only between attempts.
"""

from __future__ import annotations

import time

from prefect import task
from prefect.cache_policies import NO_CACHE

from golive.fencing import Fence, FenceHolder
from golive.models import WeightReading
from golive.settings import RouterSettings
from tasks.kubernetes import GatewayApiRouter, IngressNginxRouter
from tasks.router_base import (
    Deadline, RouterError, RouterFenced, RouterForbidden, RouterRefused, TrafficRouter, read_canary_pin,
    retry_unless_refused,
)
from tasks.sandbox_router import SandboxRouter

__all__ = ["RouterError", "RouterFenced", "RouterForbidden", "read_weight", "router_for", "set_weight",
           "take_generation"]


def router_for(settings: RouterSettings, deadline: float | None = None) -> TrafficRouter:
    if settings.kind == "sandbox":
        return SandboxRouter(settings.control_url, deadline=Deadline(deadline),
                             mirror_routes=[route.model_dump(mode="json") for route in settings.mirror_routes])
    if settings.kind == "ingress-nginx":
        try:
            pin: str | bool | None = read_canary_pin(settings)
        except RouterError:
            # The preflight names an unreadable pin; a write (a rollback's above all) goes on and
            # leaves the value the canary Ingress already has.
            pin = False
        return IngressNginxRouter(settings.kubernetes, deadline=Deadline(deadline), canary_pin=pin)
    return GatewayApiRouter(settings.kubernetes, deadline=Deadline(deadline))


@task(name="take the traffic target", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE,
      retry_condition_fn=retry_unless_refused)
def take_generation(router: RouterSettings, holder: FenceHolder, if_generation: int | None = None,
                    deadline: float | None = None) -> Fence:
    """Take a new fencing generation at the target, fencing every older writer.

    Args:
        router: which router and how to reach it.
        holder: who takes it (kind, name, flow run).
        if_generation: take it only while the target's newest is this one (RouterFenced otherwise).
        deadline: a `time.monotonic()` instant every request must end by.

    Returns:
        The target's new fence.
    """
    return router_for(router, deadline).take_generation(holder, if_generation)


@task(name="set the canary weight", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE,
      retry_condition_fn=retry_unless_refused)
def set_weight(router: RouterSettings, weight: int, generation: int, deadline: float | None = None,
               mirror: bool = False) -> WeightReading:
    """Set the canary's share of traffic, as the holder of `generation`.

    Args:
        router: which router and how to reach it.
        weight: 0-100.
        generation: the fencing generation this writer took; the router refuses any but its newest.
        deadline: a `time.monotonic()` instant every request must end by.
        mirror: at weight 0, copy users' requests to the canary (the shadow stage); any write
            without it turns the mirror off. Refused by a router that cannot mirror.

    Returns:
        The weight the router reports in force once the change applied, and how long it took.
    """
    started = time.monotonic()
    target = router_for(router, deadline)
    if mirror and not getattr(target, "mirrors", False):
        raise RouterRefused(f"{router.kind} router: no mirror without a shadow Service to copy to "
                            "(target.router.kubernetes.shadow_service)")
    in_force = target.set_weight(weight, generation, mirror=True) if mirror else target.set_weight(weight, generation)
    return WeightReading(requested=weight, in_force=in_force, at=time.time(), generation=generation,
                         seconds=round(time.monotonic() - started, 3), mirror=mirror)


@task(name="read back the weight in force", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE,
      retry_condition_fn=retry_unless_refused)
def read_weight(router: RouterSettings, deadline: float | None = None) -> WeightReading:
    """The weight the router serves now and the fence beside it (from the router, never from
    golive's memory)."""
    state = router_for(router, deadline).read()
    return WeightReading(in_force=state.weight, fence=state.fence, at=time.time(), mirror=state.mirror)
