"""The wrapper around a user's application: golive's two paths, an empty /metrics where it has none,
and faults that sit inside a FastAPI app's own middleware, so its own metrics see them; an injected
error is routed first, so that an exporter which counts only routed requests (starlette-exporter) sees it."""

from __future__ import annotations

import httpx
import pytest

from sandbox.app_wrapper import AppFaults, WrappedApp, app_command, load_app, loadgen_args, with_faults


def _client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app")


def _wsgi_hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/html" if environ["PATH_INFO"] == "/metrics" else "text/plain")])
    return [b"hello"]


@pytest.mark.asyncio
async def test_golive_paths_are_the_wrappers_and_a_missing_metrics_is_empty():
    faults = AppFaults()
    app = WrappedApp(with_faults(load_app("tests.sandbox.test_app_wrapper:_wsgi_hello"), faults), "canary", "1.4.0")
    async with _client(app) as client:
        assert (await client.get("/version")).json() == {"version": "1.4.0", "track": "canary"}
        assert (await client.get("/healthz")).text == "ok"
        metrics = await client.get("/metrics")
        assert (metrics.status_code, metrics.text) == (200, "")
        answer = await client.get("/anything")
        assert answer.text == "hello" and answer.headers["x-spark-version"] == "1.4.0"


@pytest.mark.asyncio
async def test_faults_of_a_fastapi_app_sit_inside_its_instrumentation():
    from fastapi import FastAPI
    from prometheus_client import CollectorRegistry
    from prometheus_fastapi_instrumentator import Instrumentator, metrics

    api = FastAPI()

    @api.get("/items")
    async def items() -> dict:
        return {"items": []}

    registry = CollectorRegistry()
    Instrumentator(registry=registry).add(metrics.default(registry=registry)).instrument(api).expose(api)
    faults = AppFaults()
    app = WrappedApp(with_faults(api, faults), "canary", "1.4.0")
    faults.update({"error_rate": 1})
    async with _client(app) as client, api.router.lifespan_context(api):
        assert (await client.get("/items")).status_code == 500
        assert (await client.get("/metrics")).status_code == 200  # never faulted
    failed = registry.get_sample_value("http_requests_total", {"handler": "/items", "method": "GET", "status": "5xx"})
    assert failed == 1  # the instrumentator counted the injected 500: the fault is inside it


def _starlette_exporter_count(app_name: str, path: str, status: str) -> float:
    from prometheus_client import REGISTRY

    labels = {"app_name": app_name, "method": "GET", "path": path, "status_code": status}
    return REGISTRY.get_sample_value("starlette_requests_total", labels) or 0.0


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["starlette", "fastapi-included-router"])
async def test_an_injected_error_is_counted_by_starlette_exporter_under_its_route(kind):
    from starlette_exporter import PrometheusMiddleware

    # starlette-exporter keeps its metrics in the process' default registry: a name of this test's own.
    app_name = f"wrapper-test-{kind}"
    if kind == "starlette":
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        async def item(request):
            return JSONResponse({"item_id": request.path_params["item_id"]})

        api = Starlette(routes=[Route("/items/{item_id:int}", item)])
        route = "/items/{item_id:int}"
    else:
        from fastapi import APIRouter, FastAPI

        api, items = FastAPI(), APIRouter(prefix="/v1")

        @items.get("/items/{item_id}")
        async def item(item_id: int) -> dict:
            return {"item_id": item_id}

        api.include_router(items)
        route = "/v1/items/{item_id}"
    api.add_middleware(PrometheusMiddleware, app_name=app_name)
    faults = AppFaults()
    app = WrappedApp(with_faults(api, faults), "canary", "1.4.0")
    path = route.replace("{item_id:int}", "7").replace("{item_id}", "7")
    async with _client(app) as client:
        assert (await client.get(path)).status_code == 200
        faults.update({"error_rate": 1})
        assert (await client.get(path)).status_code == 500
        assert (await client.get(path)).text == "injected fault: error_rate"
        assert (await client.get("/nowhere")).status_code == 500
    assert _starlette_exporter_count(app_name, route, "200") == 1
    assert _starlette_exporter_count(app_name, route, "500") == 2
    assert _starlette_exporter_count(app_name, "/nowhere", "500") == 0  # unrouted, as a real 404 is


def test_a_fault_of_another_kind_or_out_of_range_changes_nothing():
    faults = AppFaults()
    faults.update({"latency_ms": "250"})
    with pytest.raises(ValueError, match="ws_stall: not a fault of a wrapped application"):
        faults.update({"error_rate": 0.5, "ws_stall": 1})
    with pytest.raises(ValueError, match=r"error_rate: expected a number in \[0, 1\], got 2"):
        faults.update({"error_rate": 2})
    assert faults.active() == {"latency_ms": 250.0}


def test_an_unloadable_app_is_one_line():
    with pytest.raises(SystemExit, match="--app: expected module:attribute"):
        load_app("pypiserver")
    with pytest.raises(SystemExit, match="--app nowhere_at_all:app: No module named 'nowhere_at_all'"):
        load_app("nowhere_at_all:app")


def test_the_supervisor_runs_the_wrapper_only_for_an_app():
    assert app_command({}, "py", "canary", "1.4.0", 1, 2) is None and loadgen_args({}) == []
    app = {"spec": "pypiserver:app", "factory": True, "paths": ["/", "/simple/"], "path": "/src"}
    assert app_command({"app": app}, "py", "canary", "1.4.0", 1, 2) == [
        "py", "-m", "sandbox.app_wrapper", "--app", "pypiserver:app", "--track", "canary", "--version", "1.4.0",
        "--port", "1", "--admin-port", "2", "--factory", "--app-path", "/src"]
    assert loadgen_args({"app": app}) == ["--paths", "/,/simple/"]
