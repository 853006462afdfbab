"""A small Starlette service instrumented the way its users do it, by starlette-exporter with its
defaults (`PrometheusMiddleware` and `handle_metrics` on /metrics: the `starlette_request*` series):
the sandbox serves it as both tracks (`--app tests.sandbox.apps.starlette_exporter_app:app`) and golive
judges it on the `starlette-exporter` pack. Nothing in it knows golive or tracks."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette_exporter import PrometheusMiddleware, handle_metrics


async def read_item(request: Request) -> JSONResponse:
    item_id = request.path_params["item_id"]
    return JSONResponse({"item_id": item_id, "name": f"item {item_id}"})


async def index(_request: Request) -> JSONResponse:
    return JSONResponse({"service": "items"})


app = Starlette(routes=[Route("/items/{item_id:int}", read_item), Route("/", index),
                        Route("/metrics", handle_metrics)],
                middleware=[Middleware(PrometheusMiddleware)])
