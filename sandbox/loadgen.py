"""Load for the sandbox: real clients through the router, plus a synthetic probe per track.

User traffic (`--rate` requests a second through nginx, split by the canary weight) is a mix a
trading front end produces: orders, most with an idempotency key and a few resent with the same
key as clients do after a timeout; quotes; page loads whose Content-Security-Policy is checked
the way a browser does, with a report posted for each violation (back to the version that served
the page, as a sticky session would); and websocket clients that reconnect now and then.

Synthetic probes (`--probe-rate` a second per track) go to each track by header (`X-Canary:`
the router's pin, read from `--canary-pin-file`, or `never`) and carry `X-Synthetic: 1`, so that
both versions report every signal even at weight 0 or 100, and so that the observed traffic split
can leave them out.

For an application that is not the demo (`--paths /,/get`), users and probes send GET requests
to those paths instead of the mix, and there are no websocket clients.

It only ever targets loopback and stops by itself after `--duration` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import logging
import random
import re
import signal
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import websockets

from sandbox.configs import read_canary_pin

SYMBOLS = ("BTCUSD", "ETHUSD", "SOLUSD", "AAPL", "TSLA")
KEYED_SHARE = 0.85
RESEND_SHARE = 0.003  # keyed orders sent twice: the second must conflict
_SCRIPT = re.compile(r"<script(?P<attrs>[^>]*)>(?P<body>.*?)</script>", re.S | re.I)
_SRC = re.compile(r"""src=["']([^"']+)["']""", re.I)

log = logging.getLogger("loadgen")


def require_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SystemExit(f"loadgen: target {url!r} is not a loopback address; refusing to send load there")


def csp_violations(html: str, policy: str | None) -> list[dict]:
    """What a browser would report for this page under `policy` (script-src only)."""
    if not policy:
        return []
    directives = {d.split()[0]: d.split()[1:] for d in (p.strip() for p in policy.split(";")) if d}
    allowed = directives.get("script-src", directives.get("default-src", []))
    reports = []
    for match in _SCRIPT.finditer(html):
        src = _SRC.search(match.group("attrs"))
        if src is None:
            if match.group("body").strip() and "'unsafe-inline'" not in allowed:
                reports.append({"violated-directive": "script-src-elem", "blocked-uri": "inline"})
        elif not src.group(1).startswith("/") and src.group(1) not in allowed:
            reports.append({"violated-directive": "script-src-elem", "blocked-uri": src.group(1)})
    return reports


class LoadGenerator:
    def __init__(self, target: str, rate: float, probe_rate: float, ws_clients: int, seed: int | None,
                 paths: tuple[str, ...] = (), canary_pin: str = "always"):
        self.target = target.rstrip("/")
        self.paths = paths
        self.canary_pin = canary_pin  # the value of X-Canary the router sends to the canary
        self.rate, self.probe_rate, self.ws_clients = rate, probe_rate, ws_clients
        self.random = random.Random(seed)
        self.stats: Counter[str] = Counter()
        self.stop = asyncio.Event()
        self.slots = asyncio.Semaphore(128)
        self.client: httpx.AsyncClient | None = None

    def _key(self) -> str:
        return f"{self.random.getrandbits(128):032x}"

    async def _send(self, method: str, path: str, headers: dict, **kwargs) -> httpx.Response | None:
        try:
            response = await self.client.request(method, path, headers=headers, **kwargs)
        except httpx.TimeoutException:
            self.stats["timeout"] += 1
            return None
        except httpx.TransportError:
            self.stats["transport_error"] += 1
            return None
        self.stats[f"{response.status_code // 100}xx"] += 1
        return response

    async def order(self, headers: dict) -> None:
        body = {
            "symbol": self.random.choice(SYMBOLS),
            "side": self.random.choice(("buy", "sell")),
            "quantity": round(self.random.uniform(0.01, 5.0), 3),
        }
        if self.random.random() >= KEYED_SHARE:
            await self._send("POST", "/api/exec/order", headers, json=body)
            return
        keyed = {**headers, "X-Idempotency-Key": self._key()}
        response = await self._send("POST", "/api/exec/order", keyed, json=body)
        if response is None or self.random.random() < RESEND_SHARE:
            await self._send("POST", "/api/exec/order", keyed, json=body)  # the client retries

    async def quote(self, headers: dict) -> None:
        await self._send("GET", f"/api/quote/{self.random.choice(SYMBOLS)}", headers)

    async def page(self, headers: dict) -> None:
        response = await self._send("GET", "/app", headers)
        if response is None or response.status_code != 200:
            return
        served_by = response.headers.get("x-spark-track")
        sticky = {**headers, "X-Canary": self.canary_pin if served_by == "canary" else "never",
                  "Content-Type": "application/csp-report"}
        for report in csp_violations(response.text, response.headers.get("content-security-policy")):
            report["document-uri"] = f"{self.target}/app"
            await self._send("POST", "/csp-report", sticky, content=json.dumps({"csp-report": report}))

    def _mixed(self, headers: dict):
        """One request of the traffic mix (45 % orders, 40 % quotes, 15 % pages). Probes use the
        same mix: per-request rates (CSP reports, risk blocks) are only comparable across tracks
        when the requests behind them are alike."""
        if self.paths:
            return self._send("GET", self.random.choice(self.paths), headers)
        roll = self.random.random()
        work = self.order if roll < 0.45 else self.quote if roll < 0.85 else self.page
        return work(headers)

    async def _one_user_request(self) -> None:
        async with self.slots:
            await self._mixed({})

    async def users(self) -> None:
        period = 1.0 / self.rate
        next_at = time.monotonic()
        while not self.stop.is_set():
            if self.slots.locked():
                self.stats["dropped"] += 1  # the system is too slow to keep the rate: say so
            else:
                asyncio.create_task(self._one_user_request())
            next_at += period
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def probe(self, track: str) -> None:
        headers = {"X-Canary": self.canary_pin if track == "canary" else "never", "X-Synthetic": "1"}
        while not self.stop.is_set():
            await self._mixed(headers)
            await asyncio.sleep(1.0 / self.probe_rate)

    async def websocket_client(self, n: int) -> None:
        url = "ws" + self.target[len("http"):] + "/ws"
        while not self.stop.is_set():
            try:
                async with websockets.connect(url, open_timeout=5) as ws:
                    deadline = time.monotonic() + 15 + 10 * self.random.random()
                    while time.monotonic() < deadline and not self.stop.is_set():
                        with contextlib.suppress(asyncio.TimeoutError):
                            await asyncio.wait_for(ws.recv(), timeout=1.0)
                            self.stats["ws_messages"] += 1
            except (OSError, websockets.WebSocketException):
                self.stats["ws_errors"] += 1
                await asyncio.sleep(1.0)

    async def report(self) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=10)
            log.info("load: %s", json.dumps(dict(sorted(self.stats.items()))))

    async def run(self, duration: float) -> None:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
        async with httpx.AsyncClient(base_url=self.target, timeout=2.0, limits=limits) as self.client:
            workers = [asyncio.create_task(self.report())]
            if self.rate > 0:
                workers.append(asyncio.create_task(self.users()))
            if self.probe_rate > 0:
                workers += [asyncio.create_task(self.probe(t)) for t in ("stable", "canary")]
            workers += [asyncio.create_task(self.websocket_client(n)) for n in range(self.ws_clients)]
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=duration)
            self.stop.set()
            await asyncio.gather(*workers, return_exceptions=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="sandbox load generator (loopback only)")
    parser.add_argument("--target", required=True, help="the router, e.g. http://127.0.0.1:18080")
    parser.add_argument("--rate", type=float, default=50.0, help="user requests per second")
    parser.add_argument("--probe-rate", type=float, default=1.0, help="synthetic requests per second per track")
    parser.add_argument("--ws-clients", type=int, default=4)
    parser.add_argument("--duration", type=float, default=4 * 3600, help="stop after this many seconds")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--paths", default="", help="comma-separated paths to GET instead of the demo's mix")
    parser.add_argument("--canary-pin-file", help="the file holding the router's canary pin (default: always)")
    args = parser.parse_args(argv)
    paths = tuple(p for p in args.paths.split(",") if p)
    if any(not p.startswith("/") for p in paths):
        raise SystemExit(f"loadgen: --paths: expected paths starting with /, got {args.paths!r}")
    require_loopback(args.target)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request drowns the summary
    pin = read_canary_pin(Path(args.canary_pin_file)) if args.canary_pin_file else "always"
    generator = LoadGenerator(args.target, args.rate, args.probe_rate, 0 if paths else args.ws_clients, args.seed,
                              paths, pin)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, generator.stop.set)
        await generator.run(args.duration)

    asyncio.run(run())


if __name__ == "__main__":
    main()
