"""The Prefect API itself: one go-live per traffic target and per release, the first night's
hours scheduled, another run's parameters read.

A go-live holds two global concurrency limits of one slot for its whole run: its traffic
target's, so a second go-live of the service is refused at once and told who holds it, and its
release's, whose evidence folder it owns. These locks are a courtesy, never the safety (that is
the router's fence, `golive.fencing`), so they are released by their holder or lapse, and are
never deleted from outside:

- the slot is leased (`LEASE_SECONDS`) and renewed while its holder runs; a lease that is not
  renewed (the holder died, or has been paused longer than the lease) lapses on the server;
- beside each slot a Prefect variable names its holder (flow run, host, process and its start),
  marked released when the holder lets go; a slot whose holder is provably gone (it released the
  slot but a restarted server had lost the lease and kept the slot taken; its run is in a final
  state; its process on this host is dead, as a `golive go-live` killed with SIGKILL on the
  serverless path leaves it, with no lease left anywhere to lapse) is taken over, and the
  takeover recorded.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timezone
from pathlib import Path

from prefect import get_client, task
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import ObjectNotFound
from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate, VariableCreate, VariableUpdate
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.concurrency.sync import concurrency
from prefect.context import FlowRunContext
from prefect.states import Scheduled

from blocks import settings_for_run
from golive.first_night import SETTLE_SECONDS, hour_due


ACQUIRE_WAIT_SECONDS = 30
LEASE_SECONDS = 60.0


class GoLiveLocked(RuntimeError):
    """Another run holds the traffic target or the release; the message names it."""


def _holders() -> str:
    me = FlowRunContext.get().flow_run.id if FlowRunContext.get() else None
    active = FlowRunFilter(state=FlowRunFilterState(
        type=FlowRunFilterStateType(any_=[StateType.RUNNING, StateType.PAUSED, StateType.PENDING])))
    with get_client(sync_client=True) as client:
        runs = [r for r in client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["go-live"])),
                                                 flow_run_filter=active) if r.id != me]
    if not runs:
        return "another run (it holds the lease; it frees it when it ends or its lease expires)"
    return ", ".join(f"flow run {r.name!r} ({r.id}, {r.state_name})" for r in runs)


def lock_name(kind: str, key: str) -> str:
    """`go-live-target-sandbox-127-0-0-1-18070`, `go-live-release-1-4-0`: a limit's name from what it guards."""
    return f"go-live-{kind}-" + re.sub(r"[^A-Za-z0-9]+", "-", key).strip("-").lower()


def _holder_variable(name: str) -> str:
    return "golive_lock_holder_" + name.replace("-", "_")[:200]


def _process_start(pid: int) -> str | None:
    """The start of process `pid` in clock ticks since boot (None: no such process), so a pid the
    kernel gave to another process is not mistaken for the holder."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _this_holder() -> dict:
    run = FlowRunContext.get().flow_run if FlowRunContext.get() else None
    return {"flow_run": str(run.id) if run else None, "name": run.name if run else None, "host": socket.gethostname(),
            "pid": os.getpid(), "process_start": _process_start(os.getpid()), "at": time.time()}


def _gone_because(holder: dict, client) -> str | None:
    """Why the holder a variable names is provably gone; None when it may still run."""
    if holder.get("released_at"):
        return (f"its holder {holder.get('name') or holder.get('flow_run') or 'run'} released it, but the server "
                "had lost its lease (a server restarted meanwhile)")
    if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int):
        if _process_start(holder["pid"]) != holder.get("process_start"):
            return f"its process {holder['pid']} on {holder['host']} is gone"
    if holder.get("flow_run"):
        try:
            run = client.read_flow_run(holder["flow_run"])
        except (ObjectNotFound, ValueError):
            return f"its flow run {holder['flow_run']} is not on this server"
        if run.state is not None and run.state.is_final():
            return f"its flow run {run.name!r} ({run.id}) ended {run.state_name}"
    return None


@contextmanager
def _hold(name: str, what: str, takeovers: list[dict]) -> Iterator[None]:
    variable = _holder_variable(name)
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(name, limit=1)
        if client.read_global_concurrency_limit_by_name(name).active_slots >= 1:
            found = client.read_variable_by_name(variable)
            holder = found.value if found is not None and isinstance(found.value, dict) else {}
            if not (gone := _gone_because(holder, client)):
                raise GoLiveLocked(f"{what} is already being moved by {_holders()}")
            client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active_slots=0))
            takeovers.append({"lock": name, "holder": holder, "why": gone, "at": time.time()})
    acquired = False
    try:
        # Free a moment ago: wait for the slot rather than mistake a slow API for a holder;
        # only a run that took it in between keeps it past the wait. Not strict on renewal: a
        # lease lost while paused must not kill the run (the router's fence keeps it harmless).
        with concurrency(name, occupy=1, timeout_seconds=ACQUIRE_WAIT_SECONDS, strict=True,
                         lease_duration=LEASE_SECONDS, raise_on_lease_renewal_failure=False):
            acquired = True
            me = _this_holder()
            with get_client(sync_client=True) as client:
                if client.read_variable_by_name(variable) is not None:  # a gone holder's, taken over
                    client.delete_variable_by_name(variable)
                client.create_variable(VariableCreate(name=variable, value=me))
            try:
                yield
            finally:
                # Marked released, not deleted: a server that lost the lease (it keeps leases in
                # memory, and restarted) refuses the slot's release, and the next run must be able
                # to tell an orphaned slot from one held.
                with get_client(sync_client=True) as client:
                    found = client.read_variable_by_name(variable)
                    if found is not None and found.value == me:  # by its holder only
                        released = {**me, "released_at": time.time()}
                        client.update_variable(VariableUpdate(name=variable, value=released))
    except TimeoutError:
        if acquired:
            raise
        raise GoLiveLocked(f"{what} is already being moved by {_holders()}") from None


@contextmanager
def go_live_lock(target: str, release: str) -> Iterator[list[dict]]:
    """Hold the traffic target `target` and the release for the duration; GoLiveLocked at once
    when either is taken by a holder that may still run. Yields the locks taken over from holders
    that were gone (each with the holder and why), for the run's record."""
    takeovers: list[dict] = []
    with ExitStack() as held:
        held.enter_context(_hold(lock_name("target", target), f"the traffic target {target}", takeovers))
        held.enter_context(_hold(lock_name("release", release), f"v{release}", takeovers))
        yield takeovers


FIRST_NIGHT_HOUR_DEPLOYMENT = "first-night-hour/default"


@task(name="schedule the first night", cache_policy=NO_CACHE)
def schedule_first_night(release: str, blocks: dict[str, str], started_at: float | None = None) -> dict:
    """Schedule the first night on the server: one run of the `first-night-hour` deployment per
    hour, at the hour's end (T+1h … T+24h after `started_at`, default now). The server keeps them:
    a worker that was down runs the missed ones late, each measuring its own hour.

    Args:
        release: the release that went Live.
        blocks: the block names the go-live ran on; the hours run on the same.
        started_at: the start of the night (Live), seconds since the epoch.

    Returns:
        `scheduled`, the deployment, the night (`started_at`, `hours`, `hour_seconds`), each hour's
        run (`runs`) and `flow_run_id`, the last hour's run, which ends the night.
    """
    night = settings_for_run(release, blocks=blocks).process.first_night
    started_at = time.time() if started_at is None else started_at
    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(FIRST_NIGHT_HOUR_DEPLOYMENT)
        except ObjectNotFound:
            return {"scheduled": False, "reason": f"no {FIRST_NIGHT_HOUR_DEPLOYMENT} deployment"}
        runs = []
        for hour in range(1, night.hours + 1):
            due = hour_due(started_at, hour, night.hour_seconds)
            run = client.create_flow_run_from_deployment(
                deployment.id, name=f"first night v{release} hour {hour}",
                parameters={"release": release, "hour": hour, "started_at": started_at, "hours": night.hours,
                            "hour_seconds": night.hour_seconds, "blocks": blocks},
                state=Scheduled(scheduled_time=datetime.fromtimestamp(due + SETTLE_SECONDS, timezone.utc)),
                # a retried task returns the runs it made rather than a second night
                idempotency_key=f"first-night-v{release}-{started_at:.3f}-hour-{hour}")
            runs.append({"hour": hour, "due": due, "flow_run_id": str(run.id)})
    return {"scheduled": True, "deployment": FIRST_NIGHT_HOUR_DEPLOYMENT, "started_at": started_at,
            "hours": night.hours, "hour_seconds": night.hour_seconds, "runs": runs,
            "flow_run_id": runs[-1]["flow_run_id"]}


@task(name="name the run", cache_policy=NO_CACHE)
def rename_flow_run(flow_run_id: str, name: str) -> None:
    """Give a run the name it could only know once it started (the release it found)."""
    with get_client(sync_client=True) as client:
        client.update_flow_run(flow_run_id, name=name)


@task(name="read the parameters of a run", cache_policy=NO_CACHE)
def read_flow_run_parameters(flow_run_ref: str) -> dict:
    """The parameters another run was started with; `flow_run_ref` is its id, or the resource id
    an event names (`prefect.flow-run.<id>`)."""
    with get_client(sync_client=True) as client:
        return dict(client.read_flow_run(flow_run_ref.removeprefix("prefect.flow-run.")).parameters)
