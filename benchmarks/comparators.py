"""The judges golive is compared with, on the same scenarios.

- `static_judge`: the runbook as written. The canary's mean over the window against each
  threshold (CSP against stable's mean x 1.10); a signal without data is not green.
- `kayenta_judge`: Kayenta's classic judge. Per signal a two-sided Mann-Whitney U test of the
  canary's per-interval values against stable's at confidence 0.98, failing when significant and
  the mean ratio exceeds 1 + tolerance (0.25) in the bad direction; signals with no data are left
  out of the score (Kayenta's NODATA). Score = share of signals passing: 100 → proceed,
  <= 75 (Kayenta's default marginal) → rollback, in between → hold.
"""

from __future__ import annotations

import math
from statistics import fmean

from golive.signals import CATALOGUE


def _values(obs: list[dict]) -> list[float]:
    return [o["value"] for o in obs if o.get("value") is not None]


def static_judge(scenario: dict) -> str:
    green = 0
    for sig in CATALOGUE:
        series = scenario["signals"].get(sig.name)
        canary = _values(series["canary"]) if series else []
        if not canary:
            continue
        level = fmean(canary)
        if sig.rule == "max_ratio_to_baseline":
            baseline = _values(series["baseline"])
            if not baseline:
                continue
            over = level > sig.threshold * fmean(baseline)
        elif sig.rule == "below":
            over = level >= sig.threshold
        else:
            over = level > sig.threshold
        if over:
            return "rollback"
        green += 1
    return "proceed" if green == len(CATALOGUE) else "hold"


def _mann_whitney_p(x: list[float], y: list[float]) -> float:
    """Two-sided p-value of the U test by the normal approximation with tie correction."""
    n1, n2 = len(x), len(y)
    pooled = sorted([(v, 0) for v in x] + [(v, 1) for v in y])
    ranks = [0.0] * len(pooled)
    ties = 0.0
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        rank = (i + j) / 2 + 1
        for k in range(i, j + 1):
            ranks[k] = rank
        t = j - i + 1
        ties += t**3 - t
        i = j + 1
    r1 = sum(r for r, (_, arm) in zip(ranks, pooled) if arm == 0)
    u = r1 - n1 * (n1 + 1) / 2
    n = n1 + n2
    var = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1)))
    if var <= 0:
        return 1.0
    z = (abs(u - n1 * n2 / 2) - 0.5) / math.sqrt(var)
    return math.erfc(max(z, 0.0) / math.sqrt(2))


def kayenta_judge(scenario: dict, confidence: float = 0.98, tolerance: float = 0.25) -> str:
    scored = passed = 0
    for sig in CATALOGUE:
        series = scenario["signals"].get(sig.name)
        canary = _values(series["canary"]) if series else []
        baseline = _values(series["baseline"]) if series else []
        if len(canary) < 3 or len(baseline) < 3:
            continue
        scored += 1
        mean_b = fmean(baseline)
        ratio = fmean(canary) / mean_b if mean_b > 0 else (math.inf if fmean(canary) > 0 else 1.0)
        significant = _mann_whitney_p(canary, baseline) < 1 - confidence
        if not (significant and ratio > 1 + tolerance):
            passed += 1
    if scored == 0:
        return "hold"
    score = 100 * passed / scored
    if score >= 100:
        return "proceed"
    if score <= 75:
        return "rollback"
    return "hold"
