"""The Prefect server app golive starts for itself: Prefect's own, answering again instead of 503
while its SQLite database is briefly locked.

A SQLite database takes one writer at a time. When a go-live's run states, task-run events and logs
meet in one instant, the server answers 503 to the request that lost, and Prefect's client waits
2 s (then 4, 8 …) before asking again: seconds of a go-live, or of a rollback, spent idle for a
lock held a few milliseconds. Asked again here, on the server, after a few milliseconds, the
request almost always goes through. It is the same request Prefect's client would send again (a
503 of this kind means the server's transaction did not commit), only sooner; one still refused
after `RETRY_DELAYS` goes to the client as the 503 it was.

    uvicorn --factory cli.prefect_server_app:create_app
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import asyncio

__all__ = ["RETRY_DELAYS", "AskAgainWhenBusy", "create_app"]

Message = MutableMapping[str, Any]
ASGIApp = Callable[[Message, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]

RETRY_DELAYS = (0.02, 0.05, 0.1, 0.2, 0.4, 0.8)  # 1.57 s in all, less than the client's first wait
_log = logging.getLogger("golive.prefect_server")


class AskAgainWhenBusy:
    """ASGI middleware: an HTTP request the app answers 503 is run again after each of `delays`;
    the answer that is not a 503 (or the last one) is the one sent. Only a 503's start is held
    back: any other answer, a streamed one included, goes out as the app sends it."""

    def __init__(self, app: ASGIApp, delays: tuple[float, ...] = RETRY_DELAYS):
        self.app = app
        self.delays = delays

    async def __call__(self, scope: Message, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = await _whole_body(receive)
        for attempt, delay in enumerate((*self.delays, None)):
            busy = False

            async def send_unless_busy(message: Message, last: bool = delay is None) -> None:
                nonlocal busy
                if message["type"] == "http.response.start" and message["status"] == 503 and not last:
                    busy = True
                if not busy:
                    await send(message)

            try:
                # Starlette's mounts rewrite the scope they are given: each try starts from a copy.
                await self.app(dict(scope), _replay(body, receive), send_unless_busy)
            except Exception:
                if not busy:  # Starlette raises again what its handler answered 503: that one is ours to drop
                    raise
            if not busy:
                if attempt:
                    _log.info("%s %s went through when asked again, %d time(s)", scope["method"], scope["path"],
                              attempt)
                return
            await asyncio.sleep(delay)


async def _whole_body(receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client left before its body was whole
            return b"".join(chunks)
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive):
    """A `receive` that gives the body once, then waits on the real one (a disconnect)."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def create_app():
    """Prefect's server app (API, with the UI where Prefect's settings enable it), wrapped."""
    from prefect.server.api.server import create_app as prefect_app

    return AskAgainWhenBusy(prefect_app())
