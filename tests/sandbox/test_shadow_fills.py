"""Consistency drift on the real sandbox: with the mirror on, each user order through the router is
filled live on stable and on paper on the canary, both under nginx's request id (a client's own is
overwritten), each fill timed with the machine's monotonic clock in the service; `drift_verdict`
passes a healthy canary and holds back one whose paper fills come 8 ms late.

The drift's tail is the machine's: both services wake for the same order at the same moment and
wait for a CPU with every other process. On a shared two-CPU machine the p99 of a healthy canary
was seen from 2.8 to 28 ms as other work came and went, its median within 0.7 ms: the gate
counts only the pairs beyond the limit on one side more than on the other, against the secondary's
paper fills of the same orders, which travel the mirror's path too (`golive.drift`). A canary 8 ms
late is late on every order, and the gate's sign test votes once per second of orders: 200 orders
one after another take 12 s or more (the engine's answer alone takes 50 ms at the median), the
eleven seconds it needs.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from starlette.requests import Request

from golive.drift import drift_verdict
from sandbox.service import FILLS_KEPT, Spark
from sandbox.store import rows_by_track
from tasks.service import read_fills
from tests.sandbox.helpers import counter, wait_until

ORDERS = 200
CLIENTS = 1
P99_MAX_MS = 5.0


def _send_orders(sandbox, count: int, headers: dict | None = None) -> dict[float, str]:
    """`count` user orders through the router, each of a quantity no other order has (the load
    generator's have 3 decimals), by that quantity: its idempotency key."""
    tag = random.randint(1, 999_999) / 1e9
    orders = {round(0.5 + i / 1000 + tag, 9): f"fills-test-{uuid.uuid4().hex}" for i in range(count)}

    def send(client_orders: list[tuple[float, str]]) -> list[int]:
        with httpx.Client(base_url=sandbox.router_url, timeout=10) as client:
            return [client.post("/api/exec/order", json={"symbol": "ETHUSD", "side": "buy", "quantity": quantity},
                                headers={"X-Idempotency-Key": key, **(headers or {})}).status_code
                    for quantity, key in client_orders]

    items = list(orders.items())
    with ThreadPoolExecutor(CLIENTS) as pool:
        statuses = [s for batch in pool.map(send, [items[i::CLIENTS] for i in range(CLIENTS)]) for s in batch]
    assert statuses == [201] * count
    return orders


def _fills_of(sandbox, track: str, since_ns: int, quantities) -> list[dict]:
    return [fill for fill in read_fills.fn(sandbox.service_url(track), since_ns)["fills"]
            if fill["quantity"] in quantities]


def _both_sides(sandbox, since_ns: int, orders: dict[float, str]) -> tuple[list[dict], list[dict]]:
    """Stable's and the canary's fills of these orders, once the canary has filled every copy."""
    return _fills_of(sandbox, "stable", since_ns, orders), _copies_filled(sandbox, "canary", since_ns, orders)


def _copies_filled(sandbox, track: str, since_ns: int, orders: dict[float, str]) -> list[dict]:
    assert wait_until(lambda: len(_fills_of(sandbox, track, since_ns, orders)) >= len(orders), timeout=15), (
        f"the {track} did not fill every copy")
    return _fills_of(sandbox, track, since_ns, orders)


def _clock(sandbox) -> int:
    return read_fills.fn(sandbox.service_url("stable"), 0)["now_ns"]


def _rows_by_track(sandbox, keys) -> dict[str, dict[str, int]]:
    return rows_by_track(str(sandbox.workdir / "spark.sqlite"), keys)


def _measure(sandbox) -> tuple[dict, list[dict], list[dict], dict[float, str]]:
    since_ns = _clock(sandbox)
    orders = _send_orders(sandbox, ORDERS)
    live, paper = _both_sides(sandbox, since_ns, orders)
    secondary = _copies_filled(sandbox, "secondary", since_ns, orders)  # the copies' own path, as the flow reads it
    verdict = drift_verdict(live, paper, P99_MAX_MS, ORDERS, secondary)
    print(f"drift: p50 {verdict['p50_ms']:.3f} ms, p99 |drift| {verdict['p99_abs_ms']:.3f} ms, "
          f"max {verdict['max_abs_ms']:.3f} ms over {verdict['pairs']} pairs: {verdict['verdict']} "
          f"({verdict['late_beyond']} late, {verdict['early_beyond']} early against the {verdict['against']})")
    return verdict, live, paper, orders


@pytest.mark.sandbox
def test_each_mirrored_order_is_filled_live_on_stable_and_on_paper_on_the_canary_under_one_request_id(
        sandbox, canary_weight):
    sandbox.set_weight(0, mirror=True)
    verdict, live, paper, orders = _measure(sandbox)
    assert len(live) == len(paper) == ORDERS
    assert {fill["paper"] for fill in live} == {False} and {fill["paper"] for fill in paper} == {True}
    assert {fill["request_id"] for fill in live} == {fill["request_id"] for fill in paper}
    assert {fill["quantity"] for fill in paper} == set(orders) and {fill["status"] for fill in paper} == {"filled"}
    assert all(fill["price"] > 0 for fill in paper) and all(fill["price"] is None for fill in live)
    assert (verdict["pairs"], verdict["disagree"], verdict["reference_pairs"]) == (ORDERS, 0, ORDERS), verdict["detail"]
    assert abs(verdict["p50_ms"]) < 1.0
    assert verdict["verdict"] == "pass", verdict["detail"]
    # The paper fills reached neither the store nor the outbox: every row is stable's.
    assert wait_until(lambda: _rows_by_track(sandbox, orders.values()) == {
        "orders": {"stable": ORDERS}, "outbox": {"stable": ORDERS}}, timeout=15)


@pytest.mark.sandbox
def test_paper_fills_8_ms_late_are_a_breach(sandbox, canary_weight):
    sandbox.set_weight(0, mirror=True)
    sandbox.set_faults("canary", {"paper_fill_delay_ms": 8})
    verdict, *_ = _measure(sandbox)
    assert verdict["late_seconds"] >= 11, verdict["detail"]  # the orders took long enough for the votes
    assert (verdict["verdict"], verdict["disagree"], verdict["against"]) == ("breach", 0, "secondary")
    assert verdict["p99_abs_ms"] >= 8 - 1 and verdict["p50_ms"] >= 8 - 2  # the delay, less the store's write
    assert "at or over 5 ms" in verdict["detail"] and "than the secondary's paper fill" in verdict["detail"]


@pytest.mark.sandbox
def test_paper_fills_2_ms_late_drift_by_2_ms_at_the_median(sandbox, canary_weight):
    # Its p99 is left to the machine: 2 ms of delay plus the tail above come near the 5-ms gate.
    # The delay is an asyncio sleep, which a starved loop ends late, never early: 4.1 ms at the
    # median was seen on a busy machine. Under the gate's 5 ms it is told apart from 8 ms late.
    sandbox.set_weight(0, mirror=True)
    sandbox.set_faults("canary", {"paper_fill_delay_ms": 2})
    verdict, *_ = _measure(sandbox)
    assert (verdict["pairs"], verdict["disagree"]) == (ORDERS, 0)
    assert 1.5 <= verdict["p50_ms"] < P99_MAX_MS


@pytest.mark.sandbox
def test_a_forged_request_id_is_overwritten_and_makes_no_match(sandbox, canary_weight):
    sandbox.set_weight(0, mirror=True)
    forged = f"forged-{uuid.uuid4().hex}"
    since_ns = _clock(sandbox)
    orders = _send_orders(sandbox, 8, headers={"X-Request-Id": forged})
    # The same forged id on an order pinned to the canary: a live order there, under nginx's id too.
    pinned = {0.987654321: f"fills-test-{uuid.uuid4().hex}"}
    answer = httpx.post(f"{sandbox.router_url}/api/exec/order", timeout=10,
                        json={"symbol": "ETHUSD", "side": "buy", "quantity": 0.987654321},
                        headers={"X-Request-Id": forged, "X-Canary": sandbox.canary_pin(),
                                 "X-Idempotency-Key": pinned[0.987654321]})
    assert (answer.status_code, answer.json()["track"]) == (201, "canary")
    live, paper = _both_sides(sandbox, since_ns, orders)
    canary_live = [fill for fill in _fills_of(sandbox, "canary", since_ns, pinned) if not fill["paper"]]

    every = live + paper + canary_live
    assert len(live) == len(paper) == 8 and len(canary_live) == 1
    assert forged not in {fill["request_id"] for fill in every}
    assert len({fill["request_id"] for fill in live + canary_live}) == 9  # each order its own id
    verdict = drift_verdict(live + canary_live, paper, P99_MAX_MS, 1)
    assert (verdict["pairs"], verdict["unmatched_live"]) == (8, 1)  # the pinned order matches nothing
    # The fills are not served to users through the router.
    assert httpx.get(f"{sandbox.router_url}/__golive/fills", timeout=10).status_code == 404


@pytest.mark.sandbox
def test_the_fills_endpoint_refuses_a_bad_since_and_is_left_out_of_the_request_metrics(sandbox):
    canary = sandbox.service_url("canary")
    for bad in ("soon", "-1", "1.5"):
        answer = httpx.get(f"{canary}/__golive/fills", params={"since_ns": bad}, timeout=10)
        assert answer.status_code == 400 and answer.json()["error"].startswith("since_ns: expected a whole number")
    with pytest.raises(ValueError, match="^since_ns: "):
        read_fills.fn(canary, -5)
    answer = read_fills.fn(canary, 0)
    assert answer["clock"] == "monotonic_ns" and answer["now_ns"] > 0
    assert read_fills.fn(canary, answer["now_ns"] + 10**12)["fills"] == []

    def unrouted() -> float:  # what a request to the canary outside its API counts as, were it counted
        return counter(sandbox, "canary", "spark_http_requests_total", route="other", source="user")

    before = unrouted()
    for _ in range(5):
        read_fills.fn(canary, 0)
    assert unrouted() == before
    httpx.get(f"{canary}/no-such-page", timeout=10)
    assert unrouted() == before + 1


def _spark_without_its_store() -> Spark:
    return Spark("canary", "1.4.0", ":memory:", seed=1)


def test_the_ring_keeps_the_newest_fills_and_none_without_a_request_id():
    spark = _spark_without_its_store()
    spark._record_fill(None, True, "ETHUSD", "buy", 1.0, "filled", 3100.0)
    assert list(spark.fills) == []
    for i in range(FILLS_KEPT + 5):
        spark._record_fill(f"r{i}", False, "ETHUSD", "buy", 1.0, "filled")
    assert len(spark.fills) == FILLS_KEPT
    assert spark.fills[0]["request_id"] == "r5" and spark.fills[-1]["request_id"] == f"r{FILLS_KEPT + 4}"
    times = [fill["at_ns"] for fill in spark.fills]
    assert times == sorted(times)


def _get_fills(spark: Spark, query: str = "") -> tuple[int, dict]:
    request = Request({"type": "http", "method": "GET", "path": "/__golive/fills", "headers": [],
                       "query_string": query.encode()})
    response = asyncio.run(spark.fills_endpoint(request))
    return response.status_code, json.loads(response.body)


def test_the_endpoint_answers_fills_newer_than_since_ns():
    spark = _spark_without_its_store()
    first = spark._record_fill("a", True, "ETHUSD", "sell", 2.0, "risk_blocked")
    spark._record_fill("b", True, "ETHUSD", "buy", 1.0, "filled", 3100.0)
    status, answer = _get_fills(spark, f"since_ns={first}")
    assert status == 200 and answer["clock"] == "monotonic_ns" and answer["now_ns"] >= first
    assert [fill["request_id"] for fill in answer["fills"]] == ["b"]
    assert answer["fills"][0] == {**answer["fills"][0], "paper": True, "price": 3100.0, "status": "filled"}
    assert [fill["request_id"] for fill in _get_fills(spark)[1]["fills"]] == ["a", "b"]
    assert _get_fills(spark, "since_ns=x") == (400, {
        "error": "since_ns: expected a whole number of nanoseconds >= 0, got 'x'"})


def test_a_reader_is_told_a_clock_before_a_live_fill_still_being_stored():
    spark = _spark_without_its_store()
    with spark._storing() as decided_ns:
        _, answer = _get_fills(spark)
        assert answer["now_ns"] == decided_ns - 1
        spark._record_fill("late", False, "ETHUSD", "buy", 1.0, "filled", at_ns=decided_ns)
    assert [fill["request_id"] for fill in _get_fills(spark, f"since_ns={answer['now_ns']}")[1]["fills"]] == ["late"]
    assert _get_fills(spark)[1]["now_ns"] > decided_ns
