"""The shadow stage's own check on stable: does the mirror slow the users it copies?

Pure: the flow reads stable's latency level before the mirror and per interval with it on, and
asks here. The consistency drift between live and paper fills is `golive.drift`'s.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["primary_slowed"]


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
