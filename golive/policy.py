"""The gate's policy: how much evidence, how much patience. The field card is the default."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

__all__ = ["JudgePolicy"]


@dataclass(frozen=True)
class JudgePolicy:
    # Enough data to be green at all.
    min_intervals: int = 3
    min_seconds: float = 300.0  # and at least this much observed time before Proceed
    # Enough traffic to tell, for count signals: the canary must have served the requests at which
    # a canary at the threshold would have shown an event with probability 1 - min_traffic_alpha
    # (so that a canary showing none is told from one at the threshold at this level; judge.py).
    min_traffic_alpha: float = 0.05
    # A flat minimum of canary requests (keyed requests for idempotency) instead of the statistical
    # one, for a target whose traffic is known (the sandbox's demo): None keeps the statistics.
    min_requests: float | None = None
    min_keyed_requests: float | None = None

    # Absolute thresholds: a breach must hold this many intervals in a row, be significant at
    # `breach_alpha` pooled over them, and not be falling, before it triggers a rollback.
    breach_intervals: int = 3
    breach_alpha: float = 0.001
    interval_alpha: float = 0.05  # one interval's counts over the threshold beyond noise
    lean_alpha: float = 0.2  # counts leaning over the threshold for the stage: not green
    severe_factor: float = 2.0  # this far over: two intervals in a row are enough
    # Or: over the threshold for the stage and recently, and worse than stable at this level.
    # The threshold condition already rules out healthy canaries, so the level can be looser.
    breach_vs_stable_alpha: float = 0.01

    # Canary against stable.
    deviation_alpha: float = 0.05  # e-process level for "worse than stable" (Hold)
    count_null_ratio: float = 1.1  # counts: canary/stable rate ratio tolerated as equal
    relative_margin: float = 0.05  # continuous: per-interval margin of "worse" for the sign test
    relative_tolerance: float = 0.25  # continuous: point estimate this much worse is a deviation
    absolute_floor: float = 0.05  # ... and by at least this share of the threshold
    critical_ratio: float = 3.0  # confidently this many times worse: rollback
    critical_alpha: float = 0.001
    # Levels (latency, loop lag, GC pauses, staleness) depend on load as much as on the release.
    # Above this stage the canary carries more users than stable, so a level comparison would
    # measure the load: only thresholds and trends judge it there (stage 50 % compared at equal load).
    level_comparison_max_percent: float = 50.0
    # A signal the shadow stage ended green on (shown there with the whole traffic) is not held for
    # lack of requests at a stage at or below this percentage; its breach and comparison rules
    # still judge it. 0: no credit.
    shadow_credit_max_percent: float = 5.0

    # Patience.
    hold_budget_seconds: float = 1200.0

    @classmethod
    def from_mapping(cls, data: dict, path: str = "policy") -> JudgePolicy:
        """Build from a mapping of overrides; an unknown key or a value out of its range raises
        ValueError naming the field (`policy.lean_alpha: expected a level in (0, 1), got 5`)."""
        known = {f.name: f for f in fields(cls)}
        values = {}
        for key, raw in data.items():
            if key not in known:
                raise ValueError(f"{path}.{key}: unknown policy field")
            words, ok = _range(key)
            if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw) or not ok(raw):
                raise ValueError(f"{path}.{key}: expected {words}, got {raw!r}")
            values[key] = int(raw) if known[key].type == "int" else float(raw)
        return cls(**values)


def _range(key: str) -> tuple[str, object]:
    """The range an override must be in, as (words, test)."""
    if key.endswith("_alpha"):
        return "a level in (0, 1)", lambda v: 0 < v < 1
    if key in ("min_intervals", "breach_intervals"):
        return "a whole number >= 1", lambda v: v >= 1 and float(v).is_integer()
    if key in ("severe_factor", "count_null_ratio", "critical_ratio"):
        return "a ratio >= 1", lambda v: v >= 1
    if key in ("level_comparison_max_percent", "shadow_credit_max_percent"):
        return "a percentage in [0, 100]", lambda v: 0 <= v <= 100
    return "a finite number >= 0", lambda v: v >= 0
