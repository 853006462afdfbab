"""What a stage does with a verdict: the runbook's Proceed / Hold / Rollback, with a hold budget.

The judge is consulted every interval. A rollback is acted on at once; a proceed only at the end
of the observation window (the dwell, or a hold's re-measurement), so that a stage is watched
for its whole dwell; a hold at the end of a window opens a new window of `hold_seconds`, as long
as the holds fit in the stage's hold budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["GateAction", "gate_action"]

Action = Literal["continue", "proceed", "hold", "rollback"]


@dataclass(frozen=True)
class GateAction:
    action: Action
    triggers: tuple[str, ...] = ()
    reason: str = ""


def gate_action(
    decision: str,
    triggers: tuple[str, ...] | list[str],
    window_complete: bool,
    held_seconds: float,
    hold_seconds: float,
    hold_budget_seconds: float,
    metrics_answered: bool = True,
) -> GateAction:
    """The next step after one judgement.

    `held_seconds` is the time already spent in holds this stage; `metrics_answered` is False
    when Prometheus gave no answer at all for the window (not "no data": no response).
    """
    if decision == "rollback":
        return GateAction("rollback", tuple(triggers), "the judge raised a rollback trigger")
    if not window_complete:
        return GateAction("continue")
    if decision == "proceed":
        return GateAction("proceed", reason="8/8 green over the window")
    if held_seconds + hold_seconds > hold_budget_seconds:
        trigger = "hold-budget-exhausted" if metrics_answered else "metrics-unreachable"
        return GateAction("rollback", (trigger,),
                          f"still not green after {held_seconds:g} s of holds (budget {hold_budget_seconds:g} s)")
    return GateAction("hold", reason=f"re-measure for {hold_seconds:g} s")
