"""The micro blast radius: stable sees no request, and the limits hold beyond a small sample's doubt."""

from __future__ import annotations

from golive.blast_radius import DrillSample, evaluate


def test_the_blast_radius_fails_when_stable_saw_a_single_request():
    samples = [DrillSample("order", 201, 40.0, "1.4.0", True), DrillSample("order-replay", 409, 30.0, "1.4.0", True),
               *(DrillSample("quote", 200, 20.0, "1.4.0", True) for _ in range(98))]
    assert evaluate(samples, "1.4.0", stable_requests=0, canary_requests=100)["ok"]
    leaked = evaluate(samples, "1.4.0", stable_requests=1, canary_requests=99)
    assert leaked["failures"] == ["stable received 1 drill requests"]


def test_the_blast_radius_limits_hold_beyond_the_doubt_of_a_small_sample():
    def drill(slow: int, errors: int, n: int = 80) -> dict:
        samples = ([DrillSample("quote", 200, 250.0, "1.4.0", True)] * slow
                   + [DrillSample("quote", 503, 5.0, "1.4.0", False)] * errors
                   + [DrillSample("quote", 200, 20.0, "1.4.0", True)] * (n - slow - errors))
        return evaluate(samples, "1.4.0", 0, n)

    assert drill(slow=5, errors=0)["ok"]  # p95 just over 200 ms on 80 requests: noise
    assert drill(slow=20, errors=0)["failures"] == [
        "p95 250 ms > 200 ms (20 of 80 requests slower, more than 5 % beyond doubt)"]
    assert not any(f.startswith("5xx") for f in drill(slow=0, errors=1)["failures"])  # one in 80
    assert any(f.startswith("5xx 6.25% > 1% (5 of 80)") for f in drill(slow=0, errors=5)["failures"])


def test_the_limits_are_the_releases_own_thresholds():
    from golive.signals import CATALOGUE, with_overrides

    slow = [DrillSample(kind="quote", status=200, latency_ms=300.0, version="1.4.0", expected=True)] * 100
    assert not evaluate(slow, "1.4.0", 0, 100)["ok"]
    relaxed = with_overrides(CATALOGUE, {"api_p95_ms": {"threshold": 500}})
    assert evaluate(slow, "1.4.0", 0, 100, relaxed)["ok"]
