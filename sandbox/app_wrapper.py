"""Any ASGI or WSGI application as one track of the sandbox, its code untouched.

    python -m sandbox.app_wrapper --app pypiserver:app --factory --track canary --version 1.4.0 \\
        --port 18082 --admin-port 18092

The application is imported (`module:attribute`; with `--factory` the attribute is called with
no arguments to make it), served by uvicorn (a WSGI application through a2wsgi), and wrapped by
a thin ASGI layer that adds what the sandbox asks of a track and nothing else:

- `GET /version` (`{"version": …, "track": …}`) and `GET /healthz`, for golive's version and
  health checks; these two paths are the wrapper's, the application never sees them; and on every
  answer the headers the demo service sends too (`x-spark-track`, `x-spark-version`), by which the
  drill sees which version served it;
- the two faults a wrapped application can be given, on every other request but `/metrics`:
  `latency_ms` (the request waits this long before the application's handlers see it) and
  `error_rate` (this share of requests is answered 500, the handlers never called), set on the
  admin port as the demo service's are (`GET|POST|DELETE /faults`), so `golive sandbox fault`
  and the chaos drills work alike. A defect is injected here, never by editing the application.
  In a Starlette or FastAPI application the fault is added as its innermost middleware, between
  its own middleware (an exporter's) and its routes, where a defect of its handlers would be, so
  its own metrics see it; an injected error is answered after the route is chosen and written into
  the request as the application's router writes it (starlette-exporter counts only a request its
  router routed). Around any other application it is outermost, seen by the router only.

Metrics are the application's own (its `/metrics`) and the router's; where the application has
no metrics there (an answer other than 200 in Prometheus' text format: a 404, a page of its own)
the wrapper answers an empty exposition, so its scrape target is up with no series.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import random
import sys

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Match, Route

from sandbox.faults import FAULTS, checked_faults
from sandbox.service import serve_with_admin

__all__ = ["AppFaults", "FaultInjector", "WrappedApp", "app_command", "load_app", "loadgen_args", "main",
           "select_route", "with_faults"]

WRAPPER_FAULTS = ("latency_ms", "error_rate")
UNFAULTED_PATHS = ("/metrics", "/version", "/healthz")
EMPTY_EXPOSITION = "text/plain; version=0.0.4; charset=utf-8"
METRICS_CONTENT_TYPES = (b"text/plain", b"application/openmetrics-text")


class AppFaults:
    """The wrapper's faults, checked as the demo's are: a bad request changes nothing."""

    def __init__(self) -> None:
        self.values = {name: 0.0 for name in WRAPPER_FAULTS}

    def update(self, values: dict) -> None:
        self.values.update(checked_faults(values, tuple(WRAPPER_FAULTS), "not a fault of a wrapped application"))

    def clear(self) -> None:
        self.values = {name: 0.0 for name in WRAPPER_FAULTS}

    def active(self) -> dict[str, float]:
        return {name: value for name, value in self.values.items() if value}


def load_app(spec: str, factory: bool = False):
    """The ASGI application `module:attribute` names (made by calling it, with `factory`); a WSGI
    one is put behind a2wsgi. SystemExit with one line when it cannot be loaded."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise SystemExit(f"app_wrapper: --app: expected module:attribute, got {spec!r}")
    try:
        target = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise SystemExit(f"app_wrapper: --app {spec}: {exc}") from None
    app = target() if factory else target
    if not callable(app):
        raise SystemExit(f"app_wrapper: --app {spec}: not an application (not callable)")
    call = app if inspect.isfunction(app) or inspect.ismethod(app) else getattr(app, "__call__", app)
    if inspect.iscoroutinefunction(call):
        return app
    from a2wsgi import WSGIMiddleware

    return WSGIMiddleware(app)


class FaultInjector:
    """ASGI middleware: the faults in force, on every HTTP request but UNFAULTED_PATHS. Given the
    application's `router`, an injected error is the answer of the route that router would choose."""

    def __init__(self, app, faults: AppFaults, rng: random.Random | None = None, router=None):
        self.app, self.faults, self.random, self.router = app, faults, rng or random.Random(), router

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"] not in UNFAULTED_PATHS:
            faults = self.faults.values
            if faults["latency_ms"]:
                await asyncio.sleep(faults["latency_ms"] / 1000)
            if faults["error_rate"] and self.random.random() < faults["error_rate"]:
                if self.router is not None:
                    select_route(scope, self.router)
                return await PlainTextResponse("injected fault: error_rate", status_code=500)(scope, receive, send)
        return await self.app(scope, receive, send)


def select_route(scope, router) -> None:
    """Writes into `scope` the route `router` would hand the request to (`router`, `route`, `endpoint`,
    `path_params`), as Starlette's and FastAPI's routers do before a handler runs, without running it:
    an exporter that reads them after the answer (starlette-exporter drops a request without them)
    counts an injected error where a handler's would be. An unmatched request stays unrouted."""
    scope.setdefault("router", router)
    for route in router.routes:
        match, child_scope = route.matches(scope)
        if match is not Match.FULL:
            continue
        # FastAPI's included router matches without an endpoint; the route inside it that matches has one.
        for inner in getattr(route, "effective_route_contexts", tuple)():
            inner_match, inner_scope = inner.matches(scope)
            if inner_match is Match.FULL:
                route, child_scope = getattr(inner, "original_route", route), {**child_scope, **inner_scope}
                break
        scope["route"] = route
        scope.update(child_scope)
        return


def with_faults(app, faults: AppFaults):
    """`app` with the fault injector innermost when it is a Starlette application whose middleware
    is not built yet (FastAPI's too), else around it."""
    from starlette.middleware import Middleware

    middleware = getattr(app, "user_middleware", None)
    if isinstance(middleware, list) and getattr(app, "middleware_stack", "built") is None:
        middleware.append(Middleware(FaultInjector, faults=faults, router=getattr(app, "router", None)))
        return app
    return FaultInjector(app, faults)


class WrappedApp:
    """The application behind golive's two paths (ASGI middleware)."""

    def __init__(self, app, track: str, version: str):
        self.app, self.track, self.version = app, track, version
        self.identity = [(b"x-spark-track", track.encode()), (b"x-spark-version", version.encode())]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        if path == "/version":
            return await JSONResponse({"version": self.version, "track": self.track})(scope, receive, send)
        if path == "/healthz":
            return await PlainTextResponse("ok")(scope, receive, send)
        if path == "/metrics":
            return await self._metrics_or_none(scope, receive, send)

        async def send_with_identity(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self.identity]}
            await send(message)

        return await self.app(scope, receive, send_with_identity)


    async def _metrics_or_none(self, scope, receive, send):
        exposition = None

        async def send_unless_missing(message):
            nonlocal exposition
            if message["type"] == "http.response.start":
                content_type = dict(message.get("headers", [])).get(b"content-type", b"")
                exposition = message["status"] == 200 and content_type.startswith(METRICS_CONTENT_TYPES)
            if exposition:
                return await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                await PlainTextResponse("", media_type=EMPTY_EXPOSITION)(scope, receive, send)

        await self.app(scope, receive, send_unless_missing)


def admin_app(track: str, faults: AppFaults) -> Starlette:
    async def get_faults(_request: Request) -> Response:
        return JSONResponse({"track": track, "active": faults.active(),
                             "known": {name: FAULTS[name][0] for name in WRAPPER_FAULTS}})

    async def set_faults(request: Request) -> Response:
        try:
            values = await request.json()
        except json.JSONDecodeError:
            values = None
        if not isinstance(values, dict):
            return JSONResponse({"error": "expected a JSON object of fault: value"}, status_code=422)
        try:
            faults.update(values)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        return JSONResponse({"track": track, "active": faults.active()})

    async def clear_faults(_request: Request) -> Response:
        faults.clear()
        return JSONResponse({"track": track, "active": {}})

    async def healthz(_request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(routes=[
        Route("/faults", get_faults, methods=["GET"]), Route("/faults", set_faults, methods=["POST"]),
        Route("/faults", clear_faults, methods=["DELETE"]), Route("/healthz", healthz),
    ])


async def serve(app, track: str, faults: AppFaults, host: str, port: int, admin_port: int) -> None:
    await serve_with_admin(app, admin_app(track, faults), host, port, admin_port, lifespan="auto")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="an ASGI or WSGI application as one sandbox track")
    parser.add_argument("--app", required=True, help="module:attribute of the application")
    parser.add_argument("--factory", action="store_true", help="the attribute makes the application when called")
    parser.add_argument("--track", choices=("stable", "canary"), required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--admin-port", type=int, required=True)
    parser.add_argument("--app-path", help="a folder to import the application from (the user's working folder)")
    args = parser.parse_args(argv)
    if args.app_path:
        sys.path.insert(0, args.app_path)
    faults = AppFaults()
    app = WrappedApp(with_faults(load_app(args.app, args.factory), faults), args.track, args.version)
    asyncio.run(serve(app, args.track, faults, args.host, args.port, args.admin_port))


if __name__ == "__main__":
    main()


def app_command(cfg: dict, python: str, track: str, version: str, port: int, admin_port: int) -> list[str] | None:
    """The command that serves the sandbox's `app` (config.json: spec, factory, path) as `track`;
    None when the sandbox serves the demo service."""
    app = cfg.get("app")
    if not app:
        return None
    cmd = [python, "-m", "sandbox.app_wrapper", "--app", app["spec"], "--track", track, "--version", version,
           "--port", str(port), "--admin-port", str(admin_port)]
    if app.get("factory"):
        cmd.append("--factory")
    if app.get("path"):
        cmd += ["--app-path", app["path"]]
    return cmd


def loadgen_args(cfg: dict) -> list[str]:
    """The load generator's paths for the sandbox's `app` (none for the demo: its own mix)."""
    app = cfg.get("app")
    return ["--paths", ",".join(app.get("paths") or ["/"])] if app else []
