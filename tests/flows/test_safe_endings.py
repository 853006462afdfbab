"""Every way a go-live ends leaves the traffic where its final state says, on the real sandbox."""

from __future__ import annotations

import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from golive import layout
from tests.flows.helpers import flow_settings

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
    """A router control API whose reads fail and whose writes reach the sandbox's real router."""

    upstream = ""

    def do_GET(self) -> None:  # noqa: N802 - the handler's protocol
        self.send_response(HTTPStatus.SERVICE_UNAVAILABLE)
        self.end_headers()

    def do_PUT(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        answer = httpx.put(f"{self.upstream}{self.path}", content=body, timeout=20,
                           headers={"Content-Type": "application/json"})
        self.send_response(answer.status_code)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(answer.content)

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
    settings = load_settings(sandbox.golive_settings(), release="1.4.0", policy={"rollback_budget_seconds": 2},
                             target={"router": {"kind": "sandbox", "control_url": unreadable_router}},
                             process={"evidence_root": str(tmp_path), "signing": signing_key})
    state = rollback(reason="p95 regression", stage=25, settings=settings, return_state=True)

    assert sandbox.weight() == 0  # written first, whatever the reads say
    assert (state.type.value, state.name) == ("FAILED", "RollbackFailed")
    assert "not verified" in state.message
    text = rollback_record(tmp_path / "v1.4.0")
    assert "outcome:        RollbackFailed" in text
    assert "weight after:   unverified (the router could not be read)" in text
    assert "set the canary weight to 0" in text and "could not read the weight back, unverified" in text
