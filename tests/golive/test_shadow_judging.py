"""The shadow stage's pure parts: the mirrored scenario the judge reads, stable's slowdown check,
the stage's names and the settings that plan it."""

from __future__ import annotations

import pytest

from golive import layout
from golive.judge import judge
from golive.scenario import ScenarioError, parse_scenario
from golive.settings import GoLiveSettings, SettingsError, load_settings
from golive.shadow import SHADOW_SERIES, primary_slowed, shadow_notes, shadow_series
from golive.signals import CATALOGUE, judged_signals
from golive.stage import SHADOW_STAGE, stage_name
from golive.triggers import TRIGGERS, trigger
from tests.golive.builders import healthy, set_counts, set_values

MIRRORED = tuple(s for s in CATALOGUE if s.mirror_visible)


def shadow_scenario(**changes) -> dict:
    """A healthy window of the shadow stage: both tracks answer the same 1,000 requests a minute."""
    scenario = healthy(stage=0)
    scenario["mirrored"] = True
    scenario["signals"] = {name: series for name, series in scenario["signals"].items()
                           if name in {s.name for s in MIRRORED}}
    for name, series in scenario["signals"].items():
        if "total" in series["canary"][0]:
            for canary, baseline in zip(series["canary"], series["baseline"]):
                baseline.update(bad=canary["bad"], total=canary["total"], value=canary["value"])
    scenario.update(changes)
    return scenario


def run(scenario: dict):
    return judge(parse_scenario(scenario, MIRRORED))


def test_a_mirror_shows_latency_errors_and_the_paper_fills_decisions_not_a_browsers_reports():
    assert {s.name for s in MIRRORED} == {"api_p95_ms", "http_5xx_pct", "risk_blocks_per_min",
                                          "idempotency_conflict_pct", "event_loop_p95_ms", "gc_pause_avg_ms"}


def test_a_healthy_canary_under_the_mirror_proceeds_on_the_signals_a_mirror_shows():
    verdict = run(shadow_scenario())
    assert verdict.decision == "proceed", verdict.reason
    assert verdict.reason == "6/6 green over 10 intervals"


def test_a_mirrored_scenario_file_is_judged_on_what_a_mirror_shows_whatever_catalogue_reads_it():
    verdict = judge(parse_scenario(shadow_scenario()))  # as `golive judge` reads a file: the whole catalogue
    assert verdict.decision == "proceed" and set(verdict.signals) == {s.name for s in MIRRORED}, verdict.reason
    with_csp = shadow_scenario()
    with_csp["signals"]["csp_violations_per_min"] = healthy(stage=0)["signals"]["csp_violations_per_min"]
    with pytest.raises(ScenarioError, match=r"^signals\.csp_violations_per_min: not shown by a mirror, so not "
                                            r"judged in a mirrored scenario$"):
        parse_scenario(with_csp)


def test_a_mirrored_scenario_is_read_back_as_written():
    assert parse_scenario(shadow_scenario(), MIRRORED).to_dict()["mirrored"] is True
    assert "mirrored" not in parse_scenario(healthy()).to_dict()


def browsed_scenario() -> dict:
    """The shadow stage with its browser check: CSP on the browser's page loads of each track too."""
    scenario = shadow_scenario()
    scenario["browser"] = True
    scenario["signals"]["csp_violations_per_min"] = healthy(stage=0)["signals"]["csp_violations_per_min"]
    return scenario


def test_with_the_browser_check_csp_is_judged_in_the_shadow_on_the_browsers_queries():
    parsed = parse_scenario(browsed_scenario())
    csp = next(s for s in parsed.catalogue if s.name == "csp_violations_per_min")
    assert 'source="browser"' in csp.bad_query and 'route="/app",source="browser"' in csp.total_query
    assert judge(parsed).decision == "proceed"
    assert parsed.to_dict()["browser"] is True and parse_scenario(parsed.to_dict()) == parsed
    assert "csp_violations_per_min" not in {s.name for s in judged_signals(CATALOGUE, mirrored=True)}
    assert "ws_staleness_s" not in {s.name for s in judged_signals(CATALOGUE, mirrored=True, browser=True)}


def test_a_canary_whose_pages_break_its_policy_is_rolled_back_in_the_shadow_by_the_browsers_reports():
    scenario = browsed_scenario()
    for obs in scenario["signals"]["csp_violations_per_min"]["canary"]:
        obs.update(bad=obs["total"], value=obs["total"])  # a violation on every page the browser loaded
    verdict = judge(parse_scenario(scenario))
    assert verdict.decision == "rollback" and "breach:csp_violations_per_min" in verdict.triggers, verdict.reason


@pytest.mark.parametrize(("changes", "message"), [
    ({"browser": "yes"}, "browser: expected true or false"),
    ({"browser": True, "mirrored": False, "stage_percent": 1},
     "browser: the browser check runs in the shadow stage only (a mirrored scenario)"),
])
def test_the_browser_flag_is_a_boolean_of_a_mirrored_scenario(changes, message):
    scenario = browsed_scenario()
    scenario.update(changes)
    with pytest.raises(ScenarioError, match="^" + message.replace("(", r"\(").replace(")", r"\)") + "$"):
        parse_scenario(scenario)


@pytest.mark.parametrize(("changes", "message"), [
    ({"stage_percent": 5}, "stage_percent: expected 0 for a mirrored (shadow) scenario"),
    ({"mirrored": "yes"}, "mirrored: expected true or false"),
])
def test_a_mirrored_scenario_is_at_weight_0_and_says_so_with_a_boolean(changes, message):
    with pytest.raises(ScenarioError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_scenario(shadow_scenario(**changes), MIRRORED)


def test_weight_0_without_the_mirror_is_no_scenario_to_judge():
    with pytest.raises(ScenarioError, match=r"stage_percent: expected a number in \(0, 100\]"):
        parse_scenario(healthy(stage=0))


def test_a_rate_under_the_mirror_is_per_the_canarys_own_requests_not_halved_by_stables_copy():
    # 0.3 blocks a minute among the canary's 1,000 requests: under the limit of 0.5. Counted as at
    # a stage, the canary's share would be added to stable's copy of the same requests.
    scenario = set_counts(shadow_scenario(), "risk_blocks_per_min", "canary", 0.3)
    assert run(scenario).signals["risk_blocks_per_min"].canary == pytest.approx(0.3)
    set_counts(scenario, "risk_blocks_per_min", "canary", 2)
    assert "breach:risk_blocks_per_min" in run(scenario).triggers


def test_levels_under_the_mirror_are_compared_with_stable_as_at_equal_load():
    slower = [175, 178, 172, 180, 176, 174, 179, 177, 173, 175]
    verdict = run(set_values(shadow_scenario(), "api_p95_ms", "canary", slower))
    assert verdict.signals["api_p95_ms"].verdict == "deviation"


def test_stable_slowed_past_the_ratio_in_each_of_the_last_intervals_is_named_with_its_numbers():
    why = primary_slowed(100.0, [110, 130, 140, 150], 1.25, 3)
    assert why == ("stable with the mirror on: 130, 140, 150 in the last 3 intervals, over 1.25 x its 100 "
                   "before the mirror")


@pytest.mark.parametrize(("before", "during"), [
    (100.0, [130, 120, 150]),  # one interval inside: a busy machine's noise, not the mirror
    (100.0, [130, 150]),  # too few intervals yet
    (100.0, [130, None, 150]),  # an interval without data says nothing
    (None, [300, 300, 300]),  # no level before the mirror to compare with
    (0.0, [300, 300, 300]),
    (20.0, [29, 29, 29]),  # over 1.25 x, but by less than the floor of 10
])
def test_stable_is_not_called_slowed_without_the_evidence(before, during):
    assert primary_slowed(before, during, 1.25, 3, floor=10) is None


def test_the_war_rooms_shadow_lines_say_stables_latency_against_before_and_the_drifts_verdict():
    drift = {"verdict": "pass", "detail": "p99 |drift| 1.200 ms over 84 pairs, under 5 ms; all agree"}
    assert shadow_notes("api_p95_ms", 130.0, [None, 143.0, None], drift) == [
        "stable's api_p95_ms with the mirror on: 143, 1.10 x its 130 before the mirror",
        "consistency drift: pass: p99 |drift| 1.200 ms over 84 pairs, under 5 ms; all agree"]
    assert shadow_notes("api_p95_ms", None, [143.0], None) == [
        "stable's api_p95_ms with the mirror on: 143 (not read before the mirror)",
        "consistency drift: not measured (the services' fills were not read)"]
    assert shadow_notes("api_p95_ms", 130.0, [None], None)[0] == "stable's api_p95_ms with the mirror on: not read yet"
    assert shadow_notes(None, None, [], drift) == [f"consistency drift: pass: {drift['detail']}"]


def test_the_shadow_stage_is_named_shadow_in_its_files_and_to_people():
    assert stage_name(SHADOW_STAGE) == "shadow" and stage_name(5) == "5%"
    assert layout.stage_record(SHADOW_STAGE) == "shadow.json"
    assert layout.parse_judge_look(layout.judge_look(SHADOW_STAGE, 1, 2)) == (SHADOW_STAGE, 1, 2)
    assert layout.parse_weight_set(layout.weight_set(SHADOW_STAGE)) == SHADOW_STAGE
    assert layout.parse_weight_set(layout.weight_set(25)) == 25


def test_its_triggers_are_known_beside_the_runbooks_twenty():
    assert trigger("shadow-drift").evaluated_by == "flow" and trigger("shadow-slows-primary")
    assert len(TRIGGERS) == 20


def _settings(router: dict | None = None, **shadow) -> GoLiveSettings:
    return load_settings({"release": "1.4.0", "policy": {"shadow": shadow},
                          **({"target": {"router": router}} if router else {})})


def test_the_shadow_stage_comes_first_where_the_router_mirrors_and_it_is_not_turned_off():
    assert _settings().planned_stages == (SHADOW_STAGE, 1, 5, 25, 50, 100)
    assert _settings(enabled=False).planned_stages == (1, 5, 25, 50, 100)
    cluster = {"kind": "ingress-nginx", "kubernetes": {"namespace": "shop"}}
    assert _settings(cluster).planned_stages == (1, 5, 25, 50, 100)


def test_its_dwell_defaults_to_a_stages_and_can_be_its_own():
    assert GoLiveSettings(release="1.4.0").policy.stage_plan(SHADOW_STAGE).dwell_seconds == 900
    assert _settings(dwell_seconds=600.0).policy.stage_plan(SHADOW_STAGE).dwell_seconds == 600


@pytest.mark.parametrize(("shadow", "message"), [
    ({"dwell_seconds": 10.0}, "policy.shadow.dwell_seconds: 10 s is shorter than the judge's minimum"),
    ({"drift_p99_max_ms": 0}, "policy.shadow.drift_p99_max_ms"),
    ({"min_matched_fills": 2.5}, "policy.shadow.min_matched_fills"),
    ({"primary_slowdown_max_ratio": 0.5}, "policy.shadow.primary_slowdown_max_ratio"),
    ({"mirror": True}, "policy.shadow.mirror"),
])
def test_a_wrong_shadow_setting_is_refused_naming_its_field(shadow, message):
    with pytest.raises(SettingsError, match=message):
        _settings(**shadow)


def test_the_dashboards_shadow_series_leave_out_what_was_not_measured():
    assert shadow_series(None, None) == {"golive_shadow_mirror_on": 1.0}
    too_few = {"pairs": 3, "p99_abs_ms": None}
    assert shadow_series(too_few, {"compared_by_route": {}, "fields": []}) == {
        "golive_shadow_mirror_on": 1.0, "golive_shadow_drift_pairs": 3.0}
    fields = [{"raw_pct": 12.5, "noise_pct": 2.0}, {"raw_pct": 1.0, "noise_pct": 3.0}]
    series = shadow_series({"pairs": 40, "p99_abs_ms": 1.5},
                           {"compared_by_route": {"GET /quote": 60}, "fields": fields})
    assert (series["golive_shadow_drift_p99_ms"], series["golive_shadow_response_pairs"],
            series["golive_shadow_response_difference_points"]) == (1.5, 60.0, 10.5)
    assert set(series) <= set(SHADOW_SERIES)
    alike = shadow_series(None, {"compared_by_route": {"GET /quote": 60}, "fields": fields[1:]})
    assert alike["golive_shadow_response_difference_points"] == 0.0  # the secondary differs more: no excess
