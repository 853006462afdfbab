"""A seeded generator of realistic canary rollouts, in the judge's scenario format.

Each rollout is one stage: 15 one-minute intervals in which both arms see the same diurnal drift,
requests split by the stage's share, latency drawn per request (p95 taken from the sample), error
and event counts with overdispersion (a gamma-distributed rate per interval and arm), warm-up
noise on the canary's first intervals, and a few missing intervals. Classes:

- healthy: the canary behaves exactly like stable, inside every threshold;
- breach: one signal of the canary goes over its threshold and stays there (from a random onset);
- deviation: one signal of the canary is clearly worse than stable, still inside the threshold;
- nodata: one signal of the canary never reports, or the canary sees almost no traffic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

INTERVALS = 15
INTERVAL_SECONDS = 60
STAGES = (1, 5, 25, 50, 100)


@dataclass
class Arm:
    """Per-request behaviour of one version."""

    latency_median_ms: float = 55.0
    latency_sigma: float = 0.5  # lognormal: p95 ~ median * e^(1.645 sigma) ~ 125 ms
    error_rate: float = 0.002  # share of requests answered 5xx
    risk_per_min: float = 0.15  # risk blocks per minute at full traffic
    risk_share: float = 0.0  # a faulty risk engine blocking this share of requests on top
    keyed_share: float = 0.4  # share of requests carrying an idempotency key
    conflict_rate: float = 0.003  # conflicts among keyed requests
    csp_rate: float = 0.01  # CSP reports per request
    ws_staleness_s: float = 1.5
    loop_p95_ms: float = 12.0
    gc_mean_ms: float = 5.0
    silent: set[str] = field(default_factory=set)  # signals that never report


@dataclass
class Rollout:
    label: str  # healthy | breach | deviation | nodata
    signal: str | None  # the signal the class is about
    stage: int
    intervals: list[dict]  # per interval: signal -> {"canary": obs, "baseline": obs}

    def scenario(self, looks: int) -> dict:
        """The scenario a gate sees after `looks` intervals."""
        signals: dict[str, dict[str, list]] = {}
        for interval in self.intervals[:looks]:
            for name, arms in interval.items():
                entry = signals.setdefault(name, {"canary": [], "baseline": []})
                entry["canary"].append(arms["canary"])
                entry["baseline"].append(arms["baseline"])
        return {"stage_percent": self.stage, "interval_seconds": INTERVAL_SECONDS, "signals": signals}


def _gamma_noise(rng: np.random.Generator, shape: float) -> float:
    return float(rng.gamma(shape, 1.0 / shape))


def _counts(rng, requests: float, rate: float, dispersion_shape: float = 15.0) -> float:
    return float(rng.poisson(max(0.0, requests * rate * _gamma_noise(rng, dispersion_shape))))


def _p95(rng, arm: Arm, requests: int, drift: float, warmup: float) -> float | None:
    if requests <= 0:
        return None
    n = min(requests, 4000)
    sample = rng.lognormal(math.log(arm.latency_median_ms * drift * warmup), arm.latency_sigma, n)
    return float(np.quantile(sample, 0.95))


def _interval(rng, arms: dict[str, Arm], requests: dict[str, int], drift: float, minute: int) -> dict:
    out: dict[str, dict] = {}
    system = sum(requests.values())
    for track, arm in arms.items():
        n = requests[track]
        warmup = 1.0 + (0.15 * rng.random() if track == "canary" and minute < 2 else 0.0)
        err = _counts(rng, n, arm.error_rate)
        keyed = float(rng.binomial(n, arm.keyed_share)) if n else 0.0
        conflicts = _counts(rng, keyed, arm.conflict_rate)
        risk = _counts(rng, n, arm.risk_per_min / max(system, 1) + arm.risk_share) if n else 0.0
        csp = _counts(rng, n, arm.csp_rate)
        obs = {
            "api_p95_ms": {"value": _p95(rng, arm, n, drift, warmup)},
            "http_5xx_pct": {"value": 100 * err / n if n else None, "bad": err, "total": float(n)},
            "ws_staleness_s": {"value": arm.ws_staleness_s * _gamma_noise(rng, 8)},
            "risk_blocks_per_min": {"value": risk / (INTERVAL_SECONDS / 60) if n else None, "bad": risk, "total": float(n)},
            "idempotency_conflict_pct": {"value": 100 * conflicts / keyed if keyed else None, "bad": conflicts, "total": keyed},
            "csp_violations_per_min": {"value": csp / (INTERVAL_SECONDS / 60) if n else None, "bad": csp, "total": float(n)},
            "event_loop_p95_ms": {"value": arm.loop_p95_ms * drift * _gamma_noise(rng, 25)},
            "gc_pause_avg_ms": {"value": arm.gc_mean_ms * _gamma_noise(rng, 25)},
        }
        for name, o in obs.items():
            if name in arm.silent or rng.random() < 0.03:  # scrape gaps happen
                obs[name] = {"value": None}
        for name, o in obs.items():
            out.setdefault(name, {})[track] = o
    return out


# What each class does to the canary: (signal, change to the Arm) -- breaches well past the
# threshold, deviations clearly worse than stable yet inside it.
_BREACHES = {
    "api_p95_ms": lambda a, r: setattr(a, "latency_median_ms", a.latency_median_ms * r.uniform(2.2, 3.2)),
    "http_5xx_pct": lambda a, r: setattr(a, "error_rate", r.uniform(0.02, 0.08)),
    "ws_staleness_s": lambda a, r: setattr(a, "ws_staleness_s", r.uniform(40, 90)),
    "risk_blocks_per_min": lambda a, r: setattr(a, "risk_share", r.uniform(0.005, 0.02)),
    "idempotency_conflict_pct": lambda a, r: setattr(a, "conflict_rate", r.uniform(0.03, 0.1)),
    "csp_violations_per_min": lambda a, r: setattr(a, "csp_rate", a.csp_rate * r.uniform(3.0, 10.0)),
    "event_loop_p95_ms": lambda a, r: setattr(a, "loop_p95_ms", r.uniform(80, 150)),
    "gc_pause_avg_ms": lambda a, r: setattr(a, "gc_mean_ms", r.uniform(30, 60)),
}
_DEVIATIONS = {
    "api_p95_ms": lambda a, r: setattr(a, "latency_median_ms", a.latency_median_ms * r.uniform(1.35, 1.55)),
    "http_5xx_pct": lambda a, r: setattr(a, "error_rate", a.error_rate * r.uniform(3.0, 4.5)),
    "idempotency_conflict_pct": lambda a, r: setattr(a, "conflict_rate", a.conflict_rate * r.uniform(3.0, 3.3)),
    "event_loop_p95_ms": lambda a, r: setattr(a, "loop_p95_ms", a.loop_p95_ms * r.uniform(2.0, 3.0)),
    "gc_pause_avg_ms": lambda a, r: setattr(a, "gc_mean_ms", a.gc_mean_ms * r.uniform(2.0, 3.0)),
}


def generate(label: str, rng: np.random.Generator) -> Rollout:
    stage = int(rng.choice(STAGES[:-1] if label in ("deviation", "breach") else STAGES))
    per_minute = float(rng.uniform(1500, 6000))  # whole-system requests per minute
    stable, canary = Arm(), Arm()
    signal = None
    onset = 0
    if label == "breach":
        signal = str(rng.choice(list(_BREACHES)))
        _BREACHES[signal](canary, rng)
        onset = int(rng.integers(0, 4))
    elif label == "deviation":
        signal = str(rng.choice(list(_DEVIATIONS)))
        if signal in ("http_5xx_pct", "idempotency_conflict_pct"):
            stage = max(stage, 25)  # a 3x rate difference needs traffic to be seen at all
        _DEVIATIONS[signal](canary, rng)
    elif label == "nodata":
        if rng.random() < 0.5:
            signal = str(rng.choice(list(_BREACHES)))
            canary.silent.add(signal)
        else:
            per_minute = float(rng.uniform(20, 200))
            stage = 1
    phase = rng.uniform(0, 2 * math.pi)
    intervals = []
    healthy_canary = Arm()
    for minute in range(INTERVALS):
        drift = 1.0 + 0.2 * math.sin(phase + minute / 10)
        traffic = per_minute * drift
        requests = {
            "canary": int(rng.poisson(traffic * stage / 100)),
            "baseline": int(rng.poisson(traffic * (100 - stage) / 100)),
        }
        arms = {"canary": canary if minute >= onset else healthy_canary, "baseline": stable}
        intervals.append(_interval(rng, arms, requests, drift, minute))
    return Rollout(label, signal, stage, intervals)
