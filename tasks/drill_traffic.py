"""Drill traffic: real requests to the canary (through the router, by header, never to users),
and the outbox lag it reports."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import asdict

import httpx
from prefect import task
from prefect.cache_policies import NO_CACHE

from golive.blast_radius import DrillSample, plan_request
from golive.settings import RouterSettings
from golive.signals import DRILL_MARK
from tasks.http_client import shared_client
from tasks.router_base import canary_pin_headers

def drill_headers(router: RouterSettings | None) -> dict[str, str]:
    """Routes every request to the canary (ingress-nginx `canary-by-header`, the sandbox's nginx
    map; the router's pin when it has one), marked as a drill's."""
    return {**(canary_pin_headers(router) if router else {"X-Canary": "always"}), **DRILL_MARK}


async def _drive(url: str, seconds: float, concurrency: int, seed: int | None,
                 paths: tuple[str, ...] = (), pinned: dict[str, str] | None = None) -> list[DrillSample]:
    rng = random.Random(seed)
    run_id = uuid.uuid4().hex[:8]
    samples: list[DrillSample] = []
    sequence = 0
    last_key: str | None = None
    deadline = time.monotonic() + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal sequence, last_key
        while time.monotonic() < deadline:
            sequence += 1
            request = plan_request(rng, sequence, run_id, last_key, paths)
            headers = dict(pinned or drill_headers(None))
            if request.key:
                headers["X-Idempotency-Key"] = request.key
            started = time.perf_counter()
            try:
                response = await client.request(request.method, request.path, json=request.json, headers=headers)
                status, version = response.status_code, response.headers.get("x-spark-version")
            except httpx.HTTPError:
                status, version = None, None
            latency = (time.perf_counter() - started) * 1000
            if request.kind == "order" and status == 201:
                last_key = request.key
            samples.append(DrillSample(request.kind, status, round(latency, 2), version,
                                       status is not None and request.expected(status)))
            await asyncio.sleep(0.02)  # a handful of users' pace, not a load test

    async with httpx.AsyncClient(base_url=url.rstrip("/"), timeout=10) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return samples


@task(name="send canary-only traffic", cache_policy=NO_CACHE)
def send_canary_traffic(url: str, seconds: float, concurrency: int = 4, seed: int | None = None,
                        paths: list[str] | None = None, router: RouterSettings | None = None) -> list[dict]:
    """Send the users' mix (keyed orders, replays, quotes, pages), or GET requests to `paths`, with
    the canary header (`router`'s pin, else `always`) through the router at `url` for `seconds`;
    one sample (kind, status, latency, version) a request."""
    pinned = drill_headers(router)
    return [asdict(s) for s in asyncio.run(_drive(url, seconds, concurrency, seed, tuple(paths or ()), pinned))]


async def _burst(url: str, requests: int, parallel: int, key: str, pinned: dict[str, str]) -> list[int | None]:
    limit = asyncio.Semaphore(parallel)
    body = {"symbol": "BTCUSD", "side": "buy", "quantity": 0.01}
    headers = {**pinned, "X-Idempotency-Key": key}

    async def one(client: httpx.AsyncClient) -> int | None:
        async with limit:
            try:
                return (await client.post("/api/exec/order", json=body, headers=headers)).status_code
            except httpx.HTTPError:
                return None

    async with httpx.AsyncClient(base_url=url.rstrip("/"), timeout=10,
                                 limits=httpx.Limits(max_connections=parallel)) as client:
        return list(await asyncio.gather(*(one(client) for _ in range(requests))))


@task(name="send one idempotency key many times", cache_policy=NO_CACHE)
def send_keyed_burst(url: str, requests: int, parallel: int, router: RouterSettings | None = None) -> dict:
    """`requests` orders with one fresh idempotency key, `parallel` at a time, to the canary
    through the router at `url` (pinned by `router`'s canary header); the key and every status."""
    key = f"burst-{uuid.uuid4().hex}"
    return {"key": key, "statuses": asyncio.run(_burst(url, requests, parallel, key, drill_headers(router)))}


@task(name="read the outbox lag", retries=1, retry_delay_seconds=0.5, cache_policy=NO_CACHE)
def read_outbox_lag(url: str, window_seconds: float) -> dict:
    """GET {url}/api/outbox/lag?window_s=…: p50, p95, p99 and max in seconds, and when read."""
    response = shared_client().get(f"{url.rstrip('/')}/api/outbox/lag", params={"window_s": window_seconds}, timeout=5)
    response.raise_for_status()
    return {"at": time.time(), **response.json()}
