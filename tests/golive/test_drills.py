"""The drills' rules: the teeth detector on synthetic series, the burst's arithmetic, the outbox
percentiles, the chaos verdicts and the weekly record."""

from __future__ import annotations

import random

import pytest

from golive.drills import (CHAOS_SCENARIOS, burst_verdict, chaos_command_verdict, chaos_verdict, detect_teeth,
                           outbox_verdict, pick_scenario, weekly_record)


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


def test_the_weekly_record_reads_like_the_runbook():
    results = {"rollback_drill": {"ok": True, "summary": "dry run, weight 0 unchanged"},
               "chaos": {"ok": False, "summary": "error-burst", "failures": ["the gate let http_5xx_pct pass"]},
               "contract": {"ok": True, "summary": "5 calls"}}
    text = weekly_record("20261130", results, seed=42)
    assert text.splitlines()[:4] == ["Weekly drill 20261130", "Rollback:    PASS  dry run, weight 0 unchanged",
                                     "Chaos:       FAIL  error-burst", "Contract:    PASS  5 calls"]
    assert "- Chaos: the gate let http_5xx_pct pass" in text and "seed 42" in text
    assert text.rstrip().endswith("RESULT: FAIL")


SLOW_DATABASE = CHAOS_SCENARIOS["slow-database"]


def _look(decision: str, verdict: str, canary: float | None = 900.0, baseline: float | None = 140.0) -> dict:
    signal = {"verdict": verdict, "canary": canary, "baseline": baseline}
    return {"decision": decision, "reason": "r", "signals": {"api_p95_ms": signal}}


def test_chaos_seen_during_and_mended_after_passes():
    result = chaos_verdict(SLOW_DATABASE, _look("rollback", "breach"), _look("proceed", "pass", 140.0))
    assert result["ok"] and result["failures"] == []
    assert result["summary"] == "slow-database: gate ROLLBACK during (api_p95_ms breach), pass after"


def test_chaos_fails_when_the_gate_proceeds_during_the_fault():
    result = chaos_verdict(SLOW_DATABASE, _look("proceed", "breach"), _look("proceed", "pass"))
    assert result["failures"] == ["the gate let api_p95_ms pass during slow-database"]


def test_chaos_fails_when_the_gate_passes_the_scenarios_signal():
    result = chaos_verdict(SLOW_DATABASE, _look("hold", "pass"), _look("proceed", "pass"))
    assert result["failures"] == ["the gate let api_p95_ms pass during slow-database"]


def test_chaos_fails_when_the_canary_was_no_worse_than_stable():
    result = chaos_verdict(SLOW_DATABASE, _look("hold", "deviation", 140.0, 150.0), _look("proceed", "pass"))
    assert result["failures"] == ["api_p95_ms was no worse on the canary than on stable during slow-database"]


def test_chaos_fails_when_the_signal_still_breaches_after_the_fault():
    result = chaos_verdict(SLOW_DATABASE, _look("rollback", "breach"), _look("rollback", "breach"))
    assert result["failures"] == ["api_p95_ms still over its threshold after the fault went off"]


def test_a_chaos_command_must_exist_and_exit_zero():
    assert chaos_command_verdict("error-burst", None, None) == {
        "ok": False, "failures": ["no fault switch and no command for error-burst"], "summary": "not run"}
    assert chaos_command_verdict("error-burst", "inject", 3)["failures"] == ["`inject` exited 3"]
    assert chaos_command_verdict("error-burst", "inject", 0) == {"ok": True, "failures": [], "summary": "`inject` exit 0"}


def test_a_named_scenario_is_taken_as_named_and_an_unknown_one_refused():
    assert pick_scenario("error-burst", 7) == ("error-burst", None)
    with pytest.raises(ValueError, match="^scenario: expected one of slow-database, .*, got 'disk-full'$"):
        pick_scenario("disk-full", None)


def test_a_random_scenario_is_reproduced_by_its_seed():
    name, seed = pick_scenario(None, 42)
    assert seed == 42 and name in CHAOS_SCENARIOS and pick_scenario(None, 42) == (name, 42)
    drawn, recorded = pick_scenario(None, None)
    assert recorded is not None and pick_scenario(None, recorded) == (drawn, recorded)
