"""The fencing rules of golive/fencing.py, one test per rule, and their words."""

from __future__ import annotations

import pytest

from golive.fencing import Fence, FenceHolder, leave_alone_because, take_refusal, write_refusal

GO_LIVE = FenceHolder(kind="go-live", name="go-live v1.4.0", run="run-a", at=1_780_000_000.0)
NEWER_GO_LIVE = FenceHolder(kind="go-live", name="go-live v1.5.0", run="run-b")
ROLLBACK = FenceHolder(kind="rollback", name="rollback v1.4.0 (crashed)", run="run-r")
OPERATOR = FenceHolder(kind="operator", name="golive sandbox weight (by hand)")


def test_a_write_with_the_newest_generation_is_accepted():
    assert write_refusal(Fence(generation=7, holder=GO_LIVE), 7) is None


def test_a_write_with_an_older_generation_is_refused_naming_who_fenced_it():
    why = write_refusal(Fence(generation=8, holder=ROLLBACK), 7)
    assert why == ("generation 7 is fenced: the target is at generation 8, taken by rollback v1.4.0 (crashed) "
                   "(flow run run-r)")


def test_a_write_with_a_generation_never_issued_is_refused():
    assert write_refusal(Fence(generation=3), 4) == "generation 4 was never issued: the target is at generation 3"


def test_a_target_never_fenced_takes_only_generation_0_writes():
    assert write_refusal(Fence(), 0) is None
    assert write_refusal(Fence(), 1) is not None


def test_a_conditional_take_needs_the_generation_the_taker_read():
    fence = Fence(generation=5, holder=GO_LIVE)
    assert take_refusal(fence, None) is None
    assert take_refusal(fence, 5) is None
    assert take_refusal(fence, 4) == ("the target moved on from generation 4: it is at generation 5, taken by "
                                      "go-live v1.4.0 (flow run run-a) at 2026-05-28T20:26:40Z")


@pytest.mark.parametrize("holder", [GO_LIVE, ROLLBACK, OPERATOR, None])
def test_an_operators_rollback_takes_the_target_whoever_holds_it(holder):
    assert leave_alone_because(Fence(generation=5, holder=holder), None, None) is None


def test_a_rollback_ends_the_go_live_it_names_by_generation_or_by_run():
    fence = Fence(generation=5, holder=GO_LIVE)
    assert leave_alone_because(fence, 5, None) is None
    assert leave_alone_because(fence, None, "run-a") is None


@pytest.mark.parametrize("holder", [ROLLBACK, OPERATOR, None])
@pytest.mark.parametrize("weight", [None, 5])
def test_a_rollback_may_zero_again_after_a_rollback_or_an_operator_short_of_0(holder, weight):
    assert leave_alone_because(Fence(generation=9, holder=holder), 5, "run-a", weight) is None


@pytest.mark.parametrize("holder", [OPERATOR, None])
def test_a_rollback_zeroes_again_what_an_operator_left_at_0(holder):
    assert leave_alone_because(Fence(generation=9, holder=holder), 5, "run-a", 0) is None


def test_a_go_live_a_rollback_already_brought_to_0_is_not_rolled_back_twice():
    fence = Fence(generation=9, holder=ROLLBACK)
    assert leave_alone_because(fence, 5, None, 0) == f"already rolled back: weight 0 under {fence.describe()}: left alone"
    assert leave_alone_because(fence, None, "run-a", 0) is not None
    assert leave_alone_because(fence, None, None, 0) is None  # an operator's rollback does what it is told


def test_a_late_rollback_leaves_a_newer_go_live_alone():
    fence = Fence(generation=9, holder=NEWER_GO_LIVE)
    assert leave_alone_because(fence, 5, None) == (
        "a newer go-live holds the traffic target (generation 9, taken by go-live v1.5.0 (flow run run-b)): left alone")
    assert leave_alone_because(fence, None, "run-a") is not None


def test_a_holder_is_named_within_bounds():
    with pytest.raises(ValueError):
        FenceHolder(kind="go-live", name="")
    with pytest.raises(ValueError):
        FenceHolder(kind="someone", name="x")
    with pytest.raises(ValueError):
        Fence(generation=-1)
