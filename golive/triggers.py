"""The twenty rollback triggers: one catalogue, whoever raises them.

The judge raises those it can see in the numbers of a scenario; the flows raise those that need
live state (the router, the pods, the clock, a person). Either way a rollback names its trigger
by the id below, so evidence and alerts speak one language.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from golive.signals import CATALOGUE

__all__ = ["SHADOW_TRIGGERS", "STOPS", "TRIGGERS", "Trigger", "breach_trigger_id", "describe", "trigger"]


@dataclass(frozen=True)
class Trigger:
    id: str
    fires_when: str
    evaluated_by: Literal["judge", "flow"]


def breach_trigger_id(signal_name: str) -> str:
    return f"breach:{signal_name}"


_BREACHES = tuple(
    Trigger(
        breach_trigger_id(s.name),
        f"{s.title} over its threshold ({s.rule_text()}) for consecutive intervals, "
        "significantly so, not falling, and not breached by stable as well",
        "judge",
    )
    for s in CATALOGUE
)

TRIGGERS: tuple[Trigger, ...] = _BREACHES + (
    Trigger(
        "critical-regression",
        "a signal confidently more than the critical ratio (default 3x) worse than stable",
        "judge",
    ),
    Trigger(
        "nodata-beyond-budget",
        "a signal has had no canary data for longer than the stage's hold budget",
        "judge",
    ),
    Trigger(
        "weight-not-applied",
        "the router reads back another weight, or the observed traffic share is off tolerance",
        "flow",
    ),
    Trigger("version-mismatch", "the canary serves a version other than the release", "flow"),
    Trigger("canary-not-ready", "canary pods or processes not ready / health check failing", "flow"),
    Trigger("crash-loop", "canary restart count rising during the stage", "flow"),
    Trigger("manual-abort", "an operator aborted the release or rejected a stage", "flow"),
    Trigger(
        "hold-budget-exhausted",
        "the stage held past its hold budget (its deadline) without turning green",
        "flow",
    ),
    Trigger("metrics-unreachable", "Prometheus or the alert source did not answer for longer than the hold budget",
            "flow"),
    Trigger("error-budget-burn", "SLO burn rate >= 14.4 over 1 h and 5 min", "flow"),
    Trigger("critical-alert", "a critical alert for the service is firing", "flow"),
    Trigger("drill-failed", "the flight check's drill (the micro blast radius) failed: NoGo before any traffic moved",
            "flow"),
)

# Why a go-live stopped when no signal of the canary asked it to: the run's own endings. They
# roll back like a trigger does, and name their cause the same way.
STOPS: tuple[Trigger, ...] = (
    Trigger("orchestrator-error", "the go-live failed (a Prometheus or router error, a bug) with traffic on the canary",
            "flow"),
    Trigger("cancelled", "the run was cancelled (Prefect's UI or API) or interrupted", "flow"),
    Trigger("crashed", "the run's process died (killed, machine lost); the rollback deployment took over", "flow"),
    Trigger("success-criteria-unmet", "every stage proceeded but a success criterion still fails at 100 %", "flow"),
)

# The shadow stage's own, beside the twenty: what only a mirror can show, before any user is on the canary.
SHADOW_TRIGGERS: tuple[Trigger, ...] = (
    Trigger("shadow-drift", "the paper fills drift from the live fills of the same orders (p99 over the policy's "
                            "limit) or disagree with them", "flow"),
    Trigger("shadow-response-difference", "the canary's answers to the mirror's copies differ from stable's "
            "on a route's field more often than a second stable instance's do (policy.shadow.response_margin_pct)",
            "flow"),
    Trigger("shadow-slows-primary", "stable's latency with the mirror on is past the policy's ratio to its level "
                                    "before it, for consecutive intervals", "flow"),
)

_BY_ID = {t.id: t for t in TRIGGERS + STOPS + SHADOW_TRIGGERS}


def describe(triggers: list[str] | tuple[str, ...], signals: dict) -> str:
    """The triggers of a rollback, each breach with the numbers behind it, for the rollback record."""
    parts = []
    for fired in triggers:
        name = fired.split(":", 1)[1] if fired.startswith("breach:") else None
        if name and name in signals:
            v = signals[name]
            stable = "–" if v.get("baseline") is None else format(v["baseline"], ".4g")
            canary = "–" if v.get("canary") is None else format(v["canary"], ".4g")
            parts.append(f"{fired} ({v.get('detail', '')}; canary {canary}, stable {stable}, rule {v.get('rule', '')})")
        else:
            parts.append(fired)
    return "; ".join(parts)


def trigger(trigger_id: str) -> Trigger:
    """The catalogue entry for an id; ``KeyError`` for an id not in the catalogue."""
    return _BY_ID[trigger_id]
