"""The war-room channel: each decision as one Prefect event and one message to the team's channel.

`announce` is the one entry point. The event (resource `golive.release.<release>`) lets Prefect
automations react; the message goes through the Prefect notification block named by
`settings.process.notify_block` (`slack-webhook/NAME`, `ms-teams-webhook/NAME`, `custom-webhook/NAME`).
A message the channel refuses is logged and recorded in the evidence; `announce` never raises
and waits for the channel at most SEND_TIMEOUT_SECONDS, so it never stops a rollback.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from golive import layout
from golive.settings import GoLiveSettings
from golive.validation import error_line, without_secrets
from golive.warroom import channel_message

__all__ = ["ALERTING_EVENTS", "EVENTS", "SEND_TIMEOUT_SECONDS", "announce", "event_name", "release_resource"]

# Decision → event. A stage's Rollback is the gate's word; `rolled-back` is the rollback done.
EVENTS = {
    "proceed": "golive.stage.proceed",
    "hold": "golive.stage.hold",
    "rollback": "golive.stage.rollback",
    "paused": "golive.stage.paused",
    "pause": "golive.stage.paused",  # the stage gate's own word for it
    "live": "golive.release.live",
    "rolled-back": "golive.rollback",
    "rollback-failed": "golive.rollback.failed",
    "first-night-hour": "golive.first-night.hour",
    "freeze": "golive.first-night.freeze",
    "budget-low": "golive.error-budget.low",  # the first night measured a budget under the line or soon gone
    "budget-freeze": "golive.error-budget.frozen",
    "budget-lift": "golive.error-budget.lifted",
}
# What a person must hear about at once (the automations `golive automations` installs).
ALERTING_EVENTS = ("golive.stage.rollback", "golive.rollback", "golive.rollback.failed", "golive.stage.paused")
# A webhook that hangs (or an API that does not answer the block's load) is given up on after this.
SEND_TIMEOUT_SECONDS = 20.0


def event_name(decision: str) -> str:
    return EVENTS.get(decision.lower(), f"golive.{decision.lower()}")


def release_resource(release: str) -> dict[str, str]:
    return {"prefect.resource.id": f"golive.release.{release}", "prefect.resource.name": f"v{release}",
            "golive.release": release}


def _logger() -> logging.Logger | logging.LoggerAdapter:
    from prefect import get_run_logger
    from prefect.exceptions import MissingContextError

    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("golive.notify")


def announce(settings: GoLiveSettings, decision: str, stage: int | None, reason: str, row: Mapping | None = None,
             details: Mapping[str, Any] | None = None) -> None:
    """Tell Prefect and the team: `decision` (proceed, hold, rollback, paused, live, rolled-back,
    rollback-failed, first-night-hour, freeze, budget-low, budget-freeze, budget-lift) at `stage` %,
    with its reason and war-room row. Never raises."""
    logger = _logger()
    try:
        message = channel_message(settings.release, decision, stage, reason, row)
        _emit(settings.release, decision, stage, reason, row, message, details)
    except Exception as exc:  # a broken announcement must not break the decision it announces
        logger.warning("war room: the %s event was not emitted: %s", decision, error_line(exc))
        return
    if not settings.process.notify_block:
        return
    failure = _send(settings.process.notify_block, f"golive v{settings.release}: {decision}", message)
    if failure is None:
        return
    logger.warning("war room: the message to %s failed: %s", settings.process.notify_block, failure)
    _record_failure(settings, decision, stage, message, failure, logger)


def _emit(release: str, decision: str, stage: int | None, reason: str, row: Mapping | None, message: str,
          details: Mapping[str, Any] | None) -> None:
    from prefect.events import emit_event

    payload = {"release": release, "decision": decision, "stage": stage, "reason": reason, "message": message,
               "row": {k: v for k, v in (row or {}).items() if k != "cells"}, **(details or {})}
    emit_event(event=event_name(decision), resource=release_resource(release), payload=payload)


def _send(block_name: str, subject: str, body: str) -> str | None:
    """Send through the named notification block in a thread of its own; the error as one line,
    or None when the channel took it."""
    outcome: dict[str, str | None] = {}

    def send() -> None:
        block = None
        try:
            from prefect.blocks.core import Block

            block = Block.load(block_name)
            with block.raise_on_failure():
                block.notify(body=body, subject=subject)
            outcome["error"] = None
        except Exception as exc:
            outcome["error"] = _failure_line(exc, block)

    worker = threading.Thread(target=send, name="golive-notify", daemon=True)
    worker.start()
    worker.join(SEND_TIMEOUT_SECONDS)
    if "error" not in outcome:
        return f"no answer within {SEND_TIMEOUT_SECONDS:g} s"
    return outcome["error"]


def _failure_line(exc: Exception, block: object) -> str:
    """The failure as one line without the block's secrets. A webhook's URL is built from them (a
    Slack URL is one), and the HTTP library quotes the URL it failed on: the answer's status is
    said instead."""
    import httpx

    if isinstance(exc, httpx.HTTPStatusError):
        answer = exc.response
        return f"HTTPStatusError: the channel answered HTTP {answer.status_code} {answer.reason_phrase}".rstrip()
    return without_secrets(error_line(exc), _secret_values(block))


def _secret_values(block: object) -> list[str]:
    """The values of a notification block's secret fields (a SecretStr, a SecretDict's strings)."""
    found: list[str] = []

    def collect(value: object) -> None:
        if isinstance(value, dict):
            for item in value.values():
                collect(item)
        elif isinstance(value, str) and value:
            found.append(value)

    for name in type(block).model_fields if block is not None else ():
        value = getattr(block, name, None)
        if hasattr(value, "get_secret_value"):
            collect(value.get_secret_value())
    return found


def _record_failure(settings: GoLiveSettings, decision: str, stage: int | None, message: str, failure: str,
                    logger) -> None:
    from tasks.evidence import ReleaseFolder

    at = time.time()
    try:
        ReleaseFolder.of(settings).record(layout.notification_failure(at, decision), {
            "at": at, "block": settings.process.notify_block, "decision": decision, "stage": stage, "error": failure,
            "message": message})
    except Exception as exc:
        logger.warning("war room: the failed message was not recorded either: %s", error_line(exc))
