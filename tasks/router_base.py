"""What every traffic router has in common: the interface and its errors (one module, so the
implementations and the tasks that pick one import it and not each other).

Every router keeps the fence of `golive.fencing` beside the weight it serves: a weight write
carries its generation and the router refuses any but the newest (`RouterFenced`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Protocol

from golive.fencing import Fence, FenceHolder, TargetState
from golive.settings import RouterSettings

__all__ = ["Deadline", "RouterError", "RouterFenced", "RouterForbidden", "RouterRefused", "TrafficRouter",
           "canary_pin_headers", "read_canary_pin", "retry_unless_refused"]


class RouterError(RuntimeError):
    """The router refused or did not answer; the message says which and why."""


class RouterRefused(RouterError):
    """A refusal that asking again will not change."""


class RouterForbidden(RouterRefused):
    """The router's API denies golive a permission."""


class RouterFenced(RouterRefused):
    """The write's generation is not the target's newest: a newer writer took the target."""

    def __init__(self, message: str, fence: Fence):
        super().__init__(message)
        self.fence = fence


def read_canary_pin(router: RouterSettings) -> str | None:
    """The canary header's value that sends a request to the canary, from `canary_pin_file`; None
    when none is set. An unreadable or empty file is a RouterError naming the setting."""
    if router.canary_pin_file is None:
        return None
    try:
        pin = Path(router.canary_pin_file).read_text().strip()
    except OSError as exc:
        raise RouterError(f"target.router.canary_pin_file: {exc.strerror or exc}: {router.canary_pin_file}") from None
    if not pin or any(c.isspace() or not c.isprintable() or c == '"' for c in pin):
        raise RouterError("target.router.canary_pin_file: expected one word of printable characters, no quote")
    return pin


def canary_pin_headers(router: RouterSettings) -> dict[str, str]:
    """The header that sends a request to the canary: the pin, or `always` when none is set."""
    return {router.canary_header: read_canary_pin(router) or "always"}


def retry_unless_refused(task, task_run, state) -> bool:
    """Prefect's retry condition: retry failures, but not a refusal (a missing permission, a fence)."""
    try:
        state.result()
    except RouterRefused:
        return False
    except Exception:
        return True
    return True


class Deadline:
    """A budget on the monotonic clock (a wall clock that jumps must not end it early or late)."""

    def __init__(self, at: float | None = None):
        self.at = at  # time.monotonic() at which the budget ends; None: no budget

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def left(self) -> float | None:
        return None if self.at is None else self.at - time.monotonic()

    def timeout(self, longest: float) -> float:
        """A request's timeout: `longest`, cut to what is left of the budget (a tenth of a second at least)."""
        left = self.left()
        return longest if left is None else max(0.1, min(longest, left))

    def allows(self, seconds: float) -> bool:
        """True when `seconds` more still end inside the budget."""
        left = self.left()
        return left is None or seconds < left


class TrafficRouter(Protocol):
    def read(self) -> TargetState: ...

    def take_generation(self, holder: FenceHolder, if_generation: int | None = None) -> Fence: ...

    def set_weight(self, weight: int, generation: int, mirror: bool = False) -> int: ...

    # Whether set_weight takes `mirror=True` (at weight 0: the shadow stage).
    mirrors: bool
