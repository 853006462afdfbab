"""An override counts for the freeze it was recorded during, not a later one."""

from __future__ import annotations

from golive.error_budget import Freeze, Override, budget_check


def _frozen(since: float) -> Freeze:
    return Freeze(frozen=True, since=since, reason="error budget 7 % < 10 %", remaining=0.07, line=0.10)


def test_an_override_recorded_during_an_earlier_freeze_has_lapsed():
    override = Override(release="1.5.0", who="Ayşe (IC)", why="the fix for it", at=1000.0)
    assert budget_check(_frozen(since=900.0), override, "1.5.0").ok  # recorded during this freeze
    later = budget_check(_frozen(since=5000.0), override, "1.5.0")
    assert not later.ok
    assert "the override by Ayşe (IC) was recorded before this freeze began; it lapsed" in later.detail
    assert "golive budget override --release 1.5.0" in later.detail
