"""Burn-rate math against the SRE workbook's worked examples, and the first night's hour rules."""

from __future__ import annotations

import pytest

from golive.first_night import degraded_signals, hour_verdict, night_report, plot_burn
from golive.settings import FirstNightSettings
from golive.signals import CATALOGUE
from golive.slo import BURN_WINDOWS, budget_remaining, budget_spent, burn_rate, firing

SLO = 0.999  # the workbook's example: 99.9 % over 30 days (720 hours)


def test_a_burn_rate_is_the_error_ratio_over_the_budgeted_one():
    assert burn_rate(bad=144, total=10_000, objective=SLO) == pytest.approx(14.4)
    assert burn_rate(bad=1, total=1_000, objective=SLO) == pytest.approx(1.0)
    assert burn_rate(bad=0, total=5_000, objective=SLO) == 0.0


@pytest.mark.parametrize(("burn", "hours", "spent"), [
    (14.4, 1, 0.02),   # page: 2 % of the budget in one hour
    (6, 6, 0.05),      # page: 5 % in six hours
    (3, 24, 0.10),     # ticket: 10 % in a day
    (1, 72, 0.10),     # ticket: 10 % in three days
    (1, 720, 1.00),    # a burn of 1 spends exactly the budget over the period
])
def test_the_workbook_windows_spend_what_it_says(burn, hours, spent):
    assert budget_spent(burn, hours, period_hours=720) == pytest.approx(spent)


def test_the_windows_are_sloths():
    assert [(w.name, w.factor, w.severity) for w in BURN_WINDOWS] == [
        ("1h/5m", 14.4, "page"), ("6h/30m", 6, "page"), ("24h/120m", 3, "ticket"), ("72h/360m", 1, "ticket")]


def test_budget_remaining_over_the_period_so_far():
    assert budget_remaining(bad=500, total=1_000_000, objective=SLO) == pytest.approx(0.5)
    assert budget_remaining(bad=950, total=1_000_000, objective=SLO) == pytest.approx(0.05)
    assert budget_remaining(bad=2_000, total=1_000_000, objective=SLO) == pytest.approx(-1.0)  # overspent


def test_zero_traffic_is_no_burn_and_no_alarm():
    assert burn_rate(0, 0, SLO) is None
    assert budget_remaining(0, 0, SLO) == 1.0
    assert firing({1: None, 5 / 60: None, 6: None, 0.5: None}) == []
    verdict = hour_verdict({1: None, 5 / 60: None}, 1.0, [], FirstNightSettings())
    assert verdict == {"status": "green", "alerts": [], "triggers": [], "actions": []}


def test_an_alert_needs_both_its_long_and_its_short_window():
    assert firing({1: 20.0, 5 / 60: 10.0}) == []  # the burn has stopped: no page
    assert firing({1: 10.0, 5 / 60: 30.0}) == []  # a short spike: no page
    assert [w.name for w in firing({1: 15.0, 5 / 60: 15.0, 6: 7.0, 0.5: 6.5})] == ["1h/5m", "6h/30m"]
    with pytest.raises(ValueError, match="objective"):
        burn_rate(1, 10, 1.0)


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


def test_the_plot_is_a_png():
    assert plot_burn([_hour(1), _hour(2)], 1.5).startswith(b"\x89PNG\r\n\x1a\n")
