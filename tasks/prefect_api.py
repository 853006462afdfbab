"""The Prefect API itself: one go-live of a release at a time, and the first night scheduled.

One release at a time: a global concurrency limit `go-live-v<release>` of one slot, taken for the whole run with a
lease the run keeps renewing (a run that dies frees it when the lease runs out); a second run
finds no slot and is told which run holds the release.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prefect import get_client, task
from prefect.cache_policies import NO_CACHE
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterName,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.concurrency.sync import concurrency
from prefect.context import FlowRunContext


ACQUIRE_WAIT_SECONDS = 30


class ReleaseLocked(RuntimeError):
    """Another run holds the release; the message names it."""


def _holder(release: str) -> str:
    me = FlowRunContext.get().flow_run.id if FlowRunContext.get() else None
    active = FlowRunFilter(name=FlowRunFilterName(any_=[f"go-live v{release}"]), state=FlowRunFilterState(
        type=FlowRunFilterStateType(any_=[StateType.RUNNING, StateType.PAUSED, StateType.PENDING])))
    with get_client(sync_client=True) as client:
        runs = [r for r in client.read_flow_runs(flow_run_filter=active) if r.id != me]
    if not runs:
        return "another run (it holds the lease; it frees it when it ends or its lease expires)"
    return ", ".join(f"flow run {r.name!r} ({r.id}, {r.state_name})" for r in runs)


@contextmanager
def release_lock(release: str) -> Iterator[None]:
    """Hold `go-live-v<release>` for the duration; ReleaseLocked at once when it is taken."""
    name = f"go-live-v{release.replace('.', '-')}"
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(name, limit=1)
        held = client.read_global_concurrency_limit_by_name(name).active_slots >= 1
    if held:
        raise ReleaseLocked(f"v{release} is already being released by {_holder(release)}")
    acquired = False
    try:
        # Free a moment ago: wait for the slot rather than mistake a slow API for a holder;
        # only a run that took it in between keeps it past the wait.
        with concurrency(name, occupy=1, timeout_seconds=ACQUIRE_WAIT_SECONDS, strict=True):
            acquired = True
            yield
    except TimeoutError:
        if acquired:
            raise
        raise ReleaseLocked(f"v{release} is already being released by {_holder(release)}") from None


FIRST_NIGHT_DEPLOYMENT = "first-night/default"


@task(name="schedule the first night", cache_policy=NO_CACHE)
def schedule_first_night(release: str, blocks: dict[str, str]) -> dict:
    """Start the first-night deployment for `release` now (it paces its own hours)."""
    with get_client(sync_client=True) as client:
        try:
            client.read_deployment_by_name(FIRST_NIGHT_DEPLOYMENT)
        except ObjectNotFound:
            return {"scheduled": False, "reason": f"no {FIRST_NIGHT_DEPLOYMENT} deployment"}
    run = run_deployment(FIRST_NIGHT_DEPLOYMENT, parameters={"release": release, "blocks": blocks}, timeout=0,
                         as_subflow=False, flow_run_name=f"first night v{release}")
    return {"scheduled": True, "deployment": FIRST_NIGHT_DEPLOYMENT, "flow_run_id": str(run.id)}


@task(name="name the run", cache_policy=NO_CACHE)
def rename_flow_run(flow_run_id: str, name: str) -> None:
    """Give a run the name it could only know once it started (the release it found)."""
    with get_client(sync_client=True) as client:
        client.update_flow_run(flow_run_id, name=name)
