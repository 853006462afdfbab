"""Scenario builders for judge tests: a healthy 25 % stage, and ways to spoil one signal."""

from __future__ import annotations

import copy
import math
import random

# One interval of a healthy 25 % canary: 1,000 canary and 3,000 stable requests a minute.
HEALTHY = {
    "api_p95_ms": ({"value": 130.0}, {"value": 128.0}),
    "http_5xx_pct": ({"value": 0.2, "bad": 2, "total": 1000}, {"value": 0.2, "bad": 6, "total": 3000}),
    "ws_staleness_s": ({"value": 1.5}, {"value": 1.5}),
    "risk_blocks_per_min": ({"value": 0.0, "bad": 0, "total": 1000}, {"value": 0.0, "bad": 0, "total": 3000}),
    "idempotency_conflict_pct": ({"value": 0.25, "bad": 1, "total": 400}, {"value": 0.25, "bad": 3, "total": 1200}),
    "csp_violations_per_min": ({"value": 10.0, "bad": 10, "total": 1000}, {"value": 30.0, "bad": 30, "total": 3000}),
    "event_loop_p95_ms": ({"value": 12.0}, {"value": 12.0}),
    "gc_pause_avg_ms": ({"value": 5.0}, {"value": 5.0}),
}
# Deterministic wobble so that continuous series are not flat lines.
WOBBLE = (0.0, 0.02, -0.015, 0.01, -0.02, 0.015, -0.01, 0.02, -0.005, 0.005)


def healthy(intervals: int = 10, stage: float = 25, interval_seconds: float = 60) -> dict:
    signals: dict[str, dict[str, list]] = {}
    for name, (canary, baseline) in HEALTHY.items():
        entry = {"canary": [], "baseline": []}
        for i in range(intervals):
            w = 1 + WOBBLE[i % len(WOBBLE)]
            c, b = copy.deepcopy(canary), copy.deepcopy(baseline)
            if "bad" not in c:
                c["value"] = round(c["value"] * w, 3)
                b["value"] = round(b["value"] * (2 - w), 3)
            entry["canary"].append(c)
            entry["baseline"].append(b)
        signals[name] = entry
    return {"stage_percent": stage, "interval_seconds": interval_seconds, "signals": signals}


def set_values(scenario: dict, signal: str, arm: str, values: list, *, start: int = 0) -> dict:
    """Overwrite an arm's values from interval `start` (continuous signals)."""
    series = scenario["signals"][signal][arm]
    for offset, v in enumerate(values):
        series[start + offset]["value"] = v
    return scenario


def set_counts(scenario: dict, signal: str, arm: str, bad: float, total: float | None = None,
               *, start: int = 0, end: int | None = None, unit: float = 100.0) -> dict:
    """Overwrite an arm's counts (and the value they imply) for intervals [start, end)."""
    series = scenario["signals"][signal][arm]
    for obs in series[start:end]:
        obs["bad"] = bad
        if total is not None:
            obs["total"] = total
        obs["value"] = unit * obs["bad"] / obs["total"] if obs["total"] else None
    return scenario


def noisy_healthy(rng: random.Random, intervals: int = 15, stage: float = 25) -> dict:
    """A healthy rollout with Poisson-like counts and noisy continuous signals, canary == stable."""
    scenario = healthy(intervals, stage)
    share = stage / 100
    for name, entry in scenario["signals"].items():
        for c, b in zip(entry["canary"], entry["baseline"]):
            if "bad" in c:
                rate = HEALTHY[name][1]["bad"] / HEALTHY[name][1]["total"]
                keyed = 0.4 if name == "idempotency_conflict_pct" else 1.0
                c["total"] = round(4000 * share * keyed)
                b["total"] = round(4000 * (1 - share) * keyed)
                c["bad"] = _poisson(rng, c["total"] * rate)
                b["bad"] = _poisson(rng, b["total"] * rate)
                for o in (c, b):
                    o["value"] = 100 * o["bad"] / o["total"]
            else:
                base = HEALTHY[name][1]["value"]
                c["value"] = base * rng.lognormvariate(0, 0.08)
                b["value"] = base * rng.lognormvariate(0, 0.03)
    return scenario


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method is fine for the small means used here.
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def looks(scenario: dict, first: int = 3):
    """The scenario as a gate sees it after 3, 4, … intervals."""
    n = len(next(iter(scenario["signals"].values()))["canary"])
    for look in range(first, n + 1):
        cut = copy.deepcopy(scenario)
        for entry in cut["signals"].values():
            entry["canary"] = entry["canary"][:look]
            entry["baseline"] = entry["baseline"][:look]
        yield look, cut
