"""Burn-rate math against the SRE workbook's worked examples, and the windows as sloth has them."""

from __future__ import annotations

import pytest

from golive.slo import (BURN_WINDOWS, PERIOD, budget_remaining, budget_spent, burn_rate, burns_of, firing,
                        measurement_windows, window_spans)

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


def test_an_hour_measures_every_window_of_the_alerts_and_the_period():
    assert window_spans() == [5 / 60, 0.5, 1, 2, 6, 24, 72]
    windows = measurement_windows(hour_seconds=3600, period_hours=720)
    assert windows == {"0.0833333": 300, "0.5": 1800, "1": 3600, "2": 7200, "6": 21600, "24": 86400,
                       "72": 259200, PERIOD: 2_592_000}
    assert measurement_windows(hour_seconds=6, period_hours=720)["1"] == 6  # a compressed night, alike


def test_budget_remaining_over_the_period_so_far():
    assert budget_remaining(bad=500, total=1_000_000, objective=SLO) == pytest.approx(0.5)
    assert budget_remaining(bad=950, total=1_000_000, objective=SLO) == pytest.approx(0.05)
    assert budget_remaining(bad=2_000, total=1_000_000, objective=SLO) == pytest.approx(-1.0)  # overspent


def test_zero_traffic_is_no_burn_and_no_alarm():
    assert burn_rate(0, 0, SLO) is None
    assert budget_remaining(0, 0, SLO) == 1.0
    assert firing({1: None, 5 / 60: None, 6: None, 0.5: None}) == []


def test_an_empty_answer_is_no_data_never_a_zero():
    assert budget_remaining(None, None, SLO) is None
    burns = burns_of({"1": None, "0.0833333": [0.0, 0.0], "6": [3.0, 1000.0]}, SLO)
    assert burns[1] is None and burns[5 / 60] is None and burns[6] == pytest.approx(3.0)
    assert burns[0.5] is None  # not measured at all
    assert burns_of({"1": [None, 500.0]}, SLO)[1] == 0.0  # requests counted, no 5xx series: no errors


def test_an_alert_needs_both_its_long_and_its_short_window():
    assert firing({1: 20.0, 5 / 60: 10.0}) == []  # the burn has stopped: no page
    assert firing({1: 10.0, 5 / 60: 30.0}) == []  # a short spike: no page
    assert [w.name for w in firing({1: 15.0, 5 / 60: 15.0, 6: 7.0, 0.5: 6.5})] == ["1h/5m", "6h/30m"]
    with pytest.raises(ValueError, match="objective"):
        burn_rate(1, 10, 1.0)
