"""Does the traffic really split as the weight says? The observed share of users' requests
against the weight, within noise."""

from __future__ import annotations

import math

__all__ = ["share_verdict"]


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
    # Judged on the exact ratio; recorded to 6 decimals (counts from increase() are extrapolated:
    # all of them on the canary reads 99.99999999999999).
    if weight in (0, 100):
        return round(observed, 6), tolerance, (canary if weight == 0 else total - canary) <= 1e-9 * total
    return round(observed, 6), tolerance, abs(observed - weight) <= tolerance
