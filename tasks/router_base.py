"""What every traffic router has in common: the interface and its errors (one module, so the
implementations and the tasks that pick one import it and not each other)."""

from __future__ import annotations

from typing import Protocol

__all__ = ["RouterError", "RouterForbidden", "TrafficRouter", "retry_unless_forbidden"]


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
