"""The war-room channel: a real webhook receiver on a loopback port, Prefect's custom-webhook
block, and the events read back from the test server."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prefect import flow

from golive import layout
from golive.settings import load_settings
from tasks import notify

ROW = {"Time": "10:00:07", "Stage": "5%", "p95": 141.0, "5xx%": 4.2, "Decision": "Rollback",
       "cells": {"5xx%": {"value": 4.2, "threshold": "≤ 1", "verdict": "breach",
                          "evidence": "42 events in 1000 requests",
                          "detail": "over <= 1 %"}}}


class Receiver:
    """An HTTP server that records every request's path and JSON body and answers `status`."""

    def __init__(self, status: int = 200, delay: float = 0.0):
        self.got: list[dict] = []
        self.status, self.delay = status, delay
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                time.sleep(receiver.delay)
                receiver.got.append({"path": self.path, "json": json.loads(body or b"null")})
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    running = Receiver()
    yield running
    running.close()


def _webhook_block(name: str, url: str, secrets: dict | None = None) -> str:
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    CustomWebhookNotificationBlock(name=name, url=url, json_data={"text": "{{body}}", "title": "{{subject}}"},
                                   secrets=secrets or {}).save(name, overwrite=True)
    return f"custom-webhook/{name}"


def _settings(tmp_path, block: str | None):
    return load_settings({"release": "1.4.0", "process": {"evidence_root": str(tmp_path / "evidence"),
                                                          "notify_block": block}})


def _events(name: str, release: str, reason: str | None = None) -> list:
    from prefect import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter, EventResourceFilter
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all()
    wanted = EventFilter(occurred=EventOccurredFilter(since=datetime.now(timezone.utc) - timedelta(minutes=10)),
                         event=EventNameFilter(name=[name]),
                         resource=EventResourceFilter(id=[f"golive.release.{release}"]))
    deadline = time.monotonic() + 60
    with get_client(sync_client=True) as client:
        while True:
            found = client.read_events(filter=wanted, limit=50).events  # the server takes at most 50
            # Other tests' go-lives on this Prefect server announce too: theirs are told apart by reason.
            found = [e for e in found if reason is None or e.payload.get("reason") == reason]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.3)


@flow
def _decide(settings, decision: str, stage: int | None, reason: str, row: dict | None) -> str:
    notify.announce(settings, decision, stage, reason, row)
    return "announced"


def test_a_rollback_reaches_the_channel_and_is_an_event(tmp_path, receiver):
    settings = _settings(tmp_path, _webhook_block("war-room", receiver.url))
    assert _decide(settings, "rollback", 5, "rollback: http_5xx_pct-breach", ROW) == "announced"

    (got,) = receiver.got
    assert got["path"] == "/hook" and got["json"]["title"] == "golive v1.4.0: rollback"
    lines = got["json"]["text"].splitlines()
    assert lines[0] == "golive v1.4.0 at 5%: ROLLBACK"
    assert "5xx% 4.20 / ≤ 1 breach" in lines[1] and lines[1].endswith("Decision Rollback")
    assert lines[2] == "reason: rollback: http_5xx_pct-breach"

    (event,) = _events("golive.stage.rollback", "1.4.0", reason="rollback: http_5xx_pct-breach")
    assert event.resource.id == "golive.release.1.4.0"
    assert event.payload["release"] == "1.4.0" and event.payload["stage"] == 5
    assert event.payload["reason"] == "rollback: http_5xx_pct-breach"
    assert event.payload["row"]["Decision"] == "Rollback"
    assert {r.role for r in event.related} >= {"flow-run", "flow"}  # the run that decided


def test_without_a_block_the_event_is_still_emitted(tmp_path):
    notify.announce(_settings(tmp_path, None), "live", None, "5/5 stages green", None)
    (event,) = _events("golive.release.live", "1.4.0", reason="5/5 stages green")
    assert event.payload["stage"] is None
    assert event.payload["message"] == "golive v1.4.0: LIVE\nreason: 5/5 stages green"


def _failures(tmp_path) -> list[dict]:
    folder = tmp_path / "evidence" / "v1.4.0"
    return [json.loads(p.read_text()) for p in sorted(folder.glob(layout.NOTIFICATION_FAILURES))]


def test_a_refused_message_is_recorded_and_the_decision_goes_on_without_the_webhooks_secrets(tmp_path, caplog):
    refusing = Receiver(status=500)
    secrets = {"channel": "T0-B0-s3cretpath", "token": "s3cret t0ken/+"}  # the URL is made of them
    try:
        block = _webhook_block("war-room-down", refusing.url + "/{{channel}}?token={{token}}", secrets)
        settings = _settings(tmp_path, block)
        assert _decide(settings, "rollback", 25, "rollback: api_p95_ms-breach", ROW) == "announced"
    finally:
        refusing.close()
    assert refusing.got[0]["path"].startswith("/hook/T0-B0-s3cretpath?token=")  # the secrets were sent
    (failure,) = _failures(tmp_path)
    assert failure["decision"] == "rollback" and failure["stage"] == 25
    assert failure["error"] == "HTTPStatusError: the channel answered HTTP 500 Internal Server Error"
    assert failure["message"].startswith("golive v1.4.0 at 25%: ROLLBACK")
    logged = [r.getMessage() for r in caplog.records if "war room" in r.getMessage()]
    assert logged and not [line for line in logged if "s3cret" in line]


def test_a_missing_block_or_a_silent_channel_is_recorded(tmp_path, monkeypatch):
    notify.announce(_settings(tmp_path, "custom-webhook/nobody-made-this"), "paused", 50, "too little traffic")
    silent = Receiver(delay=10)
    monkeypatch.setattr(notify, "SEND_TIMEOUT_SECONDS", 0.5)
    started = time.monotonic()
    try:
        notify.announce(_settings(tmp_path, _webhook_block("war-room-slow", silent.url)), "hold", 50, "hold: 7/8")
        assert time.monotonic() - started < 8  # the receiver answers only after 10 s
    finally:
        silent.close()
    missing, slow = _failures(tmp_path)
    assert missing["decision"] == "paused" and "nobody-made-this" in missing["error"]
    assert slow["decision"] == "hold" and slow["error"] == "no answer within 0.5 s"


def test_the_automation_tells_the_channel_of_a_rollback(tmp_path, receiver, capsys):
    from prefect import get_client

    from cli.main import main
    from cli.operator_commands import NOTIFY_AUTOMATION

    block = _webhook_block("war-room-automation", receiver.url)
    assert main(["automations", "apply", "--notify-block", block]) == 0
    assert main(["automations", "apply", "--notify-block", block]) == 0  # again: updated, not doubled
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["automation"] == NOTIFY_AUTOMATION
    with get_client(sync_client=True) as client:
        (automation,) = client.read_automations_by_name(NOTIFY_AUTOMATION)
    assert automation.trigger.expect == set(notify.ALERTING_EVENTS)
    assert automation.trigger.match.matches_every_resource_of_kind("golive.release")

    notify.announce(_settings(tmp_path, None), "rollback", 50, "rollback: api_p95_ms-breach", ROW)
    deadline = time.monotonic() + 90
    while not receiver.got and time.monotonic() < deadline:
        time.sleep(0.5)
    (got,) = receiver.got
    assert got["json"]["title"] == "golive v1.4.0: golive.stage.rollback"
    assert got["json"]["text"].startswith("golive v1.4.0 at 50%: ROLLBACK")


def test_a_failure_that_quotes_the_webhooks_url_says_it_without_the_secrets():
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    block = CustomWebhookNotificationBlock(name="n", url="https://hooks.example/{{channel}}?token={{token}}",
                                           secrets={"channel": "T0-B0-s3cretpath", "token": "s3cret t0ken/+"})
    said = notify._failure_line(RuntimeError(
        "gave up on https://user:pw@hooks.example/T0-B0-s3cretpath?token=s3cret%20t0ken%2F%2B"), block)
    assert said == "RuntimeError: gave up on https://hooks.example/***?token=***"
    assert notify._failure_line(ValueError("no such block"), None) == "ValueError: no such block"
