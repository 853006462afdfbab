"""Prefect flows: orchestration only, one deployable flow per file, reading like the runbook."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def subflows_without_heartbeats(body: Callable[P, R]) -> Callable[P, R]:
    """A flow's body whose subflows send no heartbeats. Prefect joins a run's heartbeat thread at
    the run's end, and that thread sleeps in whole seconds: every subflow would end up to a second
    late (about a second for a short one; a go-live runs a dozen). The outer run's own heartbeats
    go on (its thread started before the body), and they are the ones the safety net watches.
    Goes under `@flow`, so the flow's parameters stay the body's."""

    @functools.wraps(body)
    def without_heartbeats(*args: P.args, **kwargs: P.kwargs) -> R:
        from prefect.settings import temporary_settings

        with temporary_settings(updates={"flows.heartbeat_frequency": None}):
            return body(*args, **kwargs)

    # The body's annotations resolved where it was written: Prefect validates a flow's
    # parameters against them, and this module does not know the body's types.
    without_heartbeats.__signature__ = inspect.signature(body, eval_str=True)  # type: ignore[attr-defined]
    return without_heartbeats


def with_its_clients(body: Callable[P, R]) -> Callable[P, R]:
    """A flow's body that holds its run's HTTP clients (`tasks.http_client.clients_for_this_run`)
    and closes them when it ends. Goes under `@flow`, as `subflows_without_heartbeats` does."""

    @functools.wraps(body)
    def holding_clients(*args: P.args, **kwargs: P.kwargs) -> R:
        from tasks.http_client import clients_for_this_run

        with clients_for_this_run():
            return body(*args, **kwargs)

    holding_clients.__signature__ = inspect.signature(body, eval_str=True)  # type: ignore[attr-defined]
    return holding_clients
