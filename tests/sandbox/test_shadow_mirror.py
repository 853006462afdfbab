"""The shadow stage's parts in the sandbox: at weight 0 the router copies users' requests to the
canary (nginx's `mirror`), the users are answered by stable, and the canary fills the copied orders
on paper: nothing of them reaches the store or the outbox. No client can pass for a copy."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from golive.fencing import FenceHolder
from golive.settings import RouterSettings
from sandbox.control import SandboxError
from sandbox.store import rows_by_track
from tasks.router import router_for
from tasks.sandbox_router import SandboxRouter
from tests.sandbox.helpers import wait_until

pytestmark = pytest.mark.sandbox
ORDER = {"symbol": "ETHUSD", "side": "buy", "quantity": 0.5}


def _orders_by_track(sandbox, keys: list[str]) -> dict[str, int]:
    return rows_by_track(str(sandbox.workdir / "spark.sqlite"), keys)["orders"]


def _outbox_of(sandbox, keys: list[str]) -> dict[str, int]:
    return rows_by_track(str(sandbox.workdir / "spark.sqlite"), keys)["outbox"]


def _shadow_requests(sandbox, route: str = "/api/exec/order") -> float:
    text = httpx.get(f"{sandbox.service_url('canary')}/metrics", timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("spark_http_requests_total{") and 'source="shadow"' in line
               and f'route="{route}"' in line)


def test_users_are_answered_by_stable_and_their_orders_reach_the_canary_only_on_paper(sandbox, canary_weight):
    sandbox.set_weight(0, mirror=True)
    assert sandbox.mirroring() and sandbox.weight() == 0
    before = _shadow_requests(sandbox)
    keys = [f"shadow-test-{uuid.uuid4().hex}" for _ in range(20)]
    with httpx.Client(base_url=sandbox.router_url, timeout=10) as client:
        answers = [client.post("/api/exec/order", json=ORDER, headers={"X-Idempotency-Key": key}) for key in keys]
    assert {(a.status_code, a.json()["status"], a.json()["track"]) for a in answers} == {(201, "accepted", "stable")}
    assert wait_until(lambda: _shadow_requests(sandbox) - before >= len(keys), timeout=10), "the copies never came"

    assert _orders_by_track(sandbox, keys) == {"stable": len(keys)}  # not one row of the canary's
    assert wait_until(lambda: _outbox_of(sandbox, keys).get("stable") == len(keys), timeout=10)
    assert "canary" not in _outbox_of(sandbox, keys)
    # A POST that is not an order is not copied at all (a CSP report, say).
    reports = _shadow_requests(sandbox, "/csp-report")
    httpx.post(f"{sandbox.router_url}/csp-report", content=b'{"csp-report": {}}', timeout=10,
               headers={"Content-Type": "application/csp-report"})
    time.sleep(0.5)
    assert _shadow_requests(sandbox, "/csp-report") == reports


def test_a_client_cannot_pass_for_a_copy(sandbox, canary_weight):
    sandbox.set_weight(0, mirror=True)
    keys = {track: f"forged-{track}-{uuid.uuid4().hex}" for track in ("stable", "canary")}
    pins = {"stable": "never", "canary": sandbox.canary_pin()}
    for track, key in keys.items():
        answer = httpx.post(f"{sandbox.router_url}/api/exec/order", json=ORDER, timeout=10,
                            headers={"X-Idempotency-Key": key, "X-Golive-Shadow": "1", "X-Canary": pins[track]})
        # A real order on either track: the header was taken off on the way.
        assert (answer.json()["status"], answer.json()["track"]) == ("accepted", track)
        assert _orders_by_track(sandbox, [key]) == {track: 1}


def test_the_canary_fills_a_copy_on_paper_and_a_resent_key_conflicts_as_it_would_in_the_store(sandbox):
    key, canary = f"paper-{uuid.uuid4().hex}", sandbox.service_url("canary")
    headers = {"X-Golive-Shadow": "1", "X-Idempotency-Key": key}
    first = httpx.post(f"{canary}/api/exec/order", json=ORDER, headers=headers, timeout=10)
    again = httpx.post(f"{canary}/api/exec/order", json=ORDER, headers=headers, timeout=10)
    assert (first.status_code, first.json()["status"], again.status_code) == (201, "paper_filled", 409)
    assert first.json()["price"] > 0 and isinstance(first.json()["filled_at_ns"], int)
    time.sleep(0.2)
    assert _orders_by_track(sandbox, [key]) == {}


def test_the_mirror_is_refused_above_weight_0_and_any_later_write_turns_it_off(sandbox, canary_weight):
    with pytest.raises(SandboxError, match="mirror: expected only at weight 0"):
        sandbox.set_weight(5, mirror=True)
    sandbox.set_weight(0, mirror=True)
    assert sandbox.mirroring()
    rollback = SandboxRouter(sandbox.control_url)  # golive's own client, as a rollback writes weight 0
    assert rollback.set_weight(0, rollback.take_generation(FenceHolder(kind="rollback", name="test")).generation) == 0
    assert not sandbox.mirroring()


def test_the_mirror_copies_only_the_routes_the_targets_settings_allow(sandbox, canary_weight):
    allowed = RouterSettings(control_url=sandbox.control_url,
                             mirror_routes=[{"methods": ["GET"], "path": "/api/quote/*"}])
    router = router_for(allowed)  # golive's own client, as the shadow stage writes the mirror
    assert router.set_weight(0, router.take_generation(FenceHolder(kind="go-live", name="test")).generation,
                             mirror=True) == 0
    assert sandbox.mirroring()
    quotes, orders = _shadow_requests(sandbox, "/api/quote/{symbol}"), _shadow_requests(sandbox)
    key = f"not-copied-{uuid.uuid4().hex}"
    with httpx.Client(base_url=sandbox.router_url, timeout=10) as client:
        assert client.get("/api/quote/ETHUSD").status_code == 200
        assert client.post("/api/exec/order", json=ORDER, headers={"X-Idempotency-Key": key}).status_code == 201
    assert wait_until(lambda: _shadow_requests(sandbox, "/api/quote/{symbol}") > quotes, timeout=10)
    time.sleep(0.5)
    assert _shadow_requests(sandbox) == orders  # the order route is not on this target's list
    with pytest.raises(SandboxError, match=r"mirror_routes\[0\]\.path: expected "):
        sandbox.set_weight(0, mirror=True, mirror_routes=[{"methods": ["GET"], "path": "/x; }"}])
