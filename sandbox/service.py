"""spark: the sandbox's demo trading API, run once per track (stable and canary), and once more
as the stable version's secondary, which the shadow stage's mirror alone reaches.

Every golden signal is measured for real in this process: request latency and status codes by
an ASGI middleware, websocket staleness from the tick feed, risk blocks and idempotency
conflicts where orders are decided, CSP violations from the reports browsers post, event-loop
lag and GC pauses per generation by `loopwatch` (the probes any asyncio service can import).
Faults (see `faults.py`) are switched
on an admin port that only loopback reaches. The answers to the requests the router sent, and
the order decisions, are kept for the shadow stage (`/__golive/responses`, `/__golive/fills`).

    python -m sandbox.service --track canary --version 1.4.0 --port 18082 --admin-port 18092 --db spark.sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
import json
import math
import random
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import uvicorn
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from loopwatch import instrument
from sandbox import openapi
from sandbox.faults import FAULTS, FaultError, Faults
from sandbox.store import DuplicateKey, OrderStore

SYMBOLS = {"BTCUSD": 64000.0, "ETHUSD": 3100.0, "SOLUSD": 145.0, "AAPL": 190.0, "TSLA": 240.0}
RISK_NOTIONAL_LIMIT = 2_000_000.0
MAX_QUANTITY = 1_000_000.0
CSP = "default-src 'self'; script-src 'self'; report-uri /csp-report"
# Pages that pick up a third-party script (browser extensions inject them freely): the CSP baseline.
THIRD_PARTY_SCRIPT_RATE = 0.2
TICK_SECONDS = 0.5
# How far a tick's price lies from its symbol's base, as a share (a standard deviation).
MARKET_SIGMA = 0.001
# The matching engine behind the API answers in ~50 ms (lognormal): p95 lands near 135 ms.
DOWNSTREAM_MEDIAN_S = 0.05
DOWNSTREAM_SIGMA = 0.6
LOOP_PROBE_SECONDS = 0.05
LAG_WINDOW_SECONDS = 60.0

# The newest order decisions, live and paper, kept for the shadow stage's drift check (GET FILLS_PATH).
FILLS_KEPT = 10_000
FILLS_PATH = "/__golive/fills"
# Set by the router (nginx's request id, the same on a user's request and on its mirrored copy; a
# client's own is overwritten): what a live fill and the paper fill of the same order are matched by.
REQUEST_ID_HEADER = "x-request-id"
REQUEST_ID_MAX_CHARS = 128
# The newest answers to requests the router sent (those carrying its request id), for the shadow
# stage's response comparison (GET RESPONSES_PATH): a JSON body up to RESPONSE_JSON_MAX_BYTES is
# kept whole, any other only by its size and digest.
RESPONSES_KEPT = 10_000
RESPONSES_PATH = "/__golive/responses"
RESPONSE_JSON_MAX_BYTES = 16_384
# The second instance of the stable version the shadow stage's mirror copies requests to beside
# the canary (its noise is what the canary's differences are measured against): every request it
# answers is shadow traffic, and it opens neither the store nor the outbox.
SECONDARY_TRACK = "secondary"
TRACKS = ("stable", "canary", SECONDARY_TRACK)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 10)
UNMEASURED_PATHS = {"/metrics", "/healthz", FILLS_PATH, RESPONSES_PATH}

disable_created_metrics()  # `*_created` series only double what Prometheus scrapes


def market_price(symbol: str, at: float) -> float:
    """The market's price of `symbol` in the feed's tick holding wall-clock time `at`: every instance
    of the service reads one market, so two of them quote alike at the same moment (the shadow
    stage's response comparison counts a price that differs, and a tick's edge is its only noise)."""
    draw = random.Random(f"{symbol}|{int(at // TICK_SECONDS)}")
    return round(SYMBOLS[symbol] * (1 + draw.gauss(0, MARKET_SIGMA)), 4)


def route_of(path: str) -> str:
    if path.startswith("/api/quote/"):
        return "/api/quote/{symbol}"
    if path in {"/api/exec/order", "/api/outbox/lag", "/app", "/csp-report", "/version", "/ws"}:
        return path
    return "other"


# `X-Synthetic: 1` marks the load generator's probes, `X-Synthetic: drill` a golive drill's traffic.
# The shadow stage's browser check names itself in its User-Agent, which the browser sends on every
# request (its page's extra headers are not sent with a favicon, nor with a report posted late).
_SOURCES = {b"1": "synthetic", b"drill": "drill"}
BROWSER_CHECK_AGENT = b"golive-browser-check"

# Set by the router on the copy of a user's request it mirrors to the canary (and taken off every
# request a client sends): the request is shadow traffic, answered and dropped, never acted upon.
SHADOW_HEADER = "x-golive-shadow"


def request_source(headers: dict[bytes, bytes]) -> str:
    """Who sent a request: shadow (the router's copy), synthetic, drill, browser or user."""
    if headers.get(SHADOW_HEADER.encode()) == b"1":
        return "shadow"
    if BROWSER_CHECK_AGENT in headers.get(b"user-agent", b""):
        return "browser"
    return _SOURCES.get(headers.get(b"x-synthetic"), "user")


# The idempotency keys a shadow order was paper-filled with, newest last: enough for a resend to
# conflict as it would in the store, bounded so that a long shadow stage holds no more.
PAPER_KEYS_KEPT = 50_000


def is_shadow(headers) -> bool:
    return headers.get(SHADOW_HEADER) == "1"


def request_id_of(headers) -> str | None:
    request_id = headers.get(REQUEST_ID_HEADER)
    return request_id if request_id and len(request_id) <= REQUEST_ID_MAX_CHARS else None


class Metrics:
    def __init__(self, track: str, version: str):
        self.registry = r = CollectorRegistry()
        self.labels = {"track": track, "version": version}
        self.duration = Histogram(
            "spark_http_request_duration_seconds", "HTTP request latency", ["track", "version", "route"],
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.requests = Counter(
            "spark_http_requests", "HTTP requests by status code and source (user, synthetic probe, drill or shadow)",
            ["track", "version", "route", "code", "source"], registry=r,
        )
        self.risk_blocks = Counter("spark_risk_blocks", "Orders blocked by the risk engine", ["track", "version"], registry=r)
        self.keyed = Counter(
            "spark_idempotency_keyed_requests", "Orders carrying an idempotency key", ["track", "version"], registry=r
        )
        self.conflicts = Counter(
            "spark_idempotency_conflicts", "Orders refused because their key was used", ["track", "version"], registry=r
        )
        self.csp = Counter("spark_csp_violations", "CSP violation reports received, by who sent them (user or browser)",
                           ["track", "version", "source"], registry=r)
        self.ws_age = Gauge("spark_ws_last_message_age_seconds", "Age of the data in the newest websocket tick", ["track", "version"], registry=r)
        self.loop_probe, self.gc_probe = instrument(r, prefix="spark_", labels=self.labels, interval=LOOP_PROBE_SECONDS)
        self.outbox_lag = Histogram(
            "spark_outbox_lag_seconds", "Order to outbox publication", ["track", "version"],
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120), registry=r,
        )
        for counter in (self.risk_blocks, self.keyed, self.conflicts):
            counter.labels(**self.labels)  # the series exists from the start: 0, not "no data"
        for source in ("user", "browser"):
            self.csp.labels(**self.labels, source=source)

    def one(self, metric):
        return metric.labels(**self.labels)


class Spark:
    """One track of the service: its state, handlers and background work."""

    def __init__(self, track: str, version: str, db_path: str, seed: int | None = None):
        self.track, self.version = track, version
        self.faults = Faults()
        self.metrics = Metrics(track, version)
        self.random = random.Random(seed)
        self.db_path = db_path
        self.db_pool = ThreadPoolExecutor(1, thread_name_prefix="db")
        self.outbox_pool = ThreadPoolExecutor(1, thread_name_prefix="outbox")
        self.store: OrderStore | None = None
        self.outbox_store: OrderStore | None = None
        self.lags: deque[tuple[float, float]] = deque()
        self.paper_keys: dict[str, None] = {}  # insertion-ordered: the oldest is dropped first
        self.fills: deque[dict] = deque(maxlen=FILLS_KEPT)
        self.responses: deque[dict] = deque(maxlen=RESPONSES_KEPT)
        self.shadow_only = track == SECONDARY_TRACK
        self.storing: dict[object, int] = {}  # live orders decided, at that time, while the store records them
        self.subscribers: set[asyncio.Queue] = set()
        self.last_tick = time.time()
        # A busy service collects many times a second; this small one would not, at low
        # traffic, and "mean GC pause" would have no data. A small young generation collects
        # often (each pause microseconds), as a loaded runtime does.
        self._gc_default = (100, 10, 10)
        self._tasks: list[asyncio.Task] = []
        self.metrics.one(self.metrics.ws_age).set_function(lambda: time.time() - self.last_tick)

    # -- lifecycle --------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lifespan(self, _app):
        loop = asyncio.get_running_loop()
        if not self.shadow_only:
            self.store = await loop.run_in_executor(self.db_pool, OrderStore, self.db_path, self.track)
            self.outbox_store = await loop.run_in_executor(self.outbox_pool, OrderStore, self.db_path, self.track)
        gc.set_threshold(*self._gc_default)
        self.metrics.gc_probe.install()
        works = [self._feed, self.metrics.loop_probe.run, self._block_loop, self._gc_churn]
        for work in works if self.shadow_only else [*works, self._drain_outbox]:
            self._tasks.append(asyncio.create_task(work()))
        try:
            yield
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self.metrics.gc_probe.remove()
            if self.store is not None:
                self.db_pool.submit(self.store.close).result()
                self.outbox_pool.submit(self.outbox_store.close).result()
            self.db_pool.shutdown()
            self.outbox_pool.shutdown()

    @staticmethod
    def price_book() -> dict[str, float]:
        """Every symbol's market price now."""
        now = time.time()
        return {symbol: market_price(symbol, now) for symbol in SYMBOLS}

    async def _feed(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            if self.faults.ws_stall:
                continue
            symbol = self.random.choice(list(SYMBOLS))
            data_time = time.time() - self.faults.ws_lag_s  # a lagging upstream sends old prices
            message = json.dumps({"symbol": symbol, "price": market_price(symbol, data_time), "ts": data_time})
            for queue in list(self.subscribers):
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(message)
            self.last_tick = data_time

    async def _block_loop(self) -> None:
        while True:
            await asyncio.sleep(0.1)
            if self.faults.loop_block_ms:
                time.sleep(self.faults.loop_block_ms / 1000)  # the bug: sync work on the loop

    async def _gc_churn(self) -> None:
        tuned = False
        while True:
            await asyncio.sleep(0.05)
            if self.faults.gc_pressure:
                gc.set_threshold(int(self.faults.gc_pressure * 1000), 10, 10)
                tuned = True
                garbage = [[] for _ in range(20_000)]
                for a, b in zip(garbage, garbage[1:]):
                    a.append(b)
                    b.append(a)  # cycles: only the collector can free them
                del garbage
            elif tuned:
                gc.set_threshold(*self._gc_default)
                tuned = False

    async def _drain_outbox(self) -> None:
        loop = asyncio.get_running_loop()
        last_prune = time.time()
        lag_histogram = self.metrics.one(self.metrics.outbox_lag)
        while True:
            delay = self.faults.slow_db_ms / 1000
            batch = 1 if delay else 200  # re-read the fault between slow rows
            published = await loop.run_in_executor(
                self.outbox_pool, partial(self.outbox_store.publish_pending, batch, delay)
            )
            now = time.time()
            for lag in published.lags:
                self.lags.append((now, lag))
                lag_histogram.observe(lag)
            while self.lags and self.lags[0][0] < now - LAG_WINDOW_SECONDS:
                self.lags.popleft()
            if now - last_prune > 60:
                await loop.run_in_executor(self.outbox_pool, self.outbox_store.prune, 300)
                last_prune = now
            if not published.count:
                await asyncio.sleep(0.1)

    # -- handlers ---------------------------------------------------------------------------------

    async def _downstream(self, request_id: str | None) -> Response | None:
        """The call to the matching engine every API request makes, with the API faults. The
        engine's time is the request's own, drawn from its request id when it has one: a user's
        order and its mirrored copy wait alike on both tracks, so the drift between their fills is
        the services' and not two independent draws of the engine's (tens of ms apart)."""
        draw = random.Random(request_id) if request_id else self.random
        await asyncio.sleep(draw.lognormvariate(math.log(DOWNSTREAM_MEDIAN_S), DOWNSTREAM_SIGMA))
        if self.faults.latency_ms:
            await asyncio.sleep(self.faults.latency_ms / 1000)
        if self.faults.error_rate and self.random.random() < self.faults.error_rate:
            return JSONResponse({"error": "internal error"}, status_code=500)
        if self.faults.cpu_burn_ms:
            spark_price_checksum_burn(self.price_book(), self.faults.cpu_burn_ms / 1000)
        return None

    async def order(self, request: Request) -> Response:
        request_id = request_id_of(request.headers)
        if failed := await self._downstream(request_id):
            return failed
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _invalid("body", "expected a JSON object")
        if not isinstance(body, dict):
            return _invalid("body", "expected a JSON object")
        symbol, side, quantity = body.get("symbol"), body.get("side"), body.get("quantity")
        if symbol not in SYMBOLS:
            return _invalid("symbol", f"expected one of {', '.join(SYMBOLS)}")
        if side not in ("buy", "sell"):
            return _invalid("side", "expected 'buy' or 'sell'")
        if isinstance(quantity, bool) or not isinstance(quantity, (int, float)) or not 0 < quantity <= MAX_QUANTITY:
            return _invalid("quantity", f"expected a number in (0, {MAX_QUANTITY:g}]")
        key = request.headers.get("x-idempotency-key")
        if key is not None and not 1 <= len(key) <= 128:
            return _invalid("X-Idempotency-Key", "expected 1 to 128 characters")
        if key is not None:
            self.metrics.one(self.metrics.keyed).inc()
        paper, quantity = self.shadow_only or is_shadow(request.headers), float(quantity)
        if paper and self.faults.paper_fill_delay_ms:
            await asyncio.sleep(self.faults.paper_fill_delay_ms / 1000)
        fill = partial(self._record_fill, request_id, paper, symbol, side, quantity)
        if quantity * market_price(symbol, time.time()) > RISK_NOTIONAL_LIMIT or (
            self.faults.risk_block_rate and self.random.random() < self.faults.risk_block_rate
        ):
            self.metrics.one(self.metrics.risk_blocks).inc()
            fill("risk_blocked")
            return JSONResponse({"error": "risk_blocked", "symbol": symbol}, status_code=403)
        stored_key = key[: int(self.faults.idem_key_chars)] if key and self.faults.idem_key_chars else key
        if paper:
            return self.paper_fill(symbol, side, quantity, stored_key, request_id)
        place = partial(
            self.store.place, symbol, side, quantity, stored_key, enforce_key=not self.faults.idempotency_broken
        )
        with self._storing() as decided_ns:
            try:
                order_id = await asyncio.get_running_loop().run_in_executor(self.db_pool, place)
            except DuplicateKey:
                self.metrics.one(self.metrics.conflicts).inc()
                fill("idempotency_conflict", at_ns=decided_ns)
                return JSONResponse({"error": "idempotency_conflict", "idempotency_key": key}, status_code=409)
            fill("filled", at_ns=decided_ns)
        return JSONResponse(
            {"order_id": order_id, "status": "accepted", "track": self.track, "version": self.version}, status_code=201
        )

    def paper_fill(self, symbol: str, side: str, quantity: float, key: str | None,
                   request_id: str | None = None) -> Response:
        """A shadow order: decided as a live one is (risk, idempotency) and filled on paper at the
        feed's price, in memory; nothing reaches the store, the outbox or anything downstream."""
        if key is not None and not self.faults.idempotency_broken:
            if key in self.paper_keys:
                self.metrics.one(self.metrics.conflicts).inc()
                self._record_fill(request_id, True, symbol, side, quantity, "idempotency_conflict")
                return JSONResponse({"error": "idempotency_conflict", "idempotency_key": key}, status_code=409)
            self.paper_keys[key] = None
            if len(self.paper_keys) > PAPER_KEYS_KEPT:
                del self.paper_keys[next(iter(self.paper_keys))]
        price = market_price(symbol, time.time())
        filled_at_ns = self._record_fill(request_id, True, symbol, side, quantity, "filled", price)
        return JSONResponse({"status": "paper_filled", "symbol": symbol, "side": side, "quantity": quantity,
                             "price": price, "filled_at_ns": filled_at_ns,
                             "track": self.track, "version": self.version}, status_code=201)

    @contextlib.contextmanager
    def _storing(self):
        """The moment a live order is decided (validated, its risk passed, the engine answered),
        held as in flight while the store records it. The store's write is stable's own latency
        (0.3 ms at the median, up to 5 ms in the tail on a busy machine, as the write waits for its
        thread), not a drift between the tracks' decisions. A reader of the fills is told a clock
        no later than the oldest time in flight, so its next `since_ns` misses none of them."""
        token, at_ns = object(), time.monotonic_ns()
        self.storing[token] = at_ns
        try:
            yield at_ns
        finally:
            del self.storing[token]

    def _record_fill(self, request_id: str | None, paper: bool, symbol: str, side: str, quantity: float,
                     status: str, price: float | None = None, at_ns: int | None = None) -> int:
        """Keep an order's decision, timed now unless it was timed before (the shared
        CLOCK_MONOTONIC of the machine, so that two tracks' times compare), for the drift check;
        the time is returned. No request id, no record: nothing could match it."""
        at_ns = time.monotonic_ns() if at_ns is None else at_ns
        if request_id is not None:
            self.fills.append({"request_id": request_id, "at_ns": at_ns, "paper": paper, "symbol": symbol,
                               "side": side, "quantity": quantity, "price": price, "status": status})
        return at_ns

    async def fills_endpoint(self, request: Request) -> Response:
        """The kept order decisions newer than `since_ns` (exclusive), in the order they were
        recorded, with the service's clock now (or just before the oldest decision still being
        stored): the next read's `since_ns`."""
        since_ns = _since_ns(request)
        if isinstance(since_ns, Response):
            return since_ns
        now_ns = min([time.monotonic_ns(), *(at_ns - 1 for at_ns in self.storing.values())])
        return JSONResponse({"clock": "monotonic_ns", "now_ns": now_ns,
                             "fills": [fill for fill in self.fills if fill["at_ns"] > since_ns]})

    def record_response(self, request_id: str, scope: dict, answer: _Answer) -> None:
        """Keep the answer to a request the router sent (it carries the router's request id), timed
        now on the machine's monotonic clock, for the shadow stage's response comparison."""
        headers = dict(scope["headers"])
        self.responses.append({
            "request_id": request_id, "at_ns": time.monotonic_ns(), "method": scope["method"],
            "path": scope["path"][:200], "route": route_of(scope["path"]), "status": answer.status,
            "shadow": headers.get(SHADOW_HEADER.encode()) == b"1",  # a mirror's copy, on any track
            "content_type": answer.content_type, "bytes": answer.size,
            "sha256": answer.digest.hexdigest(), "json": answer.json_body(),
        })

    async def responses_endpoint(self, request: Request) -> Response:
        """The kept answers newer than `since_ns` (exclusive), oldest first, with the service's
        clock now: the next read's `since_ns` (an answer is timed when it is kept, so none older
        than that clock can be kept later)."""
        since_ns = _since_ns(request)
        if isinstance(since_ns, Response):
            return since_ns
        now_ns = time.monotonic_ns()
        return JSONResponse({"clock": "monotonic_ns", "now_ns": now_ns, "track": self.track,
                             "responses": [answer for answer in self.responses if answer["at_ns"] > since_ns]})

    async def quote(self, request: Request) -> Response:
        if failed := await self._downstream(request_id_of(request.headers)):
            return failed
        symbol = request.path_params["symbol"]
        if symbol not in SYMBOLS:
            return JSONResponse({"error": "unknown symbol", "symbol": symbol}, status_code=404)
        price = market_price(symbol, time.time())
        if self.faults.quote_skew_pct:
            price = round(price * (1 + self.faults.quote_skew_pct / 100), 4)
        return JSONResponse({"symbol": symbol, "price": price})

    async def outbox_lag(self, request: Request) -> Response:
        try:
            window = float(request.query_params.get("window_s", LAG_WINDOW_SECONDS))
        except ValueError:
            window = -1.0
        if not 0 < window <= LAG_WINDOW_SECONDS:
            return _invalid("window_s", f"expected seconds in (0, {LAG_WINDOW_SECONDS:g}]")
        pending = [] if self.outbox_store is None else await asyncio.get_running_loop().run_in_executor(
            self.outbox_pool, self.outbox_store.pending_ages)
        since = time.time() - window
        samples = sorted([lag for at, lag in self.lags if at >= since] + pending)

        def pct(p: float) -> float:
            return round(samples[min(len(samples) - 1, int(p * len(samples)))], 4) if samples else 0.0

        return JSONResponse({
            "p50": pct(0.50), "p95": pct(0.95), "p99": pct(0.99), "max": round(samples[-1], 4) if samples else 0.0,
            "pending": len(pending), "samples": len(samples), "window_s": window,
        })

    async def page(self, _request: Request) -> Response:
        scripts = ['<script src="/static/app.js"></script>']
        if self.random.random() < THIRD_PARTY_SCRIPT_RATE:
            scripts.append('<script src="https://cdn.widgets.example/embed.js"></script>')
        if self.faults.csp_inline_rate and self.random.random() < self.faults.csp_inline_rate:
            scripts.append("<script>window.__debugOverlay = true;</script>")
        body = f"<!doctype html><html><head><title>spark {self.version}</title>{''.join(scripts)}</head><body></body></html>"
        return HTMLResponse(body, headers={"Content-Security-Policy": CSP})

    async def csp_report(self, request: Request) -> Response:
        try:
            report = json.loads(await request.body()).get("csp-report")
        except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
            report = None
        if not isinstance(report, dict) or "violated-directive" not in report:
            return JSONResponse({"error": "expected a csp-report with violated-directive"}, status_code=400)
        source = "browser" if request_source(dict(request.headers.raw)) == "browser" else "user"
        self.metrics.csp.labels(**self.metrics.labels, source=source).inc()
        return Response(status_code=204)

    async def version_info(self, _request: Request) -> Response:
        return JSONResponse({"service": "spark", "track": self.track, "version": self.version})

    async def openapi(self, _request: Request) -> Response:
        return JSONResponse(openapi.document(self.version, sorted(SYMBOLS), MAX_QUANTITY))

    async def healthz(self, _request: Request) -> Response:
        return JSONResponse({"status": "ok", "track": self.track, "version": self.version})

    async def metrics_endpoint(self, _request: Request) -> Response:
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def ws(self, websocket: WebSocket) -> None:
        await websocket.accept()
        queue: asyncio.Queue = asyncio.Queue(maxsize=64)
        self.subscribers.add(queue)

        async def pump() -> None:
            while True:
                await websocket.send_text(await queue.get())

        pumping = asyncio.create_task(pump())
        try:
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass
        finally:
            pumping.cancel()
            self.subscribers.discard(queue)

    # -- admin ------------------------------------------------------------------------------------

    async def get_faults(self, _request: Request) -> Response:
        return JSONResponse({"track": self.track, "active": self.faults.active(),
                             "known": {name: spec[0] for name, spec in FAULTS.items()}})

    async def set_faults(self, request: Request) -> Response:
        try:
            values = await request.json()
        except json.JSONDecodeError:
            values = None
        if not isinstance(values, dict):
            return JSONResponse({"error": "expected a JSON object of fault: value"}, status_code=422)
        try:
            self.faults.update(values)
        except FaultError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        return JSONResponse({"track": self.track, "active": self.faults.active()})

    async def clear_faults(self, _request: Request) -> Response:
        self.faults.clear()
        return JSONResponse({"track": self.track, "active": {}})

    # -- apps -------------------------------------------------------------------------------------

    def app(self) -> Starlette:
        routes = [
            Route("/api/exec/order", self.order, methods=["POST"]),
            Route("/api/quote/{symbol}", self.quote),
            Route("/api/outbox/lag", self.outbox_lag),
            Route("/app", self.page),
            Route("/csp-report", self.csp_report, methods=["POST"]),
            Route("/version", self.version_info),
            Route("/openapi.json", self.openapi),
            Route("/healthz", self.healthz),
            Route("/metrics", self.metrics_endpoint),
            Route(FILLS_PATH, self.fills_endpoint, methods=["GET"]),
            Route(RESPONSES_PATH, self.responses_endpoint, methods=["GET"]),
            WebSocketRoute("/ws", self.ws),
        ]
        app = Starlette(routes=routes, lifespan=self.lifespan)
        return _Instrumented(app, self)

    def admin_app(self) -> Starlette:
        return Starlette(routes=[
            Route("/faults", self.get_faults, methods=["GET"]),
            Route("/faults", self.set_faults, methods=["POST"]),
            Route("/faults", self.clear_faults, methods=["DELETE"]),
            Route("/healthz", self.healthz),
        ])


def spark_price_checksum_burn(prices: dict[str, float], seconds: float) -> str:
    """The `cpu_burn_ms` fault's bug: a checksum of the price book recomputed, synchronously on the
    event loop, for `seconds` of CPU per request. Named to be found in a profile."""
    digest = hashlib.sha256(json.dumps(prices, sort_keys=True).encode())
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        for _ in range(200):
            digest = hashlib.sha256(digest.digest())
    return digest.hexdigest()


def _since_ns(request: Request) -> int | Response:
    """The `since_ns` a reader of a ring asks from (0 when it names none), or the 400 answer to it."""
    raw = request.query_params.get("since_ns", "0")
    try:
        since_ns = int(raw)
    except ValueError:
        since_ns = -1
    if since_ns < 0:
        return JSONResponse({"error": f"since_ns: expected a whole number of nanoseconds >= 0, got {raw[:40]!r}"},
                            status_code=400)
    return since_ns


def _invalid(field: str, error: str) -> Response:
    return JSONResponse({"detail": [{"field": field, "error": error}]}, status_code=422)


class _Answer:
    """A response as it is sent: its status, content type, size and digest, and its body while it
    is no longer than a JSON body is kept."""

    def __init__(self):
        self.status, self.content_type, self.size, self.complete = 0, "", 0, False
        self.digest = hashlib.sha256()
        self.head = bytearray()

    def take(self, message: dict) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            headers = dict(message.get("headers", []))
            self.content_type = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip()[:100]
        elif message["type"] == "http.response.body":
            chunk = message.get("body", b"")
            self.size += len(chunk)
            self.digest.update(chunk)
            if self.size <= RESPONSE_JSON_MAX_BYTES:
                self.head += chunk
            self.complete = not message.get("more_body", False)

    def json_body(self) -> object | None:
        """The body parsed, when it is JSON and short enough to keep; None otherwise."""
        if self.content_type != "application/json" or self.size > RESPONSE_JSON_MAX_BYTES or not self.head:
            return None
        try:
            return json.loads(self.head)
        except (ValueError, RecursionError):
            return None


class _Instrumented:
    """ASGI middleware: latency and status per route, and which track answered (a header the
    load generator uses to send a page's CSP report back to the version that served it)."""

    def __init__(self, app, spark: Spark):
        self.app, self.spark = app, spark
        self.identity = [(b"x-spark-track", spark.track.encode()), (b"x-spark-version", spark.version.encode())]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["path"] in UNMEASURED_PATHS:
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500
        headers = dict(scope["headers"])
        request_id = request_id_of(Headers(scope=scope))
        answer = _Answer() if request_id else None

        async def send_with_identity(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), *self.identity]}
            if answer is not None:
                answer.take(message)
            await send(message)

        try:
            await self.app(scope, receive, send_with_identity)
        finally:
            if answer is not None and answer.complete:
                self.spark.record_response(request_id, scope, answer)
            m = self.spark.metrics
            route = route_of(scope["path"])
            source = request_source(headers)
            m.duration.labels(**m.labels, route=route).observe(time.perf_counter() - started)
            m.requests.labels(**m.labels, route=route, code=str(status), source=source).inc()


class _AdminServer(uvicorn.Server):
    """The admin listener leaves signal handling to the main server, which stops it."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


async def serve(spark: Spark, host: str, port: int, admin_port: int) -> None:
    await serve_with_admin(spark.app(), spark.admin_app(), host, port, admin_port, lifespan="on")


async def serve_with_admin(app, admin_app, host: str, port: int, admin_port: int, lifespan: str) -> None:
    """A track: its application on `port`, its admin API (faults, metrics) on `admin_port`, both
    stopped when the application's server stops."""
    quiet = {"log_level": "warning", "access_log": False}
    main_server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, lifespan=lifespan, **quiet))
    admin = _AdminServer(uvicorn.Config(admin_app, host=host, port=admin_port, lifespan="off", **quiet))
    admin_task = asyncio.create_task(admin.serve())
    try:
        await main_server.serve()
    finally:
        admin.should_exit = True
        await admin_task


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="spark demo service (one track)")
    parser.add_argument("--track", choices=TRACKS, required=True,
                        help=f"{SECONDARY_TRACK}: the stable version's second instance, shadow traffic only")
    parser.add_argument("--version", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--admin-port", type=int, required=True)
    parser.add_argument("--db", required=True, help="SQLite file shared by both tracks (the secondary opens none)")
    parser.add_argument("--seed", type=int)
    args = parser.parse_args(argv)
    spark = Spark(args.track, args.version, args.db, args.seed)
    asyncio.run(serve(spark, args.host, args.port, args.admin_port))


if __name__ == "__main__":
    main()
