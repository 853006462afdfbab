"""One canary stage as a state machine: what the gate does with each judgement.

The flow feeds it one observation at a time (the judge's verdict on the window so far) and does
what the returned step says. The rules, in order:

1. A rollback trigger rolls back at once, whenever it fires.
2. Until the observation window is complete (the dwell, or a Hold's re-measurement), keep
   watching: a stage is watched for its whole dwell before it may proceed.
3. Complete, every signal green and every source answered (Prometheus, the alert source, the observed
   traffic split: not knowing whether a critical alert fires is not "no alert"): **proceed**.
4. Complete, and the only thing missing is traffic (every signal that is not green is
   `insufficient`): when the next stage is small enough to judge them (`StagePlan.defers_to`,
   `deferral_stage`), **proceed** and leave those signals to it: it judges them on its own,
   larger share of the users, as it judges every signal. Otherwise **extend** the window. The
   intervals seen are kept, so the evidence accumulates, and every further look may proceed.
   Once the stage has lasted its maximum dwell it is **inconclusive**: by policy a person is
   asked (**pause**) or the canary rolls back. Too little traffic never passes a signal and never
   rolls back on its own.
5. Complete otherwise (a deviation, no data, a source silent): **hold**, a fresh window of
   `hold_seconds`, as the runbook re-measures; once the holds would overrun the stage's hold
   budget, roll back (`hold-budget-exhausted`, or `metrics-unreachable` when a source gave no
   answer at the last look).

A stage's human gate (approval before the weight is raised) waits in the same hold budget.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = ["SHADOW_STAGE", "StageMachine", "StagePlan", "Step", "deferral_stage", "stage_name"]

# The shadow stage, before the first: weight 0, users' requests copied to the canary.
SHADOW_STAGE = 0


def stage_name(percent: int | None) -> str:
    """How a stage is named to people: "shadow", "5%"; "–" when not known (a rollback by hand)."""
    if percent is None:
        return "–"
    return "shadow" if percent == SHADOW_STAGE else f"{percent}%"


def deferral_stage(percent: int, stages: Sequence[int], up_to_percent: int) -> int | None:
    """The stage that judges what stage `percent` saw too little traffic to tell: the next of
    `stages` when it is at most `up_to_percent` (a 1 % stage's thin signals go to 5 %, not to 25 %);
    None: there the stage extends and then asks a person."""
    later = [s for s in stages if s > percent]
    return later[0] if later and later[0] <= up_to_percent else None


Action = Literal["continue", "proceed", "extend", "hold", "pause", "rollback"]
InsufficientPolicy = Literal["pause", "rollback"]

# Intervals end on the clock; a tick a hair before the window's end still completes it.
_EPSILON = 1e-9


@dataclass(frozen=True)
class StagePlan:
    percent: int
    interval_seconds: float
    dwell_seconds: float
    max_dwell_seconds: float
    hold_seconds: float
    hold_budget_seconds: float
    on_insufficient_traffic: InsufficientPolicy = "pause"
    defers_to: int | None = None  # the stage that judges this one's signals short of traffic


@dataclass(frozen=True)
class Step:
    action: Action
    reason: str = ""
    triggers: tuple[str, ...] = ()
    deferred: tuple[str, ...] = ()  # a proceed's signals left to the next stage for lack of traffic


def only_traffic_missing(decision: str, verdicts: Mapping[str, str]) -> bool:
    """The judge held for one reason only: some signals saw too little traffic, none is worse."""
    open_verdicts = [v for v in verdicts.values() if v != "pass"]
    return decision == "hold" and bool(open_verdicts) and all(v == "insufficient" for v in open_verdicts)


class StageMachine:
    """The gate of one stage, from the moment its weight is in force."""

    def __init__(self, plan: StagePlan, started_at: float):
        self.plan = plan
        self.started_at = started_at
        self.window_start = started_at
        self.window_no = 1
        self.looks = 0  # judgements in the current window
        self.holds = 0
        self.held_seconds = 0.0
        self.extended = False  # the current window outlived its length for lack of traffic
        self._window_seconds = plan.dwell_seconds

    def start(self, at: float) -> None:
        """The stage's weight is in force from `at`: its first window opens (the approval before
        it, if any, has already drawn on the hold budget)."""
        self.started_at = self.window_start = at

    @property
    def intervals_in_window(self) -> int:
        return math.ceil(self._window_seconds / self.plan.interval_seconds - _EPSILON)

    @property
    def next_tick(self) -> float:
        """When the next interval of the current window ends."""
        return self.window_start + (self.looks + 1) * self.plan.interval_seconds

    def observe(self, at: float, decision: str, verdicts: Mapping[str, str], triggers: Sequence[str] = (),
                answered: bool = True) -> Step:
        """The next step after the judge looked at the window [window_start, at]; `answered`:
        Prometheus, the alert source and the traffic split all answered by this look."""
        self.looks += 1
        if decision == "rollback":
            return Step("rollback", "the judge raised a rollback trigger", tuple(triggers))
        if self.looks < self.intervals_in_window:
            return Step("continue")
        if decision == "proceed" and answered:
            return Step("proceed", f"{len(verdicts)}/{len(verdicts)} green over the window")
        if answered and only_traffic_missing(decision, verdicts):
            return self._too_little_traffic(at, verdicts)
        return self._hold(at, answered)

    def waited_for_approval(self, seconds: float) -> Step:
        """A person did not answer the stage's gate within `seconds`: a Hold, within the budget."""
        self.held_seconds += seconds
        if self.held_seconds >= self.plan.hold_budget_seconds:
            return Step("rollback", f"no approval within the hold budget ({self.plan.hold_budget_seconds:g} s)",
                        ("hold-budget-exhausted",))
        self.holds += 1
        return Step("hold", f"no answer yet; asked again (waited {self.held_seconds:g} s)")

    def _too_little_traffic(self, at: float, verdicts: Mapping[str, str]) -> Step:
        if self.plan.defers_to is not None:
            thin = tuple(name for name, v in verdicts.items() if v == "insufficient")
            return Step("proceed", f"{len(verdicts) - len(thin)}/{len(verdicts)} green; too little traffic here "
                                   f"to tell {', '.join(thin)}: judged at {stage_name(self.plan.defers_to)}",
                        deferred=thin)
        lasted = at - self.started_at
        if lasted + _EPSILON < self.plan.max_dwell_seconds:
            self.extended = True
            return Step("extend", f"too little traffic to tell yet; the window grows "
                                  f"(stage {lasted:g} s of at most {self.plan.max_dwell_seconds:g} s)")
        reason = (f"inconclusive: too little traffic to tell after the stage's maximum dwell "
                  f"({self.plan.max_dwell_seconds:g} s)")
        if self.plan.on_insufficient_traffic == "rollback":
            return Step("rollback", reason, ("hold-budget-exhausted",))
        return Step("pause", reason)

    def _hold(self, at: float, answered: bool) -> Step:
        if self.held_seconds + self.plan.hold_seconds > self.plan.hold_budget_seconds:
            trigger = "hold-budget-exhausted" if answered else "metrics-unreachable"
            return Step("rollback", f"still not green after {self.held_seconds:g} s of holds "
                                    f"(budget {self.plan.hold_budget_seconds:g} s)", (trigger,))
        self.holds += 1
        self.held_seconds += self.plan.hold_seconds
        self.window_start, self.window_no, self.looks = at, self.window_no + 1, 0
        self.extended = False
        self._window_seconds = self.plan.hold_seconds
        return Step("hold", f"re-measure for {self.plan.hold_seconds:g} s")
