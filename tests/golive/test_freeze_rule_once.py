"""The first night and the freeze policy call for a freeze by one rule
(golive.error_budget.freeze_reason): whatever the night's hour says, the freeze says too."""

from __future__ import annotations

import pytest

from golive.error_budget import BudgetSettings, Freeze, freeze_reason, freeze_step
from golive.first_night import hour_verdict
from golive.settings import FirstNightSettings

HOUR = 3600.0


@pytest.mark.parametrize("remaining, exhaustion", [
    (0.05, {}),  # below the line
    (0.60, {"1h": 1.5 * HOUR, "6h": None}),  # gone within the 2 h page horizon
    (0.60, {"1h": 3 * HOUR, "6h": 30 * HOUR}),  # not soon enough
    (0.60, {"1h": None}),  # nothing burns
    (None, {"1h": 10.0}),  # unknown: never a freeze
])
def test_the_night_and_the_freeze_policy_agree(remaining, exhaustion):
    night, budget = FirstNightSettings(), BudgetSettings()
    verdict = hour_verdict({1: 1.0, 5 / 60: 1.0}, remaining, [], night, exhaustion, budget.page_horizon_hours)
    _, change = freeze_step(Freeze(line=night.freeze_below_budget), remaining, exhaustion, 100.0,
                            night.freeze_below_budget, budget)
    reason = freeze_reason(remaining, exhaustion, night.freeze_below_budget, budget.page_horizon_hours)
    assert ("freeze" in verdict["actions"]) == (change == "freeze") == (reason is not None)


def test_the_reason_names_the_line_or_the_burn():
    assert freeze_reason(0.05, {}, 0.10, 2.0) == "error budget 5 % < 10 %"
    assert freeze_reason(0.60, {"1h": 5400.0, "6h": 20000.0}, 0.10, 2.0) == (
        "error budget gone in 1 h 30 m at the 1h burn (< 2 h)")
