"""The shadow stage's response comparison on the real sandbox: with the mirror on, nginx copies each
user request of the load generator's to the canary and to the stable version's secondary under the
router's request id; each service keeps its answers (`/__golive/responses`), and
`compare_responses` finds nothing beyond the noise in a healthy canary and the quote price of one
whose quotes are skewed. The secondary answers only the mirror's copies, on paper.

The fields every answer of an order or a page names its version in are ignored: the canary is
another version by design (the demo's page names it in its title, so its digest always differs).
"""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from golive.response_diff import compare_responses
from golive.settings import ShadowSettings
from sandbox.store import rows_by_track
from tasks.service import read_fills, read_responses
from tests.sandbox.helpers import counter, wait_until

pytestmark = pytest.mark.sandbox
WINDOW_SECONDS = 12.0
POLICY = ShadowSettings()  # the go-live's own thresholds: the tests judge as the shadow stage does
QUOTES = "GET /api/quote/{symbol}"
ORDER = {"symbol": "ETHUSD", "side": "buy", "quantity": 0.25}


@pytest.fixture(autouse=True)
def _secondary_running(sandbox):
    running = {part.name for part in sandbox.status() if part.healthy}
    assert "secondary" in running, f"the sandbox runs no secondary of the stable version (it runs {sorted(running)})"


def _answers(sandbox, track: str, since_ns: int) -> list[dict]:
    return read_responses.fn(sandbox.service_url(track), since_ns)["responses"]


def _compare_a_window(sandbox) -> tuple:
    """The three services' answers to the load generator's users over one window, compared."""
    since_ns = time.monotonic_ns()  # the machine's monotonic clock, which the services time their answers by
    time.sleep(WINDOW_SECONDS)
    time.sleep(2.5)  # the copies of the window's last requests are answered within their 2-s limit
    primary, secondary, candidate = (_answers(sandbox, track, since_ns) for track in ("stable", "secondary", "canary"))
    return compare_responses(primary, secondary, candidate, margin_pct=POLICY.response_margin_pct,
                             min_pairs=POLICY.response_min_pairs, alpha=POLICY.response_alpha,
                             ignored_fields=POLICY.response_ignored_fields), primary, secondary


def test_a_healthy_canary_differs_from_stable_no_more_than_stables_secondary_does(sandbox, canary_weight):
    sandbox.set_weight(0, mirror=True)
    report, primary, secondary = _compare_a_window(sandbox)
    print(report.summary())
    assert report.routes.get(QUOTES, 0) >= 100 and report.routes.get("POST /api/exec/order", 0) >= 100, report.routes
    assert report.findings == (), report.summary()
    assert secondary and all(answer["shadow"] for answer in secondary)
    pages = [answer for answer in primary if answer["route"] == "/app"]
    assert pages and all(page["json"] is None and page["content_type"] == "text/html" and page["bytes"] > 0
                         and len(page["sha256"]) == 64 for page in pages)  # a page is kept by its size and digest


def test_a_canary_whose_quotes_are_skewed_is_found_on_the_quote_price(sandbox, canary_weight):
    sandbox.set_faults("canary", {"quote_skew_pct": 1})
    sandbox.set_weight(0, mirror=True)
    report, _, _ = _compare_a_window(sandbox)
    print(report.summary())
    # The skew is found on the quote's price and nowhere else on its route. The page's bytes vary
    # with each instance's own draw of a third-party script, a difference the healthy test above
    # finds within the secondary's noise; on a busy machine one window can land past it.
    found = {(f.diff.route, f.diff.field): f for f in report.findings}
    assert [key for key in found if key[0] == QUOTES] == [(QUOTES, "body.price")], report.summary()
    finding = found[(QUOTES, "body.price")]
    assert finding.diff.raw_pct > 90 and finding.diff.noise_pct < 10
    # The skew itself, but for a copy answered in the market's next tick (its edge is the noise).
    skewed = [e for e in finding.examples if e["candidate"] == pytest.approx(e["primary"] * 1.01, rel=1e-4)]
    assert len(skewed) * 2 > len(finding.examples), finding.examples
    assert report.as_dict()["findings"][0]["examples"] == list(finding.examples)


def test_the_secondary_gets_copies_only_while_the_mirror_is_on(sandbox, canary_weight):
    sandbox.set_weight(0, mirror=True)
    mirrored_since = time.monotonic_ns()
    assert wait_until(lambda: len(_answers(sandbox, "secondary", mirrored_since)) >= 20, timeout=10)
    sandbox.set_weight(0)  # the mirror off
    time.sleep(2.5)  # copies sent before the reload are answered within their 2-s limit
    off_since = time.monotonic_ns()
    with httpx.Client(base_url=sandbox.router_url, timeout=10) as client:
        assert all(client.get("/api/quote/BTCUSD").status_code == 200 for _ in range(20))
    time.sleep(1.0)
    assert _answers(sandbox, "secondary", off_since) == []
    assert len(_answers(sandbox, "stable", off_since)) >= 20  # the users were served all along


def test_no_user_reaches_the_secondary_and_its_orders_are_paper_only(sandbox, canary_weight):
    sandbox.set_weight(0, mirror=True)
    since_ns = time.monotonic_ns()
    users_before = counter(sandbox, "secondary", "spark_http_requests_total", source="user")
    keys = [f"secondary-test-{uuid.uuid4().hex}" for _ in range(10)]
    with httpx.Client(base_url=sandbox.router_url, timeout=10) as client:
        answers = [client.post("/api/exec/order", json=ORDER, headers={"X-Idempotency-Key": key}) for key in keys]
        # The mirror's own locations are internal, the services' rings refused: none is a way in.
        assert client.get("/__golive/mirror-secondary").status_code == 404
        assert client.get("/__golive/responses").status_code == 404
        for pin in ("secondary", "always", "never"):
            assert client.get("/version", headers={"X-Canary": pin}).json()["track"] == "stable"
    assert {(a.status_code, a.json()["track"]) for a in answers} == {(201, "stable")}
    copies = {answer["request_id"] for answer in _answers(sandbox, "stable", since_ns)
              if answer["route"] == "/api/exec/order"}

    def paper_fills() -> list[dict]:
        return [fill for fill in read_fills.fn(sandbox.service_url("secondary"), since_ns)["fills"]
                if fill["request_id"] in copies]

    assert wait_until(lambda: len(paper_fills()) >= len(keys), timeout=10), "the secondary filled no copy"
    assert all(fill["paper"] for fill in paper_fills())
    assert all(answer["shadow"] for answer in _answers(sandbox, "secondary", since_ns))
    assert counter(sandbox, "secondary", "spark_http_requests_total", source="user") == users_before
    # Even a request that is no copy (only a process on this machine reaches its port) is filled on paper.
    direct_key = f"secondary-direct-{uuid.uuid4().hex}"
    direct = httpx.post(f"{sandbox.service_url('secondary')}/api/exec/order", json=ORDER, timeout=10,
                        headers={"X-Idempotency-Key": direct_key})
    assert (direct.status_code, direct.json()["status"], direct.json()["track"]) == (201, "paper_filled", "secondary")
    wait_until(lambda: rows_by_track(str(sandbox.workdir / "spark.sqlite"), keys)["outbox"].get("stable") == 10,
               timeout=10)
    rows = rows_by_track(str(sandbox.workdir / "spark.sqlite"), [*keys, direct_key])
    assert rows == {"orders": {"stable": len(keys)}, "outbox": {"stable": len(keys)}}


def test_reading_the_responses_checks_what_it_asks_and_what_comes_back(sandbox):
    secondary = sandbox.service_url("secondary")
    with pytest.raises(ValueError, match=r"^since_ns: expected a whole number of nanoseconds >= 0, got -5$"):
        read_responses.fn(secondary, -5)
    answer = read_responses.fn(secondary, 0)
    assert answer["clock"] == "monotonic_ns" and answer["now_ns"] > 0
    assert read_responses.fn(secondary, answer["now_ns"] + 10**12)["responses"] == []
    with pytest.raises(RuntimeError, match=r"/__golive/responses: HTTP 404: "):
        read_responses.fn(sandbox.router_url, 0)  # the router keeps the services' rings from users
