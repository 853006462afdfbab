"""The first night's hour rules, its page for missing data, and its report."""

from __future__ import annotations

import pytest

from golive.first_night import (degraded_signals, fast_burn_reason, hour_due, hour_verdict, night_ending, night_report,
                                nodata_note, plot_burn, unvouched)
from golive.settings import FirstNightSettings
from golive.signals import CATALOGUE


def test_the_hour_verdict_follows_the_runbook():
    policy = FirstNightSettings()
    fast = hour_verdict({1: 20.0, 5 / 60: 30.0}, 0.9, [], policy)
    assert (fast["status"], fast["triggers"], fast["actions"]) == ("rollback", ["error-budget-burn"], ["rollback"])
    freeze = hour_verdict({1: 1.2, 5 / 60: 1.0}, 0.08, [], policy)
    assert (freeze["status"], freeze["actions"]) == ("freeze", ["freeze"])
    assert hour_verdict({1: 1.6, 5 / 60: 1.0}, 0.9, [], policy)["status"] == "watch"
    assert hour_verdict({1: 0.4, 5 / 60: 0.2}, 0.9, ["api_p95_ms"], policy)["status"] == "watch"
    assert hour_verdict({1: 1.49, 5 / 60: 3.0}, 0.9, [], policy)["status"] == "green"
    freeze_only = hour_verdict({1: 20.0, 5 / 60: 30.0}, 0.9, [], FirstNightSettings(on_fast_burn="freeze"))
    assert (freeze_only["status"], freeze_only["actions"]) == ("freeze", ["freeze"])


def test_an_hour_without_data_is_nodata_never_green():
    policy = FirstNightSettings()
    assert hour_verdict({1: None, 5 / 60: None}, None, [], policy) == {
        "status": "nodata", "alerts": [], "triggers": [], "actions": []}
    assert hour_verdict({1: None, 5 / 60: None}, 1.0, [], policy)["status"] == "nodata"  # no requests counted
    low = hour_verdict({1: None, 5 / 60: None}, 0.05, [], policy)  # the period still knows the budget
    assert (low["status"], low["actions"]) == ("nodata", ["freeze"])


def test_the_fast_burn_reason_names_both_windows():
    assert fast_burn_reason({1: 20.04, 5 / 60: 31.0}, 3) == (
        "error-budget-burn: 1h burn 20.0, 5m burn 31.0 (≥ 14.4) in first-night hour 3")


def _status(*statuses: str) -> list[dict]:
    return [{"hour": n, "status": s} for n, s in enumerate(statuses, 1)]


def test_two_hours_without_data_in_a_row_page_the_war_room():
    assert nodata_note("1.4.0", _status("green", "nodata")) is None
    assert nodata_note("1.4.0", _status("nodata", "green", "nodata")) is None
    assert nodata_note("1.4.0", _status("green", "nodata", "nodata")) == (
        "2 hours without data (hours 2–3): the first night cannot vouch for v1.4.0; "
        "check Prometheus and the release's traffic")
    assert nodata_note("1.4.0", _status("nodata", "nodata", "nodata")).startswith("3 hours without data (hours 1–3)")
    assert nodata_note("1.4.0", _status("nodata", "nodata", "green")) is None


def test_a_night_that_paged_for_missing_data_cannot_vouch():
    assert unvouched("1.4.0", _status("green", "nodata", "green", "nodata")) is None
    assert unvouched("1.4.0", _status("nodata", "nodata", "green", "green")) == (
        "2 hours without data: the first night cannot vouch for v1.4.0")
    assert unvouched("1.4.0", _status("nodata", "nodata", "nodata", "green")).startswith("3 hours")


def test_degradation_is_measured_against_the_stage_100_snapshot():
    at_100 = {"api_p95_ms": 140.0, "http_5xx_pct": 0.01, "gc_pause_avg_ms": 0.3}
    assert degraded_signals({"api_p95_ms": 170.0, "http_5xx_pct": 0.09, "gc_pause_avg_ms": 0.4}, at_100, CATALOGUE) == []
    worse = degraded_signals({"api_p95_ms": 190.0, "http_5xx_pct": 0.2, "gc_pause_avg_ms": None}, at_100, CATALOGUE)
    assert worse == ["api_p95_ms", "http_5xx_pct"]


def _hour(n: int, status: str = "green", **extra) -> dict:
    return {"hour": n, "measured_at_utc": f"2026-11-27 0{n}:00:00", "burn": {"1": 0.2 * n, "6": 0.1, "24": None},
            "budget_remaining": 0.99, "signals": {"api_p95_ms": 141.0, "http_5xx_pct": 0.02}, "degraded": [],
            "status": status, "alerts": [], "actions": [], **extra}


def test_the_report_has_the_table_the_plot_and_an_rca_with_the_facts():
    hours = [_hour(1), _hour(2, "rollback", alerts=["1h/5m"], actions=["rollback"], degraded=["http_5xx_pct"])]
    text = night_report("1.4.0", hours, True, "first_night_burn_1.4.0.png", ["hour 2: rolled back (rollback_x.txt)"])
    assert "![burn rate per hour](first_night_burn_1.4.0.png)" in text
    assert "| 2 | 2026-11-27 02:00:00 | 0.40 | 0.10 | – | 99.0% | 141 | 0.02 | http_5xx_pct | rollback |" in text
    assert "- hour 2 (2026-11-27 02:00:00): rollback; alerts 1h/5m; actions: rollback" in text
    assert "- http_5xx_pct (against the stage-100 snapshot)" in text
    assert "- hour 2: rolled back (rollback_x.txt)" in text and "### Root cause" in text
    assert "## War room" not in text


def test_the_report_shows_hours_without_data_and_the_page():
    blind = {"burn": {"1": None, "6": None, "24": None}, "budget_remaining": None, "signals": {}}
    page = "2 hours without data (hours 1–2): the first night cannot vouch for v1.4.0"
    hours = [_hour(1, "nodata", **blind), _hour(2, "nodata", **blind, war_room=page)]
    text = night_report("1.4.0", hours, True, None, [])
    assert "| 1 | 2026-11-27 01:00:00 | – | – | – | – | – | – | – | nodata |" in text
    assert f"## War room\n\n| hour | note |\n|---:|---|\n| 2 | {page} |" in text
    assert "every one green" not in text and "- hour 2 (2026-11-27 02:00:00): nodata" in text


def test_the_plot_is_a_png():
    assert plot_burn([_hour(1), _hour(2)], 1.5).startswith(b"\x89PNG\r\n\x1a\n")
    assert plot_burn([_hour(1, "nodata", burn={"1": None})], 1.5).startswith(b"\x89PNG")


def test_an_hour_is_due_at_its_end_whenever_it_is_measured():
    assert [hour_due(1000.0, h, 3600) for h in (1, 2, 24)] == [4600.0, 8200.0, 1000.0 + 24 * 3600]
    assert hour_due(1000.0, 3, 4) == 1012.0
    with pytest.raises(ValueError):
        hour_due(1000.0, 0, 3600)


def _recorded(hour: int, status: str) -> dict:
    return {"hour": hour, "status": status}


def test_the_night_ends_once_every_hour_is_recorded_in_any_order():
    assert night_ending("1.4.0", [_recorded(1, "green"), _recorded(3, "green")], 3, frozen=False) is None
    out_of_order = [_recorded(3, "green"), _recorded(1, "watch"), _recorded(2, "green")]
    assert night_ending("1.4.0", out_of_order, 3, frozen=False) == ("COMPLETED", "Held", "v1.4.0 held 3 hours")
    assert night_ending("1.4.0", [_recorded(h, "green") for h in (1, 2)], 2, frozen=True)[2] == (
        "v1.4.0 held 2 hours, changes frozen")


def test_a_rollback_ends_the_night_at_once_and_a_blind_night_is_held_failed():
    assert night_ending("1.4.0", [_recorded(1, "green"), _recorded(2, "rollback")], 24, frozen=False) == (
        "FAILED", "RolledBack", "v1.4.0 rolled back during the first night (error-budget-burn)")
    failed = {**_recorded(2, "rollback"), "rollback": "RollbackFailed"}
    assert night_ending("1.4.0", [_recorded(1, "green"), failed], 24, frozen=False)[:2] == ("FAILED", "RollbackFailed")
    left = {**_recorded(2, "rollback"), "rollback": "LeftAlone"}
    assert night_ending("1.4.0", [left], 24, frozen=False)[:2] == ("FAILED", "Superseded")
    blind = [_recorded(2, "nodata"), _recorded(1, "green"), _recorded(3, "nodata")]  # measured out of order
    assert night_ending("1.4.0", blind, 3, frozen=False) == (
        "FAILED", "Held", "2 hours without data: the first night cannot vouch for v1.4.0")
