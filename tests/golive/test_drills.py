"""The drills' rules: the teeth detector on synthetic series, the burst's arithmetic, the outbox
percentiles, the contract check and the weekly record."""

from __future__ import annotations

import random

import pytest

from golive.contract import response_problems
from golive.drills import burst_verdict, detect_teeth, outbox_verdict, weekly_record


def _saw(period: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [(i % period) * 1.5 + rng.uniform(-0.3, 0.3) for i in range(60)]


@pytest.mark.parametrize("period", [4, 6, 10, 15])
def test_a_saw_tooth_is_found(period):
    found = detect_teeth(_saw(period, seed=period))
    assert found["found"] and found["teeth"] >= 60 // period - 1


def test_flat_noisy_rising_and_a_single_spike_are_not_teeth():
    assert not detect_teeth([2.0] * 60)["found"]
    for seed in range(200):
        rng = random.Random(seed)
        assert not detect_teeth([5 + rng.gauss(0, 1) for _ in range(60)])["found"], seed
        assert not detect_teeth([0.3 * i + rng.uniform(-0.5, 0.5) for i in range(60)])["found"], seed
    assert not detect_teeth([1.0] * 20 + [5, 10, 15, 20] + [1.0] * 20)["found"]
    assert detect_teeth([1, 2, 3])["found"] is False  # too short to tell


def test_one_key_one_order_and_the_rest_conflicts():
    healthy = burst_verdict([201] + [409] * 99, conflicts_before=10, conflicts_after=109)
    assert healthy["ok"] and healthy["duplicates"] == 0 and not healthy["metric_spiked_beyond_expected"]
    broken = burst_verdict([201] * 7 + [409] * 93, conflicts_before=0, conflicts_after=93)
    assert not broken["ok"] and broken["duplicates"] == 6
    assert broken["failures"] == ["DUPLICATE ORDERS: 7 of 100 requests with one key succeeded (6 duplicates)"]
    lying = burst_verdict([201] + [409] * 99, conflicts_before=0, conflicts_after=150)
    assert lying["metric_spiked_beyond_expected"] and "the conflict metric moved by 150" in lying["failures"][0]


def test_the_outbox_fails_on_the_percentile_that_is_over():
    calm = [{"p50": 0.2, "p95": 0.6, "p99": 0.9, "max": 1.2}] * 10
    assert outbox_verdict(calm)["ok"]
    slow = calm[:5] + [{"p50": 2.5, "p95": 6.0, "p99": 8.0, "max": 9.0}] * 5
    verdict = outbox_verdict(slow)
    assert verdict["failures"] == ["p50 2.50 s ≥ 2 s"] and verdict["worst"]["p95"] == 6.0
    toothed = [{"p50": 0.5, "p95": v, "p99": v, "max": v} for v in _saw(8, seed=3)]
    assert any(f.startswith("teeth:") for f in outbox_verdict(toothed)["failures"])


DOCUMENT = {"paths": {"/version": {"get": {"responses": {"200": {"content": {"application/json": {"schema": {
    "type": "object", "required": ["version"], "properties": {"version": {"type": "string"}}}}}}}}}}}


def test_a_response_outside_its_schema_or_status_breaks_the_contract():
    assert response_problems(DOCUMENT, "GET", "/version", 200, {"version": "1.4.0"}, 200) == []
    assert response_problems(DOCUMENT, "GET", "/version", 200, {"version": 14}, 200) == [
        "GET /version 200: version: 14 is not of type 'string'"]
    assert response_problems(DOCUMENT, "GET", "/version", 500, None, 200) == [
        "GET /version: answered 500, expected 200", "GET /version: status 500 is not declared"]
    assert response_problems(DOCUMENT, "GET", "/health", 200, {}, 200) == ["GET /health: not in the contract"]


def test_the_weekly_record_reads_like_the_runbook():
    results = {"rollback_drill": {"ok": True, "summary": "dry run, weight 0 unchanged"},
               "chaos": {"ok": False, "summary": "error-burst", "failures": ["the gate let http_5xx_pct pass"]},
               "contract": {"ok": True, "summary": "5 calls"}}
    text = weekly_record("20261130", results, seed=42)
    assert text.splitlines()[:4] == ["Weekly drill 20261130", "Rollback:    PASS  dry run, weight 0 unchanged",
                                     "Chaos:       FAIL  error-burst", "Contract:    PASS  5 calls"]
    assert "- Chaos: the gate let http_5xx_pct pass" in text and "seed 42" in text
    assert text.rstrip().endswith("RESULT: FAIL")
