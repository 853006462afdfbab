"""The sandbox, for real: Prometheus, nginx, two service processes and load, on loopback."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from golive.signals import CATALOGUE, readiness_queries
from tests.sandbox.helpers import counter, per_request, signal_value, wait_until

pytestmark = pytest.mark.sandbox

FAULT_FOR = {
    "api_p95_ms": {"latency_ms": 300},
    "http_5xx_pct": {"error_rate": 0.5},
    "ws_staleness_s": {"ws_lag_s": 45},
    "risk_blocks_per_min": {"risk_block_rate": 0.5},
    "idempotency_conflict_pct": {"idem_key_chars": 1},
    "csp_violations_per_min": {"csp_inline_rate": 1},
    "event_loop_p95_ms": {"loop_block_ms": 150},
    "gc_pause_avg_ms": {"gc_pressure": 600},
}


def test_every_signal_is_answered_for_both_tracks(sandbox):
    # `up` already waited for this (within its 45 s budget); it must still hold.
    assert sandbox.queries_missing(readiness_queries()) == []
    assert {c.name for c in sandbox.status() if c.healthy} == {
        "prometheus", "alertmanager", "pushgateway", "stable", "canary", "secondary", "router", "control", "loadgen"}


async def _versions(url: str, n: int) -> None:
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(base_url=url, timeout=10, limits=limits) as client:
        for start in range(0, n, 100):
            responses = await asyncio.gather(*(client.get("/version") for _ in range(min(100, n - start))))
            assert all(r.status_code == 200 for r in responses)


@pytest.mark.parametrize("weight", [0, 1, 5, 25, 50, 100])
def test_observed_traffic_share_follows_the_weight(sandbox, canary_weight, weight):
    assert canary_weight(weight) == weight
    assert sandbox.weight() == weight  # read back from the router itself
    before = {t: counter(sandbox, t, "spark_http_requests_total", route="/version", source="user")
              for t in ("stable", "canary")}
    asyncio.run(_versions(sandbox.router_url, 2000))
    seen = {t: counter(sandbox, t, "spark_http_requests_total", route="/version", source="user") - before[t]
            for t in ("stable", "canary")}
    assert seen["stable"] + seen["canary"] == 2000
    share = 100 * seen["canary"] / 2000
    if weight in (0, 100):
        assert share == weight
    else:
        assert abs(share - weight) <= 2, f"canary share {share:.2f} % at weight {weight}"


@pytest.mark.parametrize("sig", CATALOGUE, ids=lambda s: s.name)
def test_a_fault_breaches_each_signal_on_the_canary_only_and_clears(sandbox, canary_weight, sig):
    canary_weight(25)  # a canary stage: enough canary traffic for the ratios to move fast

    window = 5  # seconds: short, so that a cleared fault leaves the window soon

    def over() -> bool:
        if sig.rule == "max_ratio_to_baseline":
            canary, stable = per_request(sandbox, sig, "canary", window), per_request(sandbox, sig, "stable", window)
            return canary is not None and stable is not None and canary > sig.threshold * stable
        canary, stable = signal_value(sandbox, sig, "canary", window), signal_value(sandbox, sig, "stable", window)
        return canary is not None and canary > sig.threshold and stable is not None and stable <= sig.threshold

    def inside() -> bool:
        if sig.rule == "max_ratio_to_baseline":
            canary, stable = per_request(sandbox, sig, "canary", window), per_request(sandbox, sig, "stable", window)
            return canary is not None and stable is not None and canary <= sig.threshold * stable
        canary = signal_value(sandbox, sig, "canary", window)
        return canary is not None and canary <= sig.threshold

    assert wait_until(inside, timeout=20), f"{sig.name} not inside its threshold before the fault"
    sandbox.set_faults("canary", FAULT_FOR[sig.name])
    assert wait_until(over, timeout=20), f"{sig.name}: no breach on the canary within 20 s"
    sandbox.clear_faults("canary")
    assert wait_until(inside, timeout=30), f"{sig.name}: still over 30 s after --clear"


async def _same_key(url: str, key: str, n: int, pin: str) -> list[int]:
    body = {"symbol": "ETHUSD", "side": "buy", "quantity": 0.5}
    headers = {"X-Idempotency-Key": key, "X-Canary": pin}
    async with httpx.AsyncClient(base_url=url, timeout=10, limits=httpx.Limits(max_connections=100)) as client:
        responses = await asyncio.gather(*(client.post("/api/exec/order", json=body, headers=headers)
                                           for _ in range(n)))
    return [r.status_code for r in responses]


def test_one_idempotency_key_one_order_under_concurrency(sandbox, canary_weight):
    codes = asyncio.run(_same_key(sandbox.router_url, uuid.uuid4().hex, 100, sandbox.canary_pin()))
    assert codes.count(201) == 1
    assert codes.count(409) == 99


def test_broken_idempotency_accepts_duplicates(sandbox, canary_weight):
    sandbox.set_faults("canary", {"idempotency_broken": 1})
    codes = asyncio.run(_same_key(sandbox.router_url, uuid.uuid4().hex, 100, sandbox.canary_pin()))
    assert codes.count(201) > 1


def test_outbox_lag_rises_under_a_slow_database_and_falls_after(sandbox, canary_weight):
    canary = sandbox.service_url("canary")

    def p95() -> float:
        return httpx.get(f"{canary}/api/outbox/lag", params={"window_s": 5}, timeout=5).json()["p95"]

    assert wait_until(lambda: p95() < 1.0, timeout=15)
    sandbox.set_faults("canary", {"slow_db_ms": 400})
    with httpx.Client(base_url=canary, timeout=10) as client:
        for _ in range(25):
            assert client.post("/api/exec/order", json={"symbol": "AAPL", "side": "sell", "quantity": 1}).status_code == 201
    assert wait_until(lambda: p95() > 3.0, timeout=20), "lag did not rise under the slow database"
    sandbox.clear_faults("canary")
    assert wait_until(lambda: p95() < 1.0, timeout=30), "lag did not fall after the fault was cleared"


def test_order_validation_names_the_field(sandbox):
    response = httpx.post(f"{sandbox.service_url('stable')}/api/exec/order",
                          json={"symbol": "BTCUSD", "side": "hold", "quantity": 1}, timeout=5)
    assert response.status_code == 422
    assert response.json() == {"detail": [{"field": "side", "error": "expected 'buy' or 'sell'"}]}


def test_versions_and_header_routing_where_only_the_routers_pin_reaches_the_canary(sandbox):
    def version(pin: str) -> str:
        return httpx.get(f"{sandbox.router_url}/version", headers={"X-Canary": pin}).json()["version"]

    assert version(sandbox.canary_pin()) == "1.4.0"
    assert version("never") == "1.3.2"
    # At weight 0 (after a rollback, say) a user's header cannot reach the canary: only golive's drills know the pin.
    assert {version("always"), version(sandbox.canary_pin()[:-1]), version("")} == {"1.3.2"}
    assert sandbox.canary_pin_file.stat().st_mode & 0o077 == 0


def test_unknown_fault_is_refused_and_changes_nothing(sandbox):
    from sandbox.control import SandboxError

    with pytest.raises(SandboxError, match="nope: unknown fault"):
        sandbox.set_faults("canary", {"latency_ms": 10, "nope": 1})
    assert sandbox.faults("canary")["active"] == {}
