"""The judge's input, a row per bad input: each is refused with one exact line naming the field."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from golive.models import SignalWindow
from golive.policy import JudgePolicy
from golive.scenario import ScenarioError, parse_scenario
from golive.signals import CATALOGUE
from tests.golive.builders import healthy


NAN, INF = float("nan"), float("inf")


def _obs(signal: str, arm: str = "canary", i: int = 0, **fields):
    return lambda s: s["signals"][signal][arm][i].update(fields)


ROWS = [
    # observations
    (_obs("api_p95_ms", i=3, value=-5), "signals.api_p95_ms.canary[3].value: expected a number >= 0 or null, got -5"),
    (_obs("api_p95_ms", value="fast"), "signals.api_p95_ms.canary[0].value: expected a number or null"),
    (_obs("api_p95_ms", value=True), "signals.api_p95_ms.canary[0].value: expected a number or null"),
    (_obs("api_p95_ms", value=INF), "signals.api_p95_ms.canary[0].value: expected a finite number"),
    (_obs("api_p95_ms", value=1e300), "signals.api_p95_ms.canary[0].value: expected a number of at most 1e+12, got 1e+300"),
    (_obs("http_5xx_pct", value=150.0), "signals.http_5xx_pct.canary[0].value: expected a percentage in [0, 100] or null"),
    (_obs("http_5xx_pct", bad=-1), "signals.http_5xx_pct.canary[0].bad: expected a number >= 0 or null, got -1"),
    (_obs("http_5xx_pct", "baseline", total=-3), "signals.http_5xx_pct.baseline[0].total: expected a number >= 0 or null, got -3"),
    (_obs("http_5xx_pct", bad=20, total=10), "signals.http_5xx_pct.canary[0].bad: 20 events among 10 requests (bad > total)"),
    (_obs("idempotency_conflict_pct", "baseline", 2, bad=9, total=4),
     "signals.idempotency_conflict_pct.baseline[2].bad: 9 events among 4 requests (bad > total)"),
    (_obs("gc_pause_avg_ms", colour="red"), "signals.gc_pause_avg_ms.canary[0].colour: unknown field"),
    (lambda s: s["signals"]["gc_pause_avg_ms"]["canary"][0].pop("value"), "signals.gc_pause_avg_ms.canary[0].value: required (null for no data)"),
    (lambda s: s["signals"]["api_p95_ms"].update(canary="x"), "signals.api_p95_ms.canary: expected a list of observations"),
    (lambda s: s["signals"]["api_p95_ms"]["canary"].__setitem__(0, 5), "signals.api_p95_ms.canary[0]: expected an object"),
    (lambda s: s["signals"]["api_p95_ms"]["baseline"].pop(),
     "signals.api_p95_ms.baseline: expected 10 observations like canary, got 9"),
    (lambda s: s["signals"].update(latency={}), "signals.latency: unknown signal (known: api_p95_ms, http_5xx_pct, "
     "ws_staleness_s, risk_blocks_per_min, idempotency_conflict_pct, csp_violations_per_min, event_loop_p95_ms, gc_pause_avg_ms)"),
    # the stage
    (lambda s: s.pop("signals"), "signals: required"),
    (lambda s: s.update(stage_percent=0), "stage_percent: expected a number in (0, 100]"),
    (lambda s: s.update(stage_percent=NAN), "stage_percent: expected a finite number"),
    (lambda s: s.update(interval_seconds=-1), "interval_seconds: expected a number of seconds in [1, 86400]"),
    (lambda s: s.update(interval_seconds=1e-300), "interval_seconds: expected a number of seconds in [1, 86400]"),
    (lambda s: s.update(extra=1), "extra: unknown field"),
    # thresholds
    (lambda s: s.update(thresholds={"api_p95_ms": {"min": 3}}),
     "thresholds.api_p95_ms: expected one of max, below, max_ratio_to_baseline with a number"),
    (lambda s: s.update(thresholds={"api_p95_ms": {"max": -5}}), "thresholds.api_p95_ms.max: expected a number >= 0, got -5"),
    (lambda s: s.update(thresholds={"api_p95_ms": {"max": INF}}), "thresholds.api_p95_ms.max: expected a finite number"),
    (lambda s: s.update(thresholds={"api_p95_ms": {"max": "abc"}}), "thresholds.api_p95_ms.max: expected a number"),
    (lambda s: s.update(thresholds={"csp_violations_per_min": {"max_ratio_to_baseline": 0}}),
     "thresholds.csp_violations_per_min.max_ratio_to_baseline: expected a ratio > 0, got 0"),
    # the policy
    (lambda s: s.update(policy={"min_seconds": NAN}), "policy.min_seconds: expected a finite number >= 0, got nan"),
    (lambda s: s.update(policy={"min_seconds": -1}), "policy.min_seconds: expected a finite number >= 0, got -1"),
    (lambda s: s.update(policy={"lean_alpha": 5}), "policy.lean_alpha: expected a level in (0, 1), got 5"),
    (lambda s: s.update(policy={"min_traffic_alpha": 0}), "policy.min_traffic_alpha: expected a level in (0, 1), got 0"),
    (lambda s: s.update(policy={"breach_alpha": INF}), "policy.breach_alpha: expected a level in (0, 1), got inf"),
    (lambda s: s.update(policy={"min_intervals": 2.5}), "policy.min_intervals: expected a whole number >= 1, got 2.5"),
    (lambda s: s.update(policy={"critical_ratio": 0.5}), "policy.critical_ratio: expected a ratio >= 1, got 0.5"),
    (lambda s: s.update(policy={"level_comparison_max_percent": 150}),
     "policy.level_comparison_max_percent: expected a percentage in [0, 100], got 150"),
    (lambda s: s.update(policy={"min_requests": True}), "policy.min_requests: expected a finite number >= 0, got True"),
    (lambda s: s.update(policy={"patience": 3}), "policy.patience: unknown policy field"),
    (lambda s: s.update(policy=[]), "policy: expected an object"),
]


@pytest.mark.parametrize(("mutate", "error"), ROWS, ids=[f"{i}-{r[1].split(':')[0]}" for i, r in enumerate(ROWS)])
def test_a_bad_scenario_is_one_line_naming_the_field(mutate, error):
    scenario = healthy()
    mutate(scenario)
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(scenario)
    assert str(caught.value) == error


def test_a_rates_events_may_outnumber_its_units_a_ratios_may_not():
    scenario = healthy()
    _obs("csp_violations_per_min", "canary", 0, value=9.0, bad=9, total=4)(scenario)  # pages breaking it twice
    assert parse_scenario(scenario).signals["csp_violations_per_min"].canary[0].bad == 9


def test_nan_values_and_counts_are_no_data():
    scenario = healthy()
    scenario["signals"]["http_5xx_pct"]["canary"][0].update(value=NAN, bad=NAN, total=NAN)
    obs = parse_scenario(scenario).signals["http_5xx_pct"].canary[0]
    assert (obs.value, obs.bad, obs.total) == (None, None, None)


def test_a_scenario_written_out_reads_back_the_same():
    catalogue = tuple(replace(s, threshold=2 * s.threshold) if s.name == "api_p95_ms" else s for s in CATALOGUE)
    scenario = replace(parse_scenario(healthy(), catalogue), policy=JudgePolicy(min_intervals=4, min_requests=50))
    written = scenario.to_dict()
    assert written["thresholds"] == {"api_p95_ms": {"max": 400.0}}
    assert parse_scenario(json.loads(json.dumps(written))) == scenario


def test_the_judges_input_is_typed_in_a_window_and_json_in_its_dump():
    scenario = parse_scenario(healthy())
    window = SignalWindow(stage_percent=5, start=0, end=300, interval_seconds=60, scenario=scenario)
    dumped = window.model_dump(mode="json")
    assert dumped["scenario"] == scenario.to_dict()
    assert SignalWindow.model_validate(dumped).scenario == scenario
