"""Every way a go-live ends leaves the traffic where its final state says, on the real sandbox."""

from __future__ import annotations

import json
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from golive import layout
from tests.flows.helpers import EvidenceWatcher, flow_settings

pytestmark = pytest.mark.sandbox


def run_go_live(settings: dict):
    from flows.go_live import go_live

    return go_live(settings["release"], settings=settings, return_state=True)


def rollback_record(folder: Path) -> str:
    (record,) = folder.glob(layout.ROLLBACKS)
    return record.read_text()


def test_an_error_after_the_weight_is_raised_rolls_back_and_names_it(sandbox, canary_weight, signing_key, tmp_path,
                                                                     monkeypatch):
    import flows.canary_stage

    def prometheus_fails(*_args, **_kwargs):
        raise RuntimeError("Prometheus answered 500:\nquery processing would load too many samples")

    monkeypatch.setattr(flows.canary_stage, "observe_share", prometheus_fails)
    settings = flow_settings(sandbox, signing_key, tmp_path, [25, 100])
    state = run_go_live(settings)

    assert (state.type.value, state.name) == ("FAILED", "RolledBack")
    assert "orchestrator-error" in state.message and "0 % on the canary" in state.message
    assert sandbox.weight() == 0
    text = rollback_record(tmp_path / "v1.4.0")
    assert "triggers:       orchestrator-error" in text
    assert ("the go-live failed: RuntimeError: Prometheus answered 500: query processing would load too many "
            "samples") in text


class _ReadsFail(BaseHTTPRequestHandler):
    """A router control API whose reads fail and whose writes (the fence, the weight) reach the
    sandbox's real router."""

    upstream = ""

    def do_GET(self) -> None:  # noqa: N802 - the handler's protocol
        self.send_response(HTTPStatus.SERVICE_UNAVAILABLE)
        self.end_headers()

    def do_PUT(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        answer = httpx.request(self.command, f"{self.upstream}{self.path}", content=body, timeout=20,
                               headers={"Content-Type": "application/json"})
        self.send_response(answer.status_code)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(answer.content)

    do_POST = do_PUT  # noqa: N815 - taking the fence is a write too

    def log_message(self, *_args) -> None:
        pass


@pytest.fixture
def unreadable_router(sandbox):
    handler = type("Handler", (_ReadsFail,), {"upstream": sandbox.control_url.rstrip("/")})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_router_that_cannot_be_read_still_gets_weight_zero_and_says_unverified(
        sandbox, canary_weight, unreadable_router, signing_key, tmp_path):
    from flows.rollback import rollback
    from golive.settings import load_settings

    canary_weight(25)
    settings = load_settings(sandbox.golive_settings(), release="1.4.0", policy={"rollback_budget_seconds": 6},
                             target={"router": {"kind": "sandbox", "control_url": unreadable_router}},
                             process={"evidence_root": str(tmp_path), "signing": signing_key})
    state = rollback(reason="p95 regression", stage=25, settings=settings, return_state=True)

    assert sandbox.weight() == 0  # written first, whatever the reads say
    assert (state.type.value, state.name) == ("FAILED", "RollbackFailed")
    assert "not verified" in state.message
    text = rollback_record(tmp_path / "v1.4.0")
    assert "outcome:        RollbackFailed" in text
    assert "weight after:   unverified (the router could not be read)" in text
    assert "took the traffic target: generation" in text
    assert "set the canary weight to 0" in text and "could not read the weight back, unverified" in text


def test_a_single_interval_breach_that_held_and_re_measured_green_goes_live(sandbox, canary_weight, signing_key,
                                                                           tmp_path):
    interval = 3.0
    # A hold budget of six re-measures: on a busy machine a starved canary's event loop can hold
    # a re-measure or two on its own, which is not what this test is about.
    settings = flow_settings(sandbox, signing_key, tmp_path, [25, 100], interval=interval,
                             policy={"dwell_seconds": 8 * interval, "hold_budget_seconds": 18 * interval})
    folder = tmp_path / "v1.4.0"
    fifth_look = folder / layout.judge_look(25, 1, 5)

    def slow_canary_in_the_last_interval() -> None:
        # Half the window's last interval, whole inside it (the scrapes included) whatever the
        # watcher's delay: that interval's p95 near 400 ms, over 200 ms beyond its noise, and the
        # one interval over: a breach to hold on, not a sustained one to roll back.
        window_start = json.loads(fifth_look.read_text())["window"][0]
        time.sleep(max(0.0, window_start + 7 * interval + 0.3 - time.time()))
        sandbox.set_faults("canary", {"latency_ms": 250})
        time.sleep(interval / 2)
        sandbox.clear_faults("canary")

    with EvidenceWatcher(folder, lambda _folder: fifth_look.exists(), slow_canary_in_the_last_interval):
        state = run_go_live(settings)

    # A window short of traffic may grow first (Extend); then the spike's Hold, then Proceed.
    judged = [d for d in json.loads((folder / layout.stage_record(25)).read_text())["decisions"]
              if d["decision"] != "extend"]
    decisions = [d["decision"] for d in judged]
    assert decisions[0] == "hold" and set(decisions[1:-1]) <= {"hold"} and decisions[-1] == "proceed", decisions
    assert judged[0]["signals"]["api_p95_ms"]["verdict"] == "breach"
    rows = [r["Decision"] for r in json.loads((folder / layout.WAR_ROOM_JSON).read_text())
            if r["Stage"] == "25%" and r["Decision"] != "Extend"]
    assert rows == [d.capitalize() for d in decisions]  # the war room shows the Hold and the Proceed
    assert (state.type.value, state.name) == ("COMPLETED", "Live")
    assert sandbox.weight() == 100
    # The spike's breach comes first; on a busy machine a re-measure may hold on another one.
    criteria = json.loads((folder / layout.SUCCESS_CRITERIA).read_text())
    assert criteria["transient_breaches"][0] == "25%:api_p95_ms"
    assert all(c["ok"] for name, c in criteria.items() if name != "transient_breaches")
    assert f"transient breaches={len(criteria['transient_breaches'])} (25%:api_p95_ms" in state.message
    assert "held, re-measured green" in state.message


def test_golive_rollback_that_cannot_reach_the_router_ends_rollback_failed_in_one_line(
        sandbox, signing_key, tmp_path, capsys):
    import socket

    import yaml

    from cli.main import main

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    config = tmp_path / "golive.yaml"
    config.write_text(yaml.safe_dump({**sandbox.golive_settings(), "policy": {"rollback_budget_seconds": 2},
                                      "target": {"router": {"kind": "sandbox", "control_url": f"http://127.0.0.1:{port}"}},
                                      "process": {"evidence_root": str(tmp_path), "signing": signing_key}}))

    code = main(["rollback", "--release", "1.4.0", "--reason", "router gone", "--config", str(config)])

    out = capsys.readouterr().out.splitlines()
    assert code == 1
    assert out[0].startswith("RollbackFailed: ROLLBACK FAILED: weight 0 not verified within 2 s")
    assert out[1].startswith("recorded in ") and "rollback_" in out[1]
    assert "outcome:        RollbackFailed" in rollback_record(tmp_path / "v1.4.0")
