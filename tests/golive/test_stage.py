"""The stage's state machine, a test per rule (golive/stage.py's docstring)."""

from __future__ import annotations

from golive.signals import SIGNAL_NAMES
from golive.stage import StageMachine, StagePlan, deferral_stage

GREEN = {name: "pass" for name in SIGNAL_NAMES}
THIN = {**GREEN, "http_5xx_pct": "insufficient", "risk_blocks_per_min": "insufficient"}
WORSE = {**GREEN, "api_p95_ms": "deviation"}
WORSE_AND_THIN = {**THIN, "api_p95_ms": "deviation"}


def machine(**overrides) -> StageMachine:
    plan = dict(percent=5, interval_seconds=60, dwell_seconds=300, max_dwell_seconds=600, hold_seconds=120,
                hold_budget_seconds=240, on_insufficient_traffic="pause")
    return StageMachine(StagePlan(**{**plan, **overrides}), started_at=1000.0)


def look(m: StageMachine, decision: str, verdicts=GREEN, triggers=(), answered=True):
    return m.observe(m.next_tick, decision, verdicts, triggers, answered)


def test_a_trigger_rolls_back_at_the_first_look():
    m = machine()
    step = look(m, "rollback", triggers=["breach:api_p95_ms"])
    assert (step.action, step.triggers) == ("rollback", ("breach:api_p95_ms",))


def test_green_proceeds_only_once_the_dwell_is_watched():
    m = machine()
    assert [look(m, "proceed").action for _ in range(5)] == ["continue"] * 4 + ["proceed"]
    assert m.next_tick == 1000.0 + 6 * 60


def test_the_proceed_counts_the_signals_of_the_list():
    m = machine(dwell_seconds=60)
    assert look(m, "proceed").reason == "8/8 green over the window"
    three = {"http_p95_ms": "pass", "http_5xx_pct": "pass", "queue_depth": "pass"}
    assert look(machine(dwell_seconds=60), "proceed", three).reason == "3/3 green over the window"


def test_too_little_traffic_extends_the_window_and_keeps_its_intervals():
    m = machine()
    steps = [look(m, "hold", THIN).action for _ in range(6)]
    assert steps == ["continue"] * 4 + ["extend", "extend"]
    assert (m.window_start, m.window_no, m.holds, m.held_seconds) == (1000.0, 1, 0, 0.0)
    assert look(m, "proceed").action == "proceed"  # the grown window had enough: proceed at once


def test_too_little_traffic_never_proceeds_nor_rolls_back_before_the_maximum_dwell():
    m = machine(hold_budget_seconds=0)
    actions = {look(m, "hold", THIN).action for _ in range(9)}
    assert actions == {"continue", "extend"}


def test_at_the_maximum_dwell_an_inconclusive_stage_pauses_for_a_person():
    m = machine()
    steps = [look(m, "hold", THIN) for _ in range(10)]
    assert [s.action for s in steps[4:]] == ["extend"] * 5 + ["pause"]
    assert steps[-1].reason.startswith("inconclusive: too little traffic") and steps[-1].triggers == ()


def test_at_the_maximum_dwell_an_inconclusive_stage_rolls_back_when_the_policy_says_so():
    m = machine(on_insufficient_traffic="rollback")
    last = [look(m, "hold", THIN) for _ in range(10)][-1]
    assert (last.action, last.triggers) == ("rollback", ("hold-budget-exhausted",))


def test_thin_signals_go_to_a_next_stage_small_enough_to_judge_them_at_the_dwell():
    m = machine(percent=1, defers_to=5)
    steps = [look(m, "hold", THIN) for _ in range(5)]
    assert [s.action for s in steps] == ["continue"] * 4 + ["proceed"]
    assert steps[-1].deferred == ("http_5xx_pct", "risk_blocks_per_min")
    assert steps[-1].reason == ("6/8 green; too little traffic here to tell http_5xx_pct, risk_blocks_per_min: "
                                "judged at 5%")


def test_a_deviation_beside_thin_signals_is_not_deferred():
    m = machine(percent=1, defers_to=5)
    assert [look(m, "hold", WORSE_AND_THIN).action for _ in range(5)][-1] == "hold"


def test_the_next_stage_judges_thin_signals_only_up_to_the_policys_percent():
    ladder = (1, 5, 25, 50, 100)
    assert [deferral_stage(p, ladder, 5) for p in (0, 1, 5, 25, 100)] == [1, 5, None, None, None]
    assert deferral_stage(1, (1, 100), 5) is None and deferral_stage(1, ladder, 0) is None


def test_a_deviation_holds_and_remeasures_a_fresh_window_of_hold_seconds():
    m = machine()
    steps = [look(m, "hold", WORSE).action for _ in range(5)]
    assert steps[-1] == "hold"
    assert (m.window_start, m.window_no, m.holds, m.held_seconds) == (1300.0, 2, 1, 120.0)
    assert m.intervals_in_window == 2
    assert [look(m, "proceed").action for _ in range(2)] == ["continue", "proceed"]


def test_a_deviation_beside_thin_signals_is_a_hold_not_an_extension():
    m = machine()
    assert [look(m, "hold", WORSE_AND_THIN).action for _ in range(5)][-1] == "hold"


def test_holds_within_the_budget_then_roll_back():
    m = machine()
    steps = [look(m, "hold", WORSE) for _ in range(5 + 2 + 2)]
    assert [s.action for s in steps].count("hold") == 2
    assert (steps[-1].action, steps[-1].triggers) == ("rollback", ("hold-budget-exhausted",))


def test_a_silent_prometheus_spends_the_budget_as_metrics_unreachable():
    m = machine(hold_budget_seconds=0)
    steps = [look(m, "hold", {name: "nodata" for name in GREEN}, answered=False) for _ in range(5)]
    assert (steps[-1].action, steps[-1].triggers) == ("rollback", ("metrics-unreachable",))


def test_green_signals_do_not_proceed_while_the_alert_source_is_silent():
    m = machine()
    steps = [look(m, "proceed", answered=False).action for _ in range(5)]
    assert steps[-1] == "hold"  # not knowing whether a critical alert fires is not "no alert"
    later = [look(m, "proceed", answered=False) for _ in range(4)]
    assert (later[-1].action, later[-1].triggers) == ("rollback", ("metrics-unreachable",))
    assert look(machine(), "proceed").action == "continue"


def test_unanswered_approvals_wait_within_the_hold_budget():
    m = machine(hold_budget_seconds=250)
    assert m.waited_for_approval(100).action == "hold"
    assert m.waited_for_approval(100).action == "hold"
    spent = m.waited_for_approval(100)
    assert (spent.action, spent.triggers) == ("rollback", ("hold-budget-exhausted",))
