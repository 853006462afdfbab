"""The micro blast radius drill's rules: what traffic it sends and when it passes.

The drill sends header-routed traffic (`X-Canary:` the router's pin) to the canary only, in the users'
mix, before any user is moved. It passes when the canary answered as a healthy service would
(success ratio, p95 and 5xx within the field card, beyond the doubt a few seconds of traffic
leave), served the release, and stable saw none of it. The p95 limit is the threshold of the
list's signal with role `latency`, the 5xx limit that of the one with role `errors` (a list
without one leaves that limit out, and the verdict says so).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from golive.signals import CATALOGUE, Signal, by_role

__all__ = ["MIN_SUCCESS_RATIO", "DrillRequest", "DrillSample", "evaluate", "plan_request", "samples_csv"]

MIN_SUCCESS_RATIO = 0.99
# A few seconds of traffic is a small sample: a limit is broken when the requests past it are
# more than the limit allows beyond doubt (one-sided binomial test), not when a noisy p95 of 80
# requests lands 4 ms over.
DOUBT_ALPHA = 0.01
# One keyed order in ten is sent again with its key: the canary must refuse it with 409.
REPLAY_SHARE = 0.1
SYMBOLS = ("BTCUSD", "ETHUSD", "SOLUSD", "AAPL", "TSLA")


@dataclass(frozen=True)
class DrillRequest:
    kind: str  # order, order-replay, quote, page; get (a drill of paths)
    method: str
    path: str
    json: dict | None = None
    key: str | None = None

    def expected(self, status: int) -> bool:
        if self.kind == "order":
            return status in (201, 403)  # 403: the risk engine refused, a business answer
        if self.kind == "order-replay":
            return status in (409, 403)
        if self.kind == "get":
            return status < 500  # any service's own answer (a 404 of a path it lacks), not a failure of it
        return status == 200


@dataclass(frozen=True)
class DrillSample:
    kind: str
    status: int | None  # None: no answer
    latency_ms: float
    version: str | None
    expected: bool


def plan_request(rng: random.Random, sequence: int, run_id: str, last_key: str | None,
                 paths: Sequence[str] = ()) -> DrillRequest:
    """The next request of the users' mix (45 % orders, all keyed, 40 % quotes, 15 % pages), or a
    GET of one of `paths` (target.drill_paths) for a service that is not the demo."""
    if paths:
        return DrillRequest("get", "GET", rng.choice(list(paths)))
    roll = rng.random()
    if roll < 0.45:
        if last_key and rng.random() < REPLAY_SHARE:
            return DrillRequest("order-replay", "POST", "/api/exec/order",
                                {"symbol": "BTCUSD", "side": "buy", "quantity": 0.01}, last_key)
        body = {"symbol": rng.choice(SYMBOLS), "side": rng.choice(("buy", "sell")),
                "quantity": round(rng.uniform(0.01, 1.0), 3)}
        return DrillRequest("order", "POST", "/api/exec/order", body, f"drill-{run_id}-{sequence}")
    if roll < 0.85:
        return DrillRequest("quote", "GET", f"/api/quote/{rng.choice(SYMBOLS)}")
    return DrillRequest("page", "GET", "/app")


def _binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    if k <= 0:
        return 1.0
    return sum(math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
                        + i * math.log(p) + (n - i) * math.log1p(-p)) for i in range(k, n + 1))


def _beyond_doubt(count: int, n: int, allowed_share: float) -> bool:
    return n > 0 and count / n > allowed_share and _binomial_tail(count, n, allowed_share) < DOUBT_ALPHA


def _p95(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def evaluate(samples: Sequence[DrillSample], release: str, stable_requests: float | None,
             canary_requests: float | None, catalogue: tuple[Signal, ...] = CATALOGUE) -> dict:
    """The drill's verdict from what it saw and what the services counted, against the
    thresholds of `catalogue` (the release's, overrides included)."""
    latency, errors = by_role(catalogue, "latency"), by_role(catalogue, "errors")
    answered = [s for s in samples if s.status is not None]
    as_expected = sum(s.expected for s in samples)
    ratio = as_expected / len(samples) if samples else 0.0
    p95 = _p95([s.latency_ms for s in answered])
    error_pct = 100 * sum(s.status >= 500 for s in answered) / len(samples) if samples else 0.0
    versions = Counter(s.version or "unknown" for s in answered)
    failures = []
    if not samples:
        failures.append("no request was sent")
    if ratio < MIN_SUCCESS_RATIO:
        failures.append(f"{ratio:.1%} of requests answered as expected (at least {MIN_SUCCESS_RATIO:.0%})")
    unchecked = []
    if latency is not None:
        slow = sum(s.latency_ms > latency.threshold for s in answered)
        if p95 is not None and p95 > latency.threshold and _beyond_doubt(slow, len(answered), 0.05):
            failures.append(f"p95 {p95:.0f} ms > {latency.threshold:g} ms "
                            f"({slow} of {len(answered)} requests slower, more than 5 % beyond doubt)")
    else:
        unchecked.append("p95 (no signal with role latency)")
    server_errors = sum(s.status >= 500 for s in answered)
    if errors is None:
        unchecked.append("5xx (no signal with role errors)")
    elif error_pct > errors.threshold and _beyond_doubt(server_errors, len(samples), errors.threshold / 100):
        failures.append(f"5xx {error_pct:.2f}% > {errors.threshold:g}% ({server_errors} of {len(samples)})")
    if set(versions) - {release}:
        failures.append(f"served by {dict(versions)}, not only {release}")
    if stable_requests is None:
        failures.append("stable's request counter could not be read")
    elif stable_requests > 0:
        failures.append(f"stable received {stable_requests:g} drill requests")
    return {
        "requests": len(samples), "as_expected": as_expected, "success_ratio": round(ratio, 4),
        "p95_ms": None if p95 is None else round(p95, 1), "http_5xx_pct": round(error_pct, 3),
        "versions_seen": dict(versions), "stable_requests": stable_requests,
        "canary_requests": canary_requests, "ok": not failures, "failures": failures,
        **({"unchecked": unchecked} if unchecked else {}),
    }


def samples_csv(samples: Sequence[dict]) -> str:
    """The drill's requests, one row each, for the evidence."""
    lines = ["kind,status,latency_ms,version,expected"]
    lines += [f"{s['kind']},{'' if s['status'] is None else s['status']},{s['latency_ms']},{s['version'] or ''},"
              f"{int(s['expected'])}" for s in samples]
    return "\n".join(lines) + "\n"
