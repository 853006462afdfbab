"""A small FastAPI service instrumented the way its users do it, by prometheus-fastapi-instrumentator
with its defaults: the sandbox serves it as both tracks (`--app tests.sandbox.apps.instrumented_fastapi:app`)
and golive judges it on the `fastapi-instrumentator` pack. Nothing in it knows golive or tracks."""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_fastapi_instrumentator import Instrumentator

app = FastAPI()


@app.get("/items/{item_id}")
async def read_item(item_id: int) -> dict:
    return {"item_id": item_id, "name": f"item {item_id}"}


@app.get("/")
async def index() -> dict:
    return {"service": "items"}


Instrumentator().instrument(app).expose(app)
