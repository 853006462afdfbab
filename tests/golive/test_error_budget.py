"""The error budget as policy (golive.error_budget): the prediction, the freeze rules in their
order, the preflight's word, and the records the freeze keeps."""

from __future__ import annotations

import json

import pytest

from golive.error_budget import (BudgetSettings, Freeze, budget_check, budget_folder, exhaustion_seconds, freeze_step,
                                 read_freeze, read_override, record_change, record_override, spoken_duration)
from golive.settings import SettingsError, load_settings

POLICY = BudgetSettings(lift_after_seconds=3600)
LINE = 0.10
HOUR = 3600.0


def test_time_until_spent_is_remaining_times_period_over_burn():
    # Half the budget left, a 30-day period, a burn of 3: 0.5 x 720 h / 3 = 120 h.
    assert exhaustion_seconds(0.5, 3.0, 720) == 120 * HOUR
    assert exhaustion_seconds(-0.2, 3.0, 720) == 0.0  # already spent
    assert exhaustion_seconds(0.5, 0.0, 720) is None  # nothing burns: never at this rate
    assert exhaustion_seconds(None, 3.0, 720) is None and exhaustion_seconds(0.5, None, 720) is None


@pytest.mark.parametrize("seconds, spoken", [(5 * HOUR + 40 * 60, "5 h 40 m"), (12 * 60 + 5, "12 m"),
                                             (51 * HOUR, "2 d 3 h"), (None, "never at this rate")])
def test_spoken_duration(seconds, spoken):
    assert spoken_duration(seconds) == spoken


def test_rule_1_an_unknown_budget_changes_nothing():
    frozen = Freeze(frozen=True, since=0, reason="r", above_since=10)
    assert freeze_step(frozen, None, {}, 5000, LINE, POLICY) == (frozen, None)
    assert freeze_step(Freeze(), None, {}, 5000, LINE, POLICY) == (Freeze(), None)


def test_rule_2_below_the_line_freezes_naming_the_budget():
    state, change = freeze_step(Freeze(), 0.07, {"1h": 50 * HOUR}, 100, LINE, POLICY)
    assert change == "freeze" and state.frozen and state.since == 100
    assert state.reason == "error budget 7 % < 10 %"


def test_rule_2_a_budget_gone_within_the_page_horizon_freezes_before_it_is_gone():
    state, change = freeze_step(Freeze(), 0.40, {"1h": 90 * 60, "6h": 5 * HOUR}, 100, LINE, POLICY)
    assert change == "freeze" and state.reason == "error budget gone in 1 h 30 m at the 1h burn (< 2 h)"
    # A prediction beyond the horizon, or none at all, does not.
    assert freeze_step(Freeze(), 0.40, {"1h": 3 * HOUR, "6h": None}, 100, LINE, POLICY)[1] is None


def test_rule_2_a_freeze_on_stays_with_its_start_and_the_time_above_starts_again():
    frozen = Freeze(frozen=True, since=50, reason="error budget 7 % < 10 %", above_since=900)
    state, change = freeze_step(frozen, 0.08, {}, 1000, LINE, POLICY)
    assert change is None and state.frozen and state.since == 50 and state.above_since is None


def test_rule_3_it_lifts_only_after_the_configured_time_above_the_line():
    frozen = Freeze(frozen=True, since=50, reason="error budget 7 % < 10 %")
    state, change = freeze_step(frozen, 0.12, {}, 1000, LINE, POLICY)
    assert change is None and state.frozen and state.above_since == 1000
    state, change = freeze_step(state, 0.12, {}, 1000 + 3599, LINE, POLICY)
    assert change is None and state.frozen
    state, change = freeze_step(state, 0.13, {}, 1000 + 3600, LINE, POLICY)
    assert change == "lift" and not state.frozen and state.since == 4600
    assert state.reason == "error budget 13 % ≥ 10 % for 1 h 0 m"


def test_rule_4_above_the_line_and_not_frozen_stays_so():
    state, change = freeze_step(Freeze(), 0.6, {"1h": 100 * HOUR}, 10, LINE, POLICY)
    assert change is None and not state.frozen and state.remaining == 0.6


def test_the_preflight_refuses_a_frozen_budget_naming_it():
    frozen = Freeze(frozen=True, since=1, reason="error budget 7 % < 10 %", remaining=0.07, line=0.10)
    check = budget_check(frozen, None, "1.5.0")
    assert not check.ok and check.detail.startswith("error budget 7 % < 10 %: frozen")
    assert "golive budget override --release 1.5.0" in check.detail


def test_the_preflight_passes_a_frozen_budget_with_an_override_for_this_release_only(tmp_path):
    frozen = Freeze(frozen=True, since=1, reason="error budget 7 % < 10 %", remaining=0.07, line=0.10)
    override = record_override(tmp_path, "1.5.0", "Ayşe (incident commander)", "security fix CVE-2026-1", 5.0)
    check = budget_check(frozen, override, "1.5.0")
    assert check.ok and "overridden by Ayşe (incident commander): security fix CVE-2026-1" in check.detail
    assert check.facts["override"]["who"] == "Ayşe (incident commander)"
    assert not budget_check(frozen, override, "1.6.0").ok  # another release's override does not count


def test_the_preflight_passes_when_not_frozen_or_never_recorded():
    assert budget_check(None, None, "1.5.0").ok
    check = budget_check(Freeze(frozen=False, remaining=0.42), None, "1.5.0")
    assert check.ok and check.detail == "not frozen: 42 % left"


@pytest.mark.parametrize("who, why, field", [("", "because", "who"), ("  ", "because", "who"), ("me", "", "why")])
def test_an_override_names_who_and_why(tmp_path, who, why, field):
    with pytest.raises(ValueError, match=f"^{field}: "):
        record_override(tmp_path, "1.5.0", who, why, 1.0)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_an_override_names_a_release_that_is_a_file_name(tmp_path):
    with pytest.raises(ValueError, match="^release: "):
        record_override(tmp_path, "../1.5.0", "me", "why", 1.0)


def test_the_freeze_is_kept_whole_with_a_record_per_change(tmp_path):
    folder = tmp_path / "error-budget"
    assert read_freeze(folder) is None
    state, change = freeze_step(Freeze(), 0.05, {}, 1_800_000_000, LINE, POLICY)
    name = record_change(folder, state, change, {"pull_requests_labelled": [1, 2]})
    assert name == "freeze_20270115T080000Z.json"
    assert read_freeze(folder) == state
    assert json.loads((folder / name).read_text())["pull_requests_labelled"] == [1, 2]
    assert record_change(folder, state, None) is None
    assert sorted(p.name for p in folder.iterdir()) == ["freeze.json", name]
    override = record_override(folder, "1.5.0", "me", "hotfix", 2.0)
    assert read_override(folder, "1.5.0") == override and read_override(folder, "1.6.0") is None


def test_an_unreadable_freeze_is_an_error_not_a_thaw(tmp_path):
    (tmp_path / "freeze.json").write_text("{not json")
    with pytest.raises(ValueError, match="freeze.json: unreadable"):
        read_freeze(tmp_path)


@pytest.mark.parametrize(("record", "error"), [
    ('{"frozen": "x"}', "frozen: Input should be a valid boolean"),
    ('{"frozen": true, "since": 1e300}', "since: Input should be less than or equal to"),
    ('{"frozen": true, "since": NaN}', "since: Input should be less than or equal to"),  # NaN compares false
    ('{"frozen": true, "exhaustion_seconds": {"1h": -5}}', "exhaustion_seconds.1h: Input should be greater than"),
    ('{"frozen": true, "exhaustion_seconds": {"a\\nb": -1}}', r"exhaustion_seconds.a\\nb: Input should be greater"),
    ('{}', "frozen: missing"),
    ('{"Frozen": true}', "frozen: missing"),
    ('{"frozen": false, "Frozen": true}', "Frozen: Extra inputs are not permitted"),
])
def test_a_freeze_recorded_wrong_is_one_line_and_never_a_thaw(tmp_path, record, error):
    (tmp_path / "freeze.json").write_text(record)
    with pytest.raises(ValueError, match=rf"^freeze\.json: {error}.*; the freeze cannot be known$"):
        read_freeze(tmp_path)
    assert budget_check(None, None, "1.5.0").ok  # what a thaw would have read


def test_a_budget_that_burns_slowly_is_recorded_and_read_back_frozen_or_not(tmp_path):
    folder = tmp_path / "error-budget"
    centuries = exhaustion_seconds(0.99, 1e-6, 8784)  # a 366-day objective, next to nothing burning
    state, _ = freeze_step(Freeze(), 0.99, {"1h": centuries}, 1_800_000_000, LINE, POLICY)
    record_change(folder, state, None)
    assert read_freeze(folder) == state and spoken_duration(centuries) == "over 100 years"
    below, change = freeze_step(state, 0.05, {"1h": exhaustion_seconds(0.05, 1e-9, 8784)}, 1_800_000_100, LINE,
                                POLICY)
    record_change(folder, below, change)
    assert change == "freeze" and read_freeze(folder).frozen
    assert exhaustion_seconds(float("nan"), 1.0, 720) is None and spoken_duration(float("inf")) == "over 100 years"


def test_an_override_recorded_wrong_is_one_line(tmp_path):
    (tmp_path / "override_1.5.0.json").write_text('{"release": "1.5.0", "who": "", "why": "x", "at": NaN}')
    with pytest.raises(ValueError, match=r"^override_1\.5\.0\.json: who: String should have at least 1 character; "
                                         r"the override cannot be known$"):
        read_override(tmp_path, "1.5.0")


def test_something_else_where_the_freeze_is_kept_is_never_a_thaw(tmp_path):
    (tmp_path / "freeze.json").mkdir()
    with pytest.raises(ValueError, match=r"^freeze\.json: not a file; the freeze cannot be known$"):
        read_freeze(tmp_path)
    (tmp_path / "evidence").write_text("a file where the evidence root should be")
    with pytest.raises(ValueError, match=r"^evidence: not a folder; the freeze cannot be known$"):
        read_freeze(tmp_path / "evidence" / "error-budget")
    dangling = tmp_path / "dangling"
    dangling.mkdir()
    (dangling / "freeze.json").symlink_to(tmp_path / "nowhere")
    with pytest.raises(ValueError, match=r"^freeze\.json: not a file; the freeze cannot be known$"):
        read_freeze(dangling)
    assert read_freeze(tmp_path / "never-written") is None


def test_the_budget_folder_stays_in_the_evidence_root(tmp_path):
    root = tmp_path / "evidence"
    root.mkdir()
    assert budget_folder(root, POLICY) == root / "error-budget"
    (tmp_path / "elsewhere").mkdir()
    (root / "error-budget").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ValueError, match="process.budget.folder"):
        budget_folder(root, POLICY)


def test_budget_settings_refuse_bad_values_naming_the_field():
    with pytest.raises(SettingsError, match="^process.budget.lift_after_seconds"):
        load_settings({"release": "1.5.0", "process": {"budget": {"lift_after_seconds": -1}}})
    with pytest.raises(SettingsError, match="^process.budget.folder"):
        load_settings({"release": "1.5.0", "process": {"budget": {"folder": "../x"}}})
    with pytest.raises(SettingsError, match="^process.budget.unknown"):
        load_settings({"release": "1.5.0", "process": {"budget": {"unknown": 1}}})


def test_the_first_night_freezes_on_the_prediction_before_the_budget_is_gone():
    from golive.first_night import hour_verdict
    from golive.settings import FirstNightSettings

    night = FirstNightSettings()
    burns = {1: 4.0, 5 / 60: 4.0}  # under the fast-burn page: no rollback
    # 60 % of the budget left, but gone in 1 h 30 m at the 1 h burn: freeze now, not at 10 %.
    soon = hour_verdict(burns, 0.60, [], night, {"1h": 5400.0, "6h": 20000.0}, horizon_hours=2)
    assert (soon["status"], soon["actions"]) == ("freeze", ["freeze"])
    later = hour_verdict(burns, 0.60, [], night, {"1h": 3 * HOUR, "6h": None}, horizon_hours=2)
    assert later["status"] == "watch" and later["actions"] == []
    # A prediction with no budget measured is no reason: unknown is not a freeze, nor green.
    assert hour_verdict({1: None}, None, [], night, {"1h": 10.0})["actions"] == []
