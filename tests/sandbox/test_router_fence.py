"""The sandbox router's fence, on the real control API and nginx: a write older than the newest
generation is refused and changes nothing, whoever sent it and whenever it arrives."""

from __future__ import annotations

import time

import httpx
import pytest

from golive.fencing import FenceHolder
from sandbox.router import load_fence
from tasks.router_base import Deadline, RouterError, RouterFenced
from tasks.sandbox_router import SandboxRouter

pytestmark = pytest.mark.sandbox

GO_LIVE = FenceHolder(kind="go-live", name="go-live v1.4.0", run="run-a")
ROLLBACK = FenceHolder(kind="rollback", name="rollback v1.4.0 (crashed)", run="run-r")


@pytest.fixture
def router(sandbox):
    try:
        yield SandboxRouter(sandbox.control_url)
    finally:
        sandbox.clear_router_faults()
        for snippet in (sandbox.workdir / "nginx" / "conf.d").glob("*.conf"):
            snippet.unlink()
        sandbox.set_weight(0)


def test_a_paused_writer_that_wakes_after_a_rollback_is_refused(sandbox, router):
    mine = router.take_generation(GO_LIVE)
    assert router.set_weight(5, mine.generation) == 5
    newer = router.take_generation(ROLLBACK)  # the rollback, while the go-live is paused
    assert newer.generation == mine.generation + 1
    assert router.set_weight(0, newer.generation) == 0

    with pytest.raises(RouterFenced) as refused:
        router.set_weight(25, mine.generation)  # the go-live wakes
    assert refused.value.fence.generation == newer.generation
    assert refused.value.fence.holder.name == "rollback v1.4.0 (crashed)"
    assert f"generation {mine.generation} is fenced" in str(refused.value)
    assert sandbox.weight() == 0  # read from nginx's workers
    state = router.read()
    assert (state.weight, state.fence.generation, state.fence.holder.run) == (0, newer.generation, "run-r")
    first_line = (sandbox.workdir / "nginx" / "nginx.conf").read_text().splitlines()[0]
    assert first_line.endswith(f"canary weight 0, fencing generation {newer.generation}")


def test_a_conditional_take_is_refused_once_the_target_moved_on(router):
    seen = router.take_generation(GO_LIVE).generation
    router.take_generation(ROLLBACK)
    with pytest.raises(RouterFenced, match=f"moved on from generation {seen}"):
        router.take_generation(ROLLBACK, if_generation=seen)
    assert router.take_generation(ROLLBACK, if_generation=seen + 1).generation == seen + 2


def test_a_write_without_a_generation_or_with_a_bad_holder_is_refused_and_changes_nothing(sandbox, router):
    before = router.read()
    answer = httpx.put(f"{sandbox.control_url}/weight", json={"weight": 50}, timeout=10)
    assert (answer.status_code, answer.json()["error"]) == (422, "generation: expected a whole number from 0")
    answer = httpx.post(f"{sandbox.control_url}/fence", json={"holder": {"kind": "root", "name": "x"}}, timeout=10)
    assert answer.status_code == 422 and answer.json()["error"].startswith("holder.kind: expected one of")
    assert router.read() == before


def test_the_control_api_refuses_and_answers_late_when_told(sandbox, router):
    fence = router.take_generation(GO_LIVE)
    sandbox.set_router_faults(refuse=2)
    for _ in range(2):
        with pytest.raises(RouterError, match="HTTP 503 refused by the router's fault switch"):
            router.set_weight(1, fence.generation)
    assert router.set_weight(1, fence.generation) == 1

    sandbox.set_router_faults(delay_seconds=3)
    started = time.monotonic()
    with pytest.raises(RouterError, match="does not answer"):
        SandboxRouter(sandbox.control_url, deadline=Deadline.after(0.5)).set_weight(5, fence.generation)
    assert time.monotonic() - started < 2.5  # the budget cut the request short, not the router's answer


def test_a_broken_snippet_fails_every_reload_and_the_weight_stays(sandbox, router):
    fence = router.take_generation(GO_LIVE)
    assert router.set_weight(5, fence.generation) == 5
    (sandbox.workdir / "nginx" / "conf.d" / "broken.conf").write_text("this is not nginx\n")
    with pytest.raises(RouterError, match="nginx reload failed"):
        router.set_weight(25, fence.generation)
    assert sandbox.weight() == 5
    (sandbox.workdir / "nginx" / "conf.d" / "broken.conf").unlink()
    assert router.set_weight(25, fence.generation) == 25


def test_the_fence_is_read_back_from_its_folder_and_a_missing_or_bad_one_is_generation_0(tmp_path):
    assert load_fence(tmp_path) == {"generation": 0, "holder": None}
    (tmp_path / "fence.json").write_text('{"generation": "7"}')
    assert load_fence(tmp_path)["generation"] == 0
    (tmp_path / "fence.json").write_text('{"generation": 7, "holder": {"kind": "go-live", "name": "x"}}')
    assert load_fence(tmp_path) == {"generation": 7, "holder": {"kind": "go-live", "name": "x"}}


def test_a_write_that_lands_late_after_a_newer_fence_is_refused_there(sandbox, router):
    stale = router.take_generation(GO_LIVE)
    sandbox.set_router_faults(delay_seconds=2)
    with pytest.raises(RouterError, match="does not answer"):  # the writer gives up; its request is in flight
        SandboxRouter(sandbox.control_url, deadline=Deadline.after(0.3)).set_weight(25, stale.generation)
    sandbox.clear_router_faults()
    newer = router.take_generation(ROLLBACK)
    assert router.set_weight(0, newer.generation) == 0
    time.sleep(2.5)  # the late write arrives at the router now, and is checked against the newest fence
    assert sandbox.weight() == 0 and router.read().fence.generation == newer.generation
