"""The gate's policy: how much evidence, how much patience. The field card is the default."""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["JudgePolicy"]


@dataclass(frozen=True)
class JudgePolicy:
    # Enough data to be green at all.
    min_intervals: int = 3
    min_seconds: float = 300.0  # and at least this much observed time before Proceed
    min_requests: float = 200.0  # canary requests per stage for request-derived signals
    min_keyed_requests: float = 100.0  # canary keyed requests for idempotency conflicts

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

    # Patience.
    hold_budget_seconds: float = 1200.0

    @classmethod
    def from_mapping(cls, data: dict, path: str = "policy") -> JudgePolicy:
        """Build from a mapping of overrides; an unknown key or a bad value raises ValueError."""
        known = {f.name: f for f in fields(cls)}
        values = {}
        for key, raw in data.items():
            if key not in known:
                raise ValueError(f"{path}.{key}: unknown policy field")
            if isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw < 0:
                raise ValueError(f"{path}.{key}: expected a non-negative number")
            values[key] = int(raw) if known[key].type == "int" else float(raw)
        return cls(**values)
