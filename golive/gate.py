"""What a stage does with a verdict: the runbook's Proceed / Hold / Rollback, with a hold budget.

The judge is consulted every interval. A rollback is acted on at once; a proceed only at the end
of the observation window (the dwell, or a hold's re-measurement), so that a stage is watched
for its whole dwell; a hold at the end of a window opens a new window of `hold_seconds`, as long
as the holds fit in the stage's hold budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

__all__ = ["GateAction", "gate_action", "share_verdict"]

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


def share_verdict(weight: int, canary: float, total: float, tolerance_points: float) -> tuple[float | None, float, bool]:
    """Does the observed split of users' requests match the weight? (observed %, tolerance, ok).

    At 0 and 100 it is exact, in requests: not one on the side that should have none. Between,
    the tolerance is the larger of the configured points and four binomial standard errors, so a
    short window of a small split is not called wrong for being noisy."""
    observed = 100 * canary / total if total else None
    p = weight / 100
    tolerance = max(tolerance_points, 4 * 100 * math.sqrt(p * (1 - p) / total) if total else 0.0)
    if observed is None:
        return None, tolerance, False
    if weight in (0, 100):
        return observed, tolerance, (canary if weight == 0 else total - canary) <= 1e-9 * total
    return observed, tolerance, abs(observed - weight) <= tolerance
