"""The shadow stage's own check on stable: does the mirror slow the users it copies? And the
lines the war room shows of the shadow stage's own checks at each of its decisions.

Pure: the flow reads stable's latency level before the mirror and per interval with it on, and
asks here. The consistency drift between live and paper fills is `golive.drift`'s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["SHADOW_SERIES", "primary_slowed", "shadow_notes", "shadow_series"]

# What the shadow stage pushes for the dashboard (`tasks.pushgateway`), each with its help text.
SHADOW_SERIES = {
    "golive_shadow_mirror_on": "1 while golive's shadow stage has users' requests copied to the canary",
    "golive_shadow_drift_p99_ms": "p99 of |paper fill - live fill| of the same orders, ms, since the mirror",
    "golive_shadow_drift_pairs": "Orders filled both live (stable) and on paper (the canary) since the mirror",
    "golive_shadow_response_difference_points": "The most a route's field of the canary's answers differs from "
                                                "stable's beyond what the secondary's does, in percentage points",
    "golive_shadow_response_pairs": "Requests answered by stable, its secondary and the canary, compared",
}


def primary_slowed(before: float | None, during: Sequence[float | None], max_ratio: float,
                   intervals: int, floor: float = 0.0) -> str | None:
    """Why stable is slowed by the mirror, or None: its level in each of the last `intervals`
    intervals with the mirror on is over `max_ratio` x its level before the mirror, and higher by
    at least `floor` (the judge's absolute floor: 5 % of the signal's threshold, 10 ms of 200, so
    that 20 ms becoming 26 ms is not called a slowdown). Without a level before, or an interval
    without data among the last ones, nothing is said: one slow scrape is not a mirror slowing users."""
    recent = list(during)[-intervals:]
    if before is None or before <= 0 or len(recent) < intervals or any(v is None for v in recent):
        return None
    limit = max(before * max_ratio, before + floor)
    if all(v > limit for v in recent):
        levels = ", ".join(f"{v:.4g}" for v in recent)
        return (f"stable with the mirror on: {levels} in the last {intervals} intervals, over "
                f"{max_ratio:g} x its {before:.4g} before the mirror")
    return None


def shadow_notes(signal: str | None, before: float | None, during: Sequence[float | None],
                 drift: Mapping[str, Any] | None) -> list[str]:
    """What the war room shows under a shadow decision, beside the signals: stable's `signal`
    with the mirror on against before it, and the consistency drift's verdict (`golive.drift`)."""
    notes = []
    if signal is not None:
        now = next((v for v in reversed(list(during)) if v is not None), None)
        if now is None:
            notes.append(f"stable's {signal} with the mirror on: not read yet")
        elif before is None or before <= 0:
            notes.append(f"stable's {signal} with the mirror on: {now:.4g} (not read before the mirror)")
        else:
            notes.append(f"stable's {signal} with the mirror on: {now:.4g}, {now / before:.2f} x its "
                         f"{before:.4g} before the mirror")
    if drift is None:
        notes.append("consistency drift: not measured (the services' fills were not read)")
    else:
        notes.append(f"consistency drift: {drift['verdict']}: {drift['detail']}")
    return notes


def shadow_series(drift: Mapping[str, Any] | None, response_diff: Mapping[str, Any] | None) -> dict[str, float]:
    """The shadow stage's numbers as the gauges of `SHADOW_SERIES`, from the drift (`golive.drift`)
    and the response comparison's evidence (`golive.response_diff`); what was not measured is left
    out, never zero: an empty panel says "not measured", a zero says "no difference"."""
    values = {"golive_shadow_mirror_on": 1.0}
    if drift is not None:
        values["golive_shadow_drift_pairs"] = float(drift["pairs"])
        if drift.get("p99_abs_ms") is not None:
            values["golive_shadow_drift_p99_ms"] = float(drift["p99_abs_ms"])
    compared = sum((response_diff or {}).get("compared_by_route", {}).values())
    if compared:
        excess = [f["raw_pct"] - f["noise_pct"] for f in response_diff.get("fields", ())]
        values["golive_shadow_response_pairs"] = float(compared)
        values["golive_shadow_response_difference_points"] = max([0.0, *excess])
    return values
