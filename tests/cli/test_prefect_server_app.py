"""The temporary Prefect server's app asks again, on the server, what its database refused as busy."""

from __future__ import annotations

import json

import httpx
import pytest

from cli.prefect_server_app import AskAgainWhenBusy


class FlakyApp:
    """An ASGI app that answers 503 (then raises, as Starlette's error middleware does) the first
    `busy` times, then echoes the request body; it records the bodies it was given."""

    def __init__(self, busy: int):
        self.busy = busy
        self.bodies: list[bytes] = []

    async def __call__(self, scope, receive, send):
        assert scope["path"] == "/api/flow_runs/"
        scope["path"] = "/flow_runs/"  # as a mount rewrites it
        message = await receive()
        self.bodies.append(message["body"])
        if len(self.bodies) <= self.busy:
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b'{"exception_message": "Service Unavailable"}'})
            raise RuntimeError("database is locked")
        await send({"type": "http.response.start", "status": 201, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": message["body"]})


def _post(app, payload: dict, raise_app_exceptions: bool = False) -> httpx.Response:
    """POST through the app as uvicorn serves it: an exception raised after the answer was sent
    is logged there, not the client's (`raise_app_exceptions` shows it to the test instead)."""
    async def go():
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
        async with httpx.AsyncClient(transport=transport, base_url="http://server") as client:
            return await client.post("/api/flow_runs/", json=payload)

    import asyncio

    return asyncio.run(go())


def test_a_request_refused_as_busy_is_asked_again_with_its_body_and_the_client_sees_the_answer():
    app = FlakyApp(busy=2)
    response = _post(AskAgainWhenBusy(app, delays=(0.001, 0.001, 0.001)), {"name": "stage 25%"})
    assert response.status_code == 201
    assert response.json() == {"name": "stage 25%"}
    assert [json.loads(b) for b in app.bodies] == [{"name": "stage 25%"}] * 3


def test_a_request_still_busy_after_every_delay_reaches_the_client_as_its_503():
    app = FlakyApp(busy=10)
    response = _post(AskAgainWhenBusy(app, delays=(0.001, 0.001)), {"name": "x"})
    assert response.status_code == 503
    assert len(app.bodies) == 3  # the first try and one per delay


def test_an_error_that_is_not_a_503_is_not_hidden():
    async def broken(scope, receive, send):
        await receive()
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        _post(AskAgainWhenBusy(broken, delays=(0.001,)), {}, raise_app_exceptions=True)
