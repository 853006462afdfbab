"""The ladder learns from the shadow stage: a signal shown green there, with the whole traffic, is
not held `insufficient` at a small stage for its few requests; every other rule still judges it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from golive.judge import judge
from golive.policy import JudgePolicy
from golive.scenario import ScenarioError, parse_scenario
from golive.signals import CATALOGUE
from tests.golive.builders import healthy

# The signals a healthy shadow stage ends green on (every signal a mirror shows).
PROVEN = frozenset({"api_p95_ms", "http_5xx_pct", "risk_blocks_per_min", "idempotency_conflict_pct",
                    "event_loop_p95_ms", "gc_pause_avg_ms"})
THIN = ("http_5xx_pct", "idempotency_conflict_pct")  # the count signals a handful of requests cannot tell


def small_service(stage: float = 1, intervals: int = 10, **changes) -> dict:
    """A service of 1,000 requests a minute at `stage` %: the canary serves 10 requests a minute at 1 %
    (100 in the window, where a 1 % threshold needs 300), 4 of them keyed. Stable reports CSP
    violations often enough (5 in 100 requests) that the canary's few requests can tell them: what
    holds is the signals the shadow shows."""
    canary = 1000 * stage / 100
    scenario = healthy(intervals=intervals, stage=stage)
    for arm, requests in (("canary", canary), ("baseline", 1000 - canary)):
        counts(scenario, "http_5xx_pct", arm, 2 if arm == "baseline" else 0, requests)
        counts(scenario, "idempotency_conflict_pct", arm, 1 if arm == "baseline" else 0, 0.4 * requests)
        counts(scenario, "risk_blocks_per_min", arm, 0, requests)
        counts(scenario, "csp_violations_per_min", arm, 0.05 * requests if arm == "baseline" else 0, requests)
    scenario.update(changes)
    return scenario


def counts(scenario: dict, signal: str, arm: str, bad: float, total: float, *, start: int = 0) -> dict:
    """An arm's counts from interval `start`, with the value they imply (a percentage, or per minute)."""
    for obs in scenario["signals"][signal][arm][start:]:
        obs.update(bad=bad, total=total, value=bad if signal.endswith("_per_min") else 100 * bad / total)
    return scenario


def run(scenario: dict, proven: frozenset[str] = PROVEN):
    return judge(replace(parse_scenario(scenario), shadow_proven=proven))


def test_at_1_percent_a_small_service_without_the_shadow_holds_its_count_signals_for_traffic():
    verdict = run(small_service(), frozenset())
    assert verdict.decision == "hold"
    assert {name for name, v in verdict.signals.items() if v.verdict != "pass"} == set(THIN)
    assert all(verdict.signals[name].verdict == "insufficient" for name in THIN)
    assert verdict.signals["http_5xx_pct"].detail.startswith("too little traffic to tell: 100 canary requests")


def test_at_1_percent_the_signals_the_shadow_proved_pass_and_say_so():
    verdict = run(small_service())
    assert verdict.decision == "proceed", verdict.reason
    detail = verdict.signals["idempotency_conflict_pct"].detail
    assert "shown green in the shadow stage" in detail
    assert "40 canary keyed requests (need 300" in detail
    assert "shown green in the shadow stage" in verdict.signals["api_p95_ms"].detail
    assert "shadow" not in verdict.signals["csp_violations_per_min"].detail


def test_only_the_proven_signals_are_credited():
    verdict = run(small_service(), frozenset({"http_5xx_pct"}))
    assert verdict.signals["http_5xx_pct"].verdict == "pass"
    assert verdict.signals["idempotency_conflict_pct"].verdict == "insufficient"
    assert verdict.decision == "hold"


def thin_csp() -> dict:
    """Stable reports CSP violations on 1 request in 100: 273 canary requests needed, 100 served."""
    return counts(small_service(), "csp_violations_per_min", "baseline", 9.9, 990)


def test_csp_shown_green_by_the_shadow_stages_browser_check_is_credited():
    verdict = run(thin_csp(), PROVEN | {"csp_violations_per_min"})
    assert verdict.signals["csp_violations_per_min"].verdict == "pass"
    assert "shown green in the shadow stage" in verdict.signals["csp_violations_per_min"].detail
    assert run(thin_csp()).signals["csp_violations_per_min"].verdict == "insufficient"


def test_a_signal_the_shadow_cannot_show_is_not_credited_even_when_named():
    no_browser = tuple(replace(s, browser_value_query=None, browser_bad_query=None, browser_total_query=None)
                       for s in CATALOGUE)
    scenario = replace(parse_scenario(thin_csp(), no_browser), shadow_proven=PROVEN | {"csp_violations_per_min"})
    assert judge(scenario).signals["csp_violations_per_min"].verdict == "insufficient"


def test_a_proven_signal_that_breaches_still_rolls_back():
    scenario = counts(small_service(), "http_5xx_pct", "canary", 2, 10)  # 20 % of the canary's requests
    with_proof, without = run(scenario), run(scenario, frozenset())
    assert with_proof.decision == "rollback"
    assert "breach:http_5xx_pct" in with_proof.triggers
    assert with_proof.signals["http_5xx_pct"] == without.signals["http_5xx_pct"]


def test_a_proven_count_signal_over_its_threshold_is_not_green():
    # Two conflicts among the canary's 40 keyed requests, in its latest minute: 5 % there, over 1 %.
    scenario = counts(small_service(), "idempotency_conflict_pct", "canary", 2, 4, start=9)
    verdict = run(scenario)
    assert verdict.signals["idempotency_conflict_pct"].verdict not in ("pass", "insufficient")
    assert verdict.decision == "hold"


def test_the_credit_does_not_stand_for_intervals():
    verdict = run(small_service(intervals=2))
    assert verdict.signals["http_5xx_pct"].verdict == "insufficient"
    assert verdict.signals["http_5xx_pct"].detail.startswith("too little to tell: 2 interval(s) with data")


def test_at_5_percent_the_credit_holds_and_above_it_nothing_changes():
    def scenario(stage: float) -> dict:
        # 20 canary requests a minute, 200 in the window, where a 1 % threshold needs 300.
        return counts(small_service(stage=stage), "http_5xx_pct", "canary", 0, 20)

    assert run(scenario(5)).signals["http_5xx_pct"].verdict == "pass"
    above = run(scenario(25))
    assert above.signals["http_5xx_pct"].verdict == "insufficient"
    assert above == run(scenario(25), frozenset())


@pytest.mark.parametrize(("limit", "credited"), [(0, False), (0.5, False), (1, True), (25, True)])
def test_the_policy_sets_the_largest_stage_credited(limit, credited):
    verdict = run(small_service(policy={"shadow_credit_max_percent": limit}))
    assert (verdict.signals["http_5xx_pct"].verdict == "pass") is credited


def test_the_credit_limit_is_a_percentage():
    assert JudgePolicy().shadow_credit_max_percent == 5.0
    with pytest.raises(ScenarioError, match=r"^policy\.shadow_credit_max_percent: expected a percentage in "
                                            r"\[0, 100\], got 101$"):
        parse_scenario(small_service(policy={"shadow_credit_max_percent": 101}))


@pytest.mark.parametrize(("proven", "error"), [
    ("http_5xx_pct", "shadow_proven: expected a list of signal names"),
    ([3], "shadow_proven[0]: expected a signal name"),
    (["http_5xx_pct", "latency"], "shadow_proven[1]: unknown signal latency"),
    (["bad\nname"], "shadow_proven[0]: unknown signal bad\\nname"),
    (["ws_staleness_s"],
     "shadow_proven[0]: ws_staleness_s is not shown by a mirror or the browser check, so no shadow stage proves it"),
])
def test_a_bad_shadow_proven_is_one_line_naming_the_field(proven, error):
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(small_service(shadow_proven=proven))
    assert str(caught.value) == error


def test_a_mirrored_scenario_carries_no_shadow_proof():
    scenario = healthy(stage=0)
    scenario.update(mirrored=True, shadow_proven=["http_5xx_pct"])
    scenario["signals"] = {name: series for name, series in scenario["signals"].items()
                           if name not in ("csp_violations_per_min", "ws_staleness_s")}
    with pytest.raises(ScenarioError, match=r"^shadow_proven: not for a mirrored scenario"):
        parse_scenario(scenario)


def test_the_proof_is_read_back_as_written_and_left_out_when_empty():
    parsed = parse_scenario(small_service(shadow_proven=["idempotency_conflict_pct", "http_5xx_pct"]))
    assert parsed.shadow_proven == frozenset(THIN)
    written = parsed.to_dict()
    assert written["shadow_proven"] == ["http_5xx_pct", "idempotency_conflict_pct"]
    assert parse_scenario(written) == parsed
    assert judge(parse_scenario(written)).decision == judge(parsed).decision
    assert "shadow_proven" not in parse_scenario(small_service()).to_dict()
    assert parse_scenario(small_service()).shadow_proven == frozenset()
