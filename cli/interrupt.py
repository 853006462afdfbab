"""A go-live in this process that Ctrl-C rolls back first.

The flow runs in a thread of its own, because an interrupt reaches only the main thread and may
land anywhere (between two stages, in the flight check). On Ctrl-C the main thread runs the
`rollback` flow for the generation the go-live took (`flows.go_live.IN_THIS_PROCESS`): it
takes a newer one at the router, which fences the go-live's thread off whatever it is doing, and
writes weight 0. It then waits for that thread to notice and record its ending, for at most
`grace_seconds` (a second Ctrl-C stops waiting). Ctrl-C is caught by a handler that counts it,
never raised into whatever the main thread is doing.
"""

from __future__ import annotations

import contextlib
import contextvars
import signal
import threading
import time
from collections.abc import Callable, Iterator

from golive.settings import GoLiveSettings

__all__ = ["Interrupted", "run_rolling_back_on_interrupt"]


class Interrupted(Exception):
    """The go-live was interrupted; the rollback ran and its outcome is in the message."""


def run_rolling_back_on_interrupt(settings: GoLiveSettings, run: Callable[[], object], say: Callable[[str], None],
                                  tick: Callable[[], None] = lambda: None, grace_seconds: float = 30.0):
    """`run()` (a go-live flow call) in a thread; its return value. `tick` runs on the main thread
    every half second while it runs (a screen's refresh). Ctrl-C rolls back first, then raises
    Interrupted."""
    outcome: dict = {}
    # An interrupt that lands inside Thread.join() can leave the thread marked stopped while it
    # still runs, so the end is told by an event the thread sets itself.
    ended = threading.Event()

    def target() -> None:
        try:
            outcome["value"] = run()
        except BaseException as exc:  # noqa: BLE001 - re-raised on the main thread
            outcome["error"] = exc
        finally:
            ended.set()

    # With this thread's context: Prefect's settings (the server to use) live in a context variable.
    threading.Thread(target=contextvars.copy_context().run, args=(target,), name="go-live", daemon=True).start()
    with _ctrl_c_counted() as presses:
        while not presses and not ended.wait(0.5):
            tick()
        if presses:
            rolled = _roll_back(settings, say)
            say(f"waiting up to {grace_seconds:g} s for the go-live to stop (Ctrl-C again to stop waiting)")
            deadline = time.monotonic() + grace_seconds
            while len(presses) < 2 and time.monotonic() < deadline and not ended.wait(0.2):
                pass
            raise Interrupted(rolled)
        tick()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@contextlib.contextmanager
def _ctrl_c_counted() -> Iterator[list[float]]:
    """Ctrl-C counted (the moment of each press), not raised, while the go-live runs: a
    KeyboardInterrupt raised wherever the main thread happens to be (inside the screen's refresh,
    between a lock's acquire and its `with`) can leave a lock held that the rollback's first line
    then waits on forever, and the go-live runs on. The rollback itself is not cut short by a
    second press either. Off the main thread no handler can be set, and no Ctrl-C arrives."""
    presses: list[float] = []
    try:
        previous = signal.signal(signal.SIGINT, lambda _signum, _frame: presses.append(time.monotonic()))
    except ValueError:
        previous = None
    try:
        yield presses
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _roll_back(settings: GoLiveSettings, say: Callable[[str], None]) -> str:
    from flows.go_live import IN_THIS_PROCESS
    from flows.rollback import roll_back, rollback_outcome

    taken = IN_THIS_PROCESS.stop()
    if not taken:
        say("interrupted before the go-live took the traffic target: no weight moved, none will")
        return "interrupted before any weight moved"
    say(f"interrupted: rolling back first (the go-live's generation {taken[-1]} is fenced off)")
    state = roll_back(reason="interrupted (Ctrl-C)", release=settings.release, settings=settings,
                      triggered_by="golive (Ctrl-C)", triggers=["cancelled"], generation=taken[-1])
    ended = rollback_outcome(state)
    say(f"{ended}: {state.message}" if state.message else ended)
    return ended
