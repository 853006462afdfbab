"""How a go-live ends, and where each ending leaves the users' traffic.

Every run ends in one of these states, and the name never denies where the traffic is: a run
whose stages all proceeded but whose success criteria fail rolls back before it ends, an error or
a cancel rolls back before the run ends, and a rollback that cannot verify weight 0 says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["ENDINGS", "Ending", "ending_of"]


@dataclass(frozen=True)
class Ending:
    name: str
    succeeded: bool
    traffic: str  # where the users' traffic is when the run has ended in it
    next_step: str  # what the operator does now


ENDINGS: dict[str, Ending] = {e.name: e for e in (
    Ending("Live", True, "100 % on the release; stable serves no user",
           "watch the first night; the closing tagged the release and lifted the freeze"),
    Ending("RolledBack", False, "0 % on the canary, read back from the router: every user on stable",
           "read rollback_<UTC>.txt for the trigger and the signals; fix, then go live again"),
    Ending("RollbackFailed", False, "unknown: weight 0 could not be verified, users may still reach the canary",
           "page now: run `golive rollback` again or set the router by hand, and check the weight"),
    Ending("NoGo", False, "untouched: the flight check failed before any weight moved",
           "read the failed checks (preflight_*.json); a weight left raised names the rollback to run"),
    Ending("Refused", False, "untouched by this run: another run owns the traffic target or the release",
           "wait for the run it names, or cancel it (a cancelled go-live rolls back)"),
    Ending("Cancelled", False, "0 % on the canary: the cancel rolled back before the run ended",
           "read rollback_<UTC>.txt (trigger `cancelled`); go live again when ready"),
    Ending("Crashed", False, "0 % on the canary once the rollback deployment ran for it",
           "check the rollback run the crash started (trigger `crashed`); go live again with recover"),
    Ending("Superseded", False,
           "not this run's: a newer writer (a rollback, an operator, a newer go-live) took the target, "
           "and this run moved nothing after it",
           "read the rollback record or the run the message names; go live again when ready"),
)}


def ending_of(stages: Sequence[Mapping], unmet: Sequence[str], criteria_rollback: str | None = None,
              superseded_by: str | None = None) -> Ending:
    """The ending of a go-live whose flight check cleared: from its stage records (oldest first),
    the success criteria still unmet, how the rollback for those ended, if one ran, and why the
    run no longer holds the target, if it does not (fenced off, or rolled back by another while
    it ran: never Live)."""
    last = stages[-1] if stages else None
    if last is not None and last.get("outcome") == "rollback":
        return ENDINGS[last.get("rollback") or "RollbackFailed"]
    if superseded_by or (last is not None and last.get("outcome") == "superseded"):
        return ENDINGS["Superseded"]
    if unmet:
        return ENDINGS[criteria_rollback or "RollbackFailed"]
    return ENDINGS["Live"]
