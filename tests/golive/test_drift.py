"""Consistency drift: live fills against the paper fills of the same orders, matched by request id."""

from __future__ import annotations

import pytest

from golive.drift import checked_fills, drift_verdict, nearest_rank

MS = 1_000_000


def _fill(request_id: str, at_ms: float, paper: bool, **changes) -> dict:
    return {"request_id": request_id, "at_ns": round(at_ms * MS), "paper": paper, "symbol": "ETHUSD", "side": "buy",
            "quantity": 0.5, "price": 3100.0 if paper else None, "status": "filled", **changes}


def _pairs(drifts_ms: list[float]) -> tuple[list[dict], list[dict]]:
    live = [_fill(f"r{i}", 1000.0 * i, False) for i in range(len(drifts_ms))]
    paper = [_fill(f"r{i}", 1000.0 * i + drift, True) for i, drift in enumerate(drifts_ms)]
    return live, paper


def test_nearest_rank_is_a_value_seen_and_the_largest_below_100_values():
    assert nearest_rank([3.0, 1.0, 2.0], 0.5) == 2.0
    assert nearest_rank([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0  # the 2nd of 4
    assert nearest_rank([float(i) for i in range(1, 51)], 0.99) == 50.0
    assert nearest_rank([float(i) for i in range(1, 201)], 0.99) == 198.0
    assert nearest_rank([7.0], 0.0) == 7.0


def test_a_paper_fill_close_to_its_live_fill_passes():
    live, paper = _pairs([0.3, -0.4, 1.2, 0.8] * 10)
    verdict = drift_verdict(live, paper, p99_max_ms=5.0, min_pairs=20)
    assert (verdict["verdict"], verdict["pairs"], verdict["disagree"]) == ("pass", 40, 0)
    assert (verdict["unmatched_live"], verdict["unmatched_paper"]) == (0, 0)
    assert verdict["p99_abs_ms"] == pytest.approx(1.2) and verdict["max_abs_ms"] == pytest.approx(1.2)
    assert verdict["p50_ms"] == pytest.approx(0.3)  # signed: the 20th of 40
    assert "1.200 ms over 40 pairs" in verdict["detail"]


def test_paper_fills_8_ms_late_are_a_breach_and_the_worst_pairs_are_shown():
    drifts = [8.0 + 0.01 * i for i in range(30)]
    live, paper = _pairs(drifts)
    verdict = drift_verdict(live, paper, p99_max_ms=5.0, min_pairs=20)
    assert verdict["verdict"] == "breach" and verdict["p99_abs_ms"] == pytest.approx(8.29)
    assert "at or over 5 ms" in verdict["detail"] and "\n" not in verdict["detail"]
    examples = verdict["examples"]
    assert [e["request_id"] for e in examples] == ["r29", "r28", "r27", "r26", "r25"]
    assert examples[0]["drift_ms"] == pytest.approx(8.29)
    assert examples[0]["live"]["paper"] is False and examples[0]["paper"]["paper"] is True


def test_the_p99_at_exactly_the_threshold_is_a_breach_and_just_under_passes():
    assert drift_verdict(*_pairs([5.0] * 20), p99_max_ms=5.0, min_pairs=20)["verdict"] == "breach"
    assert drift_verdict(*_pairs([4.999] * 20), p99_max_ms=5.0, min_pairs=20)["verdict"] == "pass"


def test_one_late_pair_in_a_small_sample_is_its_p99_but_not_a_breach_beyond_chance():
    few = drift_verdict(*_pairs([0.5] * 49 + [30.0]), p99_max_ms=5.0, min_pairs=20)
    assert (few["verdict"], few["p99_abs_ms"], few["late_beyond"]) == ("pass", 30.0, 1)
    assert ("at or over 5 ms, but 1 late and 0 early, in 1 and 0 seconds of orders: no side beyond the machine's "
            "noise") in few["detail"]
    many = drift_verdict(*_pairs([0.5] * 199 + [30.0]), p99_max_ms=5.0, min_pairs=20)
    assert (many["verdict"], many["p99_abs_ms"], many["max_abs_ms"]) == ("pass", 0.5, 30.0)


def test_a_busy_machine_delaying_either_side_is_not_the_canarys_drift():
    # Seen on a busy two-CPU machine: median 0.3 ms, its worst pairs tens of ms on both sides.
    noise = [0.3] * 120 + [28.0, -43.0, 17.5, -16.7, -11.6, 9.0, -7.5, 6.0]
    verdict = drift_verdict(*_pairs(noise), p99_max_ms=5.0, min_pairs=20)
    assert verdict["p99_abs_ms"] >= 5.0 and (verdict["late_beyond"], verdict["early_beyond"]) == (4, 4)
    assert verdict["verdict"] == "pass"


def _seconds_of_orders(beyond_by_second: list[list[float]], per_second: int) -> tuple[list[dict], list[dict]]:
    """`per_second` orders a second, evenly spaced: in second i the first drift by
    `beyond_by_second[i]`, the rest by 0.4 ms."""
    live, paper = [], []
    for second, beyond in enumerate(beyond_by_second):
        for k, drift in enumerate(beyond + [0.4] * (per_second - len(beyond))):
            at_ms = 1000.0 * second + 1000.0 / per_second * k
            live.append(_fill(f"s{second}-{k}", at_ms, False))
            paper.append(_fill(f"s{second}-{k}", at_ms + drift, True))
    return live, paper


def test_a_busy_machine_favouring_one_side_for_seconds_at_a_time_is_not_the_canarys_drift():
    # Seen with a process spinning and a browser loading pages: four seconds with many pairs
    # beyond the limit one way, four with a few the other way, and again.
    live, paper = _seconds_of_orders([[12.0] * 4 if (s // 4) % 2 == 0 else [-12.0] for s in range(40)], 20)
    verdict = drift_verdict(live, paper, 5.0, 20)
    assert (verdict["late_beyond"], verdict["early_beyond"]) == (80, 20)
    assert (verdict["verdict"], verdict["late_seconds"], verdict["early_seconds"]) == ("pass", 20, 20)
    # The same pairs a second apart each are as many votes, and the canary's drift.
    one_a_second = drift_verdict(*_pairs([(p["at_ns"] - q["at_ns"]) / MS for p, q in zip(paper, live)]), 5.0, 20)
    assert (one_a_second["verdict"], one_a_second["late_seconds"], one_a_second["early_seconds"]) == ("breach", 80, 20)
    assert "late in 80 seconds of orders against 20" in one_a_second["detail"]


def test_the_side_with_more_pairs_beyond_the_limit_must_win_the_seconds_too():
    # 60 late pairs in two seconds, 20 early ones a second each: neither side is the canary's.
    verdict = drift_verdict(*_seconds_of_orders([[12.0] * 30 if s in (5, 15) else [-12.0] for s in range(22)], 40),
                            5.0, 20)
    assert (verdict["late_beyond"], verdict["early_beyond"]) == (60, 20)
    assert (verdict["verdict"], verdict["late_seconds"], verdict["early_seconds"]) == ("pass", 2, 20)


def test_a_canary_late_by_a_little_on_a_busy_machine_passes_and_by_the_limit_does_not():
    noise = [28.0, -43.0, 17.5, -16.7, -11.6, 9.0, -7.5, 6.0]
    assert drift_verdict(*_pairs([2.3] * 120 + noise), 5.0, 20)["verdict"] == "pass"
    late = drift_verdict(*_pairs([8.3] * 120 + noise), 5.0, 20)
    assert (late["verdict"], late["late_beyond"], late["early_beyond"]) == ("breach", 124, 4)
    assert "124 paper fills that late against 4 the other way" in late["detail"]


def _secondary(live: list[dict], drifts_ms: list[float]) -> list[dict]:
    """The secondary's paper fills of the same orders, `drifts_ms` after the live fills."""
    return [_fill(fill["request_id"], fill["at_ns"] / MS + drift, True) for fill, drift in zip(live, drifts_ms)]


def test_copies_late_by_the_mirrors_path_are_not_the_canarys_drift_where_the_secondary_was_as_late():
    # Seen on a saturated machine: the copies of 18 orders in 159 reached both instances 5 ms or more late.
    path = [0.9] * 141 + [12.0] * 18
    live, paper = _pairs(path)
    alone = drift_verdict(live, paper, 5.0, 20)
    assert (alone["verdict"], alone["against"], alone["late_beyond"]) == ("breach", "live", 18)
    verdict = drift_verdict(live, paper, 5.0, 20, _secondary(live, [d + 0.2 for d in path]))
    assert (verdict["verdict"], verdict["against"], verdict["reference_pairs"]) == ("pass", "secondary", 159)
    assert verdict["p99_abs_ms"] == pytest.approx(12.0)  # the runbook's number is still live against paper
    assert "0 late and 0 early (than the secondary's paper fill of the same order)" in verdict["detail"]


def test_a_canary_late_against_the_secondarys_fills_of_the_same_orders_is_a_breach():
    live, paper = _pairs([8.0] * 40)
    verdict = drift_verdict(live, paper, 5.0, 20, _secondary(live, [0.5] * 40))
    assert (verdict["verdict"], verdict["against"], verdict["late_beyond"]) == ("breach", "secondary", 40)
    assert "40 paper fills that late (than the secondary's paper fill of the same order)" in verdict["detail"]


def test_a_secondary_that_filled_too_few_of_the_orders_leaves_the_gate_on_the_live_fills():
    live, paper = _pairs([8.0] * 40)
    verdict = drift_verdict(live, paper, 5.0, 20, _secondary(live[:19], [8.0] * 19))
    assert (verdict["verdict"], verdict["against"], verdict["reference_pairs"]) == ("breach", "live", 19)
    assert drift_verdict(live, paper, 5.0, 20, [])["against"] == "live"


def test_a_few_late_pairs_in_a_row_are_not_yet_beyond_chance_many_are():
    # The sign test is sequential (anytime-valid): the stage looks at every interval.
    assert drift_verdict(*_pairs([0.4] * 200 + [12.0] * 5), 5.0, 20)["verdict"] == "pass"
    assert drift_verdict(*_pairs([0.4] * 200 + [12.0] * 20), 5.0, 20)["verdict"] == "breach"


def test_early_paper_fills_count_by_their_magnitude():
    verdict = drift_verdict(*_pairs([-9.0] * 25), p99_max_ms=5.0, min_pairs=20)
    assert (verdict["verdict"], verdict["p50_ms"], verdict["p99_abs_ms"]) == ("breach", -9.0, 9.0)


def test_too_few_pairs_is_insufficient_whatever_the_drift():
    verdict = drift_verdict(*_pairs([40.0] * 19), p99_max_ms=5.0, min_pairs=20)
    assert (verdict["verdict"], verdict["pairs"]) == ("insufficient", 19)
    assert "19 matched pairs" in verdict["detail"]
    empty = drift_verdict([], [], p99_max_ms=5.0, min_pairs=1)
    assert (empty["verdict"], empty["p50_ms"], empty["p99_abs_ms"], empty["max_abs_ms"]) == (
        "insufficient", None, None, None)
    assert sum(bucket["pairs"] for bucket in empty["histogram"]) == 0


def test_a_pair_that_disagrees_is_a_breach_even_among_few_and_is_named():
    live, paper = _pairs([0.2] * 3)
    paper[1] = {**paper[1], "side": "sell"}
    verdict = drift_verdict(live, paper, p99_max_ms=5.0, min_pairs=20)
    assert (verdict["verdict"], verdict["disagree"]) == ("breach", 1)
    assert "request r1: side 'buy' live vs 'sell' paper" in verdict["detail"]
    assert verdict["examples"][0]["request_id"] == "r1"  # disagreeing pairs come first


@pytest.mark.parametrize("change, named", [
    ({"status": "risk_blocked"}, "status"), ({"quantity": 0.25}, "quantity"), ({"symbol": "BTCUSD"}, "symbol"),
])
def test_each_field_of_a_decision_must_agree(change, named):
    live, paper = _pairs([0.2] * 25)
    paper[0] = {**paper[0], **change}
    verdict = drift_verdict(live, paper, p99_max_ms=5.0, min_pairs=20)
    assert verdict["verdict"] == "breach" and f"request r0: {named} " in verdict["detail"]


def test_prices_are_compared_only_where_both_fills_have_one():
    live, paper = _pairs([0.2] * 25)
    assert drift_verdict(live, paper, 5.0, 20)["verdict"] == "pass"  # the live fill is not priced
    live[3] = {**live[3], "price": 3100.0}
    assert drift_verdict(live, paper, 5.0, 20)["verdict"] == "pass"
    live[3] = {**live[3], "price": 3099.5}
    assert "price 3099.5 live vs 3100.0 paper" in drift_verdict(live, paper, 5.0, 20)["detail"]


def test_fills_are_matched_by_request_id_only_and_the_rest_is_counted_unmatched():
    live, paper = _pairs([0.1] * 22)
    live.append(_fill("only-live", 5.0, False))
    paper += [_fill("only-paper", 5.0, True), _fill("r0", 900.0, True)]  # a repeated id: the first one counts
    paper.reverse()  # order does not matter, ids do
    verdict = drift_verdict(live, paper, 5.0, 20)
    assert (verdict["pairs"], verdict["unmatched_live"], verdict["unmatched_paper"]) == (22, 1, 2)
    assert verdict["max_abs_ms"] == pytest.approx(900.0)  # the repeated id's first fill, paired


def test_only_live_fills_of_stable_and_paper_fills_of_the_canary_are_read():
    live, paper = _pairs([0.1] * 20)
    canary_live = [{**fill, "at_ns": fill["at_ns"] + 50 * MS} for fill in live]  # the canary's own users
    stable_paper = [{**fill, "at_ns": fill["at_ns"] - 50 * MS} for fill in paper]
    verdict = drift_verdict(live + stable_paper, paper + canary_live, 5.0, 20)
    assert (verdict["verdict"], verdict["pairs"], verdict["unmatched_live"], verdict["unmatched_paper"]) == (
        "pass", 20, 0, 0)


def test_the_histogram_counts_pairs_per_bucket_of_absolute_drift():
    verdict = drift_verdict(*_pairs([0.0, 0.49, -0.5, 1.5, 4.99, 5.0, -12.0, 49.9, 50.0, 5000.0]), 5.0, 1)
    counts = {(bucket["from_ms"], bucket["to_ms"]): bucket["pairs"] for bucket in verdict["histogram"]}
    assert counts == {(0.0, 0.5): 2, (0.5, 1.0): 1, (1.0, 2.0): 1, (2.0, 5.0): 1, (5.0, 10.0): 1, (10.0, 20.0): 1,
                      (20.0, 50.0): 1, (50.0, None): 2}


@pytest.mark.parametrize("args, field", [
    ((5.0, 0), "min_pairs"), ((0, 20), "p99_max_ms"), ((float("nan"), 20), "p99_max_ms"), ((True, 20), "p99_max_ms"),
    ((5.0, 2.5), "min_pairs"),
])
def test_thresholds_out_of_range_are_refused_naming_them(args, field):
    with pytest.raises(ValueError, match=f"^{field}: "):
        drift_verdict([], [], *args)


def test_a_fill_without_a_request_id_or_whole_nanoseconds_is_refused_naming_it():
    live, paper = _pairs([0.1])
    with pytest.raises(ValueError, match=r"^paper\[0\]\.at_ns: expected whole nanoseconds"):
        drift_verdict(live, [{**paper[0], "at_ns": 1.5}], 5.0, 1)
    with pytest.raises(ValueError, match=r"^live\[0\]\.request_id: "):
        drift_verdict([{**live[0], "request_id": ""}], paper, 5.0, 1)


def test_the_services_answer_is_checked_naming_the_field():
    good = {"clock": "monotonic_ns", "now_ns": 10, "fills": [_fill("r", 0.001, True)]}
    assert checked_fills(good, "stable") is good
    for answer, message in [
        ([], "stable: expected a JSON object, got list"),
        ({**good, "clock": "wall"}, "stable: clock: expected 'monotonic_ns'"),
        ({**good, "now_ns": "10"}, "stable: now_ns: expected whole nanoseconds"),
        ({**good, "fills": {}}, "stable: fills: expected a list"),
        ({**good, "fills": [5]}, r"stable: fills\[0\]: expected an object"),
        ({**good, "fills": [{k: v for k, v in good["fills"][0].items() if k != "side"}]},
         r"stable: fills\[0\]\.side: missing"),
        ({**good, "fills": [{**good["fills"][0], "paper": 1}]}, r"stable: fills\[0\]\.paper: expected true or false"),
        ({**good, "fills": [{**good["fills"][0], "at_ns": True}]}, r"stable: fills\[0\]\.at_ns: expected whole"),
    ]:
        with pytest.raises(ValueError, match=f"^{message}"):
            checked_fills(answer, "stable")
