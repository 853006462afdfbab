"""The closing's rules: the one-liner and the success criteria, from the stage records."""

from __future__ import annotations

from golive.closing import records_disagree, release_oneliner, rollbacks_since, success_criteria, transient_breaches
from golive.signals import SIGNAL_NAMES

VALUES = {"api_p95_ms": (141.2, 139.0), "http_5xx_pct": (0.3, 0.2), "csp_violations_per_min": (11.0, 10.0)}
COMPLETE = {"ok": True, "files": 87, "minimum_files": 50, "missing": []}
LADDER = (1, 5, 25, 50, 100)


def _signals(verdict="pass", **verdicts):
    return {name: {"canary": VALUES.get(name, (1.0, 1.0))[0], "baseline": VALUES.get(name, (1.0, 1.0))[1],
                   "verdict": verdicts.get(name, verdict)} for name in SIGNAL_NAMES}


def _stage(pct, outcome="proceed", *decisions):
    decisions = decisions or ({"decision": "proceed" if outcome == "proceed" else "rollback", "signals": _signals()},)
    return {"stage": pct, "outcome": outcome, "holds": sum(d["decision"] == "hold" for d in decisions),
            "triggers": [] if outcome == "proceed" else ["breach:api_p95_ms"],
            "weight_verified": True, "share_ok": True, "decisions": list(decisions)}


def _held_then_green(pct):
    return _stage(pct, "proceed", {"decision": "hold", "signals": _signals(api_p95_ms="breach")},
                  {"decision": "proceed", "signals": _signals()})


def test_oneliner_in_the_runbook_form():
    line = release_oneliner("1.4.0", [_stage(p) for p in LADDER], 372)
    assert line.startswith("v1.4.0 canary: 1%→5%→25%→50%→100% in 6m12s, holds=0, rollback=0; p95=~141ms, 5xx=0.30%")
    assert "csp=+10%" in line and line.endswith("8/8 green")


def test_oneliner_of_a_rollback_names_the_trigger():
    line = release_oneliner("1.4.0", [_stage(1), _stage(25, "rollback")], 90)
    assert "1%→25% in 1m30s, holds=0, rollback=1 (at 25%: breach:api_p95_ms)" in line


def test_oneliner_reports_breaches_a_hold_remeasured_green():
    line = release_oneliner("1.4.0", [_stage(1), _held_then_green(5), *(_stage(p) for p in (25, 50, 100))], 372)
    assert "holds=1" in line
    assert line.endswith("8/8 green; transient breaches=1 (5%:api_p95_ms: held, re-measured green)")


def test_every_criterion_met_by_a_clean_ladder():
    met = success_criteria(LADDER, [_stage(p) for p in LADDER], COMPLETE)
    assert all(c["ok"] for c in met.values())


def test_a_breach_held_and_remeasured_green_does_not_fail_the_release():
    stages = [_stage(1), _held_then_green(5), *(_stage(p) for p in (25, 50, 100))]
    assert all(c["ok"] for c in success_criteria(LADDER, stages, COMPLETE).values())
    assert transient_breaches(stages) == ["5%:api_p95_ms"]


def test_a_stage_that_proceeded_short_of_eight_green_fails_its_criterion():
    seven = _stage(25, "proceed", {"decision": "proceed", "signals": _signals(gc_pause_avg_ms="nodata")})
    unmet = success_criteria(LADDER, [_stage(1), _stage(5), seven, _stage(50), _stage(100)], COMPLETE)
    assert unmet["each_stage_green_at_proceed"] == {"ok": False, "not_green": [25], "proceeded_on_approval": [],
                                                 "left_to_a_later_stage": []}


def test_a_stage_a_person_proceeded_when_inconclusive_is_named_not_failed():
    approved = _stage(1, "proceed", {"decision": "pause", "signals": _signals(http_5xx_pct="insufficient")})
    met = success_criteria(LADDER, [approved, *(_stage(p) for p in (5, 25, 50, 100))], COMPLETE)
    assert met["each_stage_green_at_proceed"] == {"ok": True, "not_green": [], "proceeded_on_approval": [1],
                                               "left_to_a_later_stage": []}


def _left_to_5(**verdicts):
    return _stage(1, "proceed", {"decision": "proceed", "signals": _signals(**verdicts),
                                 "deferred": ["csp_violations_per_min"], "deferred_to": 5})


def test_a_stage_that_left_its_thin_signals_to_the_next_is_named_not_failed():
    stages = [_left_to_5(csp_violations_per_min="insufficient"), *(_stage(p) for p in (5, 25, 50, 100))]
    met = success_criteria(LADDER, stages, COMPLETE)
    assert met["each_stage_green_at_proceed"] == {"ok": True, "not_green": [], "proceeded_on_approval": [],
                                               "left_to_a_later_stage": [1]}


def test_a_deferral_counts_only_for_thin_signals_the_next_stage_judged():
    worse = _left_to_5(csp_violations_per_min="insufficient", api_p95_ms="deviation")
    never_judged = [_left_to_5(csp_violations_per_min="insufficient")]
    assert success_criteria(LADDER, [worse, *(_stage(p) for p in (5, 25, 50, 100))],
                            COMPLETE)["each_stage_green_at_proceed"]["not_green"] == [1]
    assert success_criteria(LADDER, never_judged, COMPLETE)["each_stage_green_at_proceed"]["not_green"] == [1]


def test_a_rollback_and_missing_evidence_fail_their_criteria():
    incomplete = {"ok": False, "files": 30, "minimum_files": 50, "missing": ["war_room.md"]}
    bad = success_criteria(LADDER, [_stage(1), _stage(25, "rollback")], incomplete)
    assert not bad["all_stages_proceeded"]["ok"] and not bad["no_rollback"]["ok"]
    assert bad["evidence_complete"] == {"ok": False, "files": 30, "minimum_files": 50, "missing": ["war_room.md"]}


# Is the release Live? The closing's refusal, one rule at a time.

MET = {name: {"ok": True} for name in ("all_stages_proceeded", "no_rollback", "each_stage_green_at_proceed")}
SEALED = ["manifest.json", "stage_1.json", "stage_100.json", "success_criteria.json"]


def _why(stages, criteria=MET, files=SEALED, problems=(), planned=(1, 100)):
    from golive.closing import not_live_because

    return not_live_because("1.4.0", planned, stages, {**criteria, "transient_breaches": []} if criteria else None,
                            files, list(problems))


def test_a_release_whose_stages_proceeded_met_its_criteria_and_verifies_is_live():
    assert _why([_stage(1), _stage(100)]) is None


def test_no_stage_records_is_not_live():
    assert _why([]) == "v1.4.0 is not Live: no stage records: the go-live never moved traffic"


def test_a_rolled_back_release_is_refused_naming_where_and_why():
    assert _why([_stage(1), _stage(25, "rollback")], planned=LADDER) == (
        "v1.4.0 is not Live: rolled back at 25% (breach:api_p95_ms)")


def test_a_go_live_that_stopped_short_is_refused():
    assert _why([_stage(1), _stage(5)], planned=LADDER) == (
        "v1.4.0 is not Live: stopped at 5%: stages 25%, 50%, 100% never proceeded")


def test_unrecorded_or_unmet_criteria_are_refused():
    assert _why([_stage(1), _stage(100)], criteria=None) == (
        "v1.4.0 is not Live: no success criteria recorded: the go-live did not finish")
    unmet = {**MET, "weights_verified": {"ok": False, "unverified_stages": [100]}}
    assert _why([_stage(1), _stage(100)], criteria=unmet) == "v1.4.0 is not Live: success criteria not met: weights_verified"


def test_a_rollback_after_live_is_refused_but_a_dry_run_is_not_a_rollback():
    assert _why([_stage(1), _stage(100)], files=[*SEALED, "rollback_dryrun_20261130T100000Z.txt"]) is None
    assert _why([_stage(1), _stage(100)], files=[*SEALED, "rollback_20261130T100000Z.txt"]) == (
        "v1.4.0 is not Live: rolled back after Live (rollback_20261130T100000Z.txt)")


def test_evidence_that_does_not_verify_is_refused():
    assert _why([_stage(1), _stage(100)], problems=["manifest.json: missing"]) == (
        "v1.4.0 is not Live: its evidence does not verify: manifest.json: missing")
    changed = ["stage_100.json: changed (sha256 differs from the manifest)", "war_room.md: not in the manifest"]
    assert _why([_stage(1), _stage(100)], problems=changed) == (
        "v1.4.0 is not Live: its evidence does not verify: stage_100.json: changed (sha256 differs from the "
        "manifest) (and 1 more)")


def test_what_the_closing_and_the_first_night_write_after_live_awaits_their_own_seal():
    after = ["git_tag_dryrun.json: not in the manifest", "freeze_lift_dryrun.json: not in the manifest",
             "first_night_hour_01.json: not in the manifest", "first_night_1.4.0.md: not in the manifest",
             "first_night_schedule.json: not in the manifest"]
    assert _why([_stage(1), _stage(100)], problems=after) is None
    assert _why([_stage(1), _stage(100)], problems=["first_night_hour_01.json: changed (sha256 differs from "
                                                     "the manifest)"]) is not None  # sealed, then altered


def test_a_critical_alert_seen_during_the_go_live_fails_zero_critical_alerts():
    alerted = {**_stage(25), "critical_alerts": ["GoLiveSignalFarOverThreshold (api_p95_ms, canary)"], "alerts_unread": 1}
    unmet = success_criteria(LADDER, [_stage(1), _stage(5), alerted, _stage(50), _stage(100)], COMPLETE)
    assert unmet["no_critical_alerts"] == {
        "ok": False, "fired": ["25%:GoLiveSignalFarOverThreshold (api_p95_ms, canary)"], "looks_unread": 1}


ROLLBACK_AT_T = "rollback_20260601T120000Z_250000_abcd1234.txt"  # 2026-06-01 12:00:00.25 UTC
T = 1780315200.25


def test_rollbacks_since_a_start_are_every_real_rollback_recorded_from_then():
    files = [ROLLBACK_AT_T, "rollback_20260601T115959Z_000000.txt", "rollback_dryrun_20260601T120001Z_000000.txt",
             "late_rollback_20260601T120002Z_000000.txt", "rollback_drill_20260601T120003Z.txt", "stage_5.json"]
    assert rollbacks_since(files, T) == [ROLLBACK_AT_T]
    assert rollbacks_since(files, T + 1) == []


def test_the_oneliner_counts_every_rollback_recorded_not_only_the_stages():
    line = release_oneliner("1.4.0", [_stage(1), _stage(5)], 90, [ROLLBACK_AT_T])
    assert "rollback=1 (rolled back by another while it ran)" in line
    superseded = release_oneliner("1.4.0", [_stage(1), {**_stage(5), "outcome": "superseded"}], 90, [ROLLBACK_AT_T])
    assert "rollback=1 (superseded at 5%)" in superseded


def test_a_rollback_recorded_since_the_start_fails_no_rollback():
    criteria = success_criteria(LADDER, [_stage(p) for p in LADDER], COMPLETE, [ROLLBACK_AT_T])
    assert criteria["no_rollback"] == {"ok": False, "records": [ROLLBACK_AT_T]}
    assert success_criteria(LADDER, [_stage(p) for p in LADDER], COMPLETE)["no_rollback"]["ok"]


def test_records_that_deny_a_rollback_sealed_before_them_disagree():
    sealed = ["stage_5.json", ROLLBACK_AT_T, "release_oneliner.txt", "success_criteria.json"]
    problems = records_disagree(sealed, "v1.4.0 canary: 1%→5% in 1m, holds=0, rollback=0; …",
                                {"no_rollback": {"ok": True}})
    assert problems == [
        f"release_oneliner.txt: says rollback=0, but {ROLLBACK_AT_T} was recorded before it: the records disagree",
        f"success_criteria.json: says no_rollback is met, but {ROLLBACK_AT_T} was recorded before it: "
        "the records disagree"]


def test_a_rollback_after_the_oneliner_or_admitted_by_it_agrees():
    after = ["release_oneliner.txt", "success_criteria.json", ROLLBACK_AT_T]  # the first night's, say
    assert records_disagree(after, "… rollback=0; …", {"no_rollback": {"ok": True}}) == []
    before = [ROLLBACK_AT_T, "release_oneliner.txt", "success_criteria.json"]
    assert records_disagree(before, "… rollback=1 (at 25%: breach:api_p95_ms); …", {"no_rollback": {"ok": False}}) == []
    assert records_disagree(["rollback_dryrun_20260601T120001Z_000000.txt", "release_oneliner.txt"],
                            "… rollback=0; …", None) == []
