"""What the shadow stage's mirror costs stable's users: their p95 with the router's mirror on and off.

    python benchmarks/shadow_mirror.py [--pairs 6] [--pair-seconds 25] [--loads 1 4] [--write]

One sandbox (its own folder, free loopback ports, stopped at the end whatever happens) at weight 0:
every user is answered by stable. Its own load generator sends only golive's probes (5 a second
per track) and its 4 websocket clients; the users' requests come from this process, through the
project's load generator (`sandbox.loadgen.LoadGenerator`, the same mix of orders, quotes, pages
and CSP reports) at the sandbox's rate of 50 a second times each `--loads` factor (websocket
clients scaled alike), each request timed as the user sees it: from sending to the whole answer,
through nginx. The router's own view ($request_time of stable's user requests, read from its
access log) is reported beside it.

Windows of `--pair-seconds` alternate mirror off and on in pairs, in ABBA order (off,on | on,off
| …) so that a steady drift of the machine weighs on both alike. Every window begins with the
router reloaded (even when the state repeats) and `--settle-seconds` left out, so each window
starts alike. Per load: the pooled p95 with the mirror off and on, their ratio with a 95 %
bootstrap interval over the pairs (pairs resampled whole), and the verdict against the issue's
target (on within 5 % of off): "met" when the interval's upper end is at most 1.05, "not met"
when the ratio itself is over, "not shown" in between. The canary's shadow request count
(`spark_http_requests_total{source="shadow"}`) says how many copies it received.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from readme_section import write_section  # noqa: E402

from sandbox.control import Sandbox  # noqa: E402
from sandbox.loadgen import LoadGenerator  # noqa: E402

SANDBOX_RATE = 50.0  # `golive sandbox up`'s default user requests a second
SANDBOX_PROBE_RATE = 5.0  # … and probes a second per track
SANDBOX_WS_CLIENTS = 4  # the sandbox's own load generator keeps these
TARGET_RATIO = 1.05
BOOTSTRAP_ROUNDS = 4000


@dataclass
class Timed:
    started: float  # time.monotonic() when sent
    ms: float
    ok: bool  # an HTTP answer came (any status)
    mirrorable: bool  # a request the router copies when the mirror is on (GET, or an order)


class TimedLoad(LoadGenerator):
    """The project's load generator with every user request timed from sending to the whole answer."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.timed: list[Timed] = []

    async def _send(self, method: str, path: str, headers: dict, **kwargs) -> httpx.Response | None:
        if self.stop.is_set():
            return None  # stopping: the client is being closed, and the windows are over
        started, clock = time.monotonic(), time.perf_counter()
        response = await super()._send(method, path, headers, **kwargs)
        if "X-Synthetic" not in headers:
            mirrorable = method == "GET" or path.startswith("/api/exec/order")
            self.timed.append(Timed(started, 1000 * (time.perf_counter() - clock), response is not None, mirrorable))
        return response


@dataclass
class Window:
    pair: int
    mirror: bool
    start: float = 0.0
    end: float = 0.0
    log_from: int = 0
    log_to: int = 0
    shadow_before: float = 0.0
    shadow_after: float = 0.0
    dropped: int = 0
    load_average: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # cores busy: the machine, stable, the canary, this client
    client_ms: list[float] = field(default_factory=list)
    router_ms: list[float] = field(default_factory=list)
    failed: int = 0
    mirrorable: int = 0

    @property
    def shadow(self) -> float:
        return self.shadow_after - self.shadow_before


def _shadow_requests(sandbox: Sandbox) -> float:
    """Requests the canary counted as shadow traffic (the copies the mirror delivered), all routes."""
    text = httpx.get(f"{sandbox.service_url('canary')}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("spark_http_requests_total{") and 'source="shadow"' in line)


def _cpu_seconds() -> dict[str, float]:
    """CPU seconds so far: the whole machine's busy time, and each process of the measurement's."""
    ticks = os.sysconf("SC_CLK_TCK")
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    seconds = {"machine": (sum(fields) - fields[3] - fields[4]) / ticks, "client": time.process_time()}
    for name, pid in _PIDS.items():
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        seconds[name] = (int(stat[11]) + int(stat[12])) / ticks
    return seconds


_PIDS: dict[str, int] = {}  # stable's and the canary's service processes, once the sandbox runs


def _dropped(generator: LoadGenerator) -> int:
    for _ in range(5):  # the generator's thread may be adding a key as this one copies
        try:
            return int(dict(generator.stats).get("dropped", 0))
        except RuntimeError:
            time.sleep(0.01)
    return 0


def _stable_user_request_ms(access_log: Path, start: int, end: int) -> list[float]:
    """$request_time of the users' requests stable served, from the router's access log between two offsets."""
    with open(access_log, "rb") as log:
        log.seek(start)
        data = log.read(end - start)
    times = []
    for line in data.decode("ascii", "replace").splitlines():
        fields = line.split(" ")
        if len(fields) == 4 and fields[0] == "stable" and fields[3] == "user" and fields[1] != "101":
            times.append(1000 * float(fields[2]))
    return times


def _schedule(pairs: int) -> list[Window]:
    """ABBA: off,on | on,off | off,on …"""
    order = [(False, True) if pair % 2 == 0 else (True, False) for pair in range(pairs)]
    return [Window(pair, mirror) for pair, states in enumerate(order) for mirror in states]


def _p95(values) -> float:
    return float(np.percentile(values, 95)) if len(values) else float("nan")


def _pooled_ratio(windows: list[Window], pairs: list[int], attribute: str) -> float:
    by_pair: dict[int, dict[bool, list[float]]] = {}
    for w in windows:
        by_pair.setdefault(w.pair, {})[w.mirror] = getattr(w, attribute)
    on = np.concatenate([by_pair[p][True] for p in pairs])
    off = np.concatenate([by_pair[p][False] for p in pairs])
    return _p95(on) / _p95(off)


def _bootstrap_interval(windows: list[Window], attribute: str, seed: int) -> tuple[float, float]:
    """95 % interval of the pooled p95 ratio (on ÷ off), resampling whole pairs."""
    pairs = sorted({w.pair for w in windows})
    rng = random.Random(seed)
    ratios = sorted(_pooled_ratio(windows, rng.choices(pairs, k=len(pairs)), attribute)
                    for _ in range(BOOTSTRAP_ROUNDS))
    return ratios[int(0.025 * len(ratios))], ratios[int(0.975 * len(ratios)) - 1]


def _verdict(ratio: float, upper: float) -> str:
    if upper <= TARGET_RATIO:
        return "met"
    return "not met" if ratio > TARGET_RATIO else "not shown"


def _start_load(sandbox: Sandbox, rate: float, ws_clients: int, seed: int):
    generator = TimedLoad(sandbox.router_url, rate, 0.0, ws_clients, seed, canary_pin=sandbox.canary_pin())
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(generator.run(24 * 3600),), daemon=True)
    thread.start()
    return generator, loop, thread


def _stop_load(generator: LoadGenerator, loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    if thread.is_alive():
        loop.call_soon_threadsafe(generator.stop.set)
        thread.join(timeout=30)


def measure_load(sandbox: Sandbox, factor: float, pairs: int, seconds: float, settle: float, warmup: float,
                 seed: int) -> dict:
    rate = SANDBOX_RATE * factor
    extra_ws = round(SANDBOX_WS_CLIENTS * factor) - SANDBOX_WS_CLIENTS
    access_log = sandbox.workdir / "nginx" / "access.log"
    windows = _schedule(pairs)
    generator, loop, thread = _start_load(sandbox, rate, extra_ws, seed)
    try:
        for mirror in (False, True):  # warm both tracks up with the mirror in both states, unmeasured
            sandbox.set_weight(0, holder="shadow mirror benchmark", mirror=mirror)
            time.sleep(warmup / 2)
        for i, window in enumerate(windows):
            sandbox.set_weight(0, holder="shadow mirror benchmark", mirror=window.mirror)
            if sandbox.mirroring() != window.mirror:
                raise RuntimeError(f"mirror: the router reads {not window.mirror}, expected {window.mirror}")
            time.sleep(settle)
            dropped = _dropped(generator)
            window.shadow_before, window.log_from = _shadow_requests(sandbox), access_log.stat().st_size
            cpu_before = _cpu_seconds()
            window.start = time.monotonic()
            time.sleep(seconds)
            window.end = time.monotonic()
            cpu_after = _cpu_seconds()
            window.cpu = {k: (cpu_after[k] - cpu_before[k]) / (window.end - window.start) for k in cpu_after}
            window.shadow_after, window.log_to = _shadow_requests(sandbox), access_log.stat().st_size
            window.dropped, window.load_average = _dropped(generator) - dropped, os.getloadavg()[0]
            print(f"  {factor:g}x pair {window.pair + 1}/{pairs} mirror {'on ' if window.mirror else 'off'}: "
                  f"load average {window.load_average:.2f}", flush=True)
        time.sleep(3)  # the last window's requests come back (the client gives up after 2 s)
    finally:
        _stop_load(generator, loop, thread)
        sandbox.set_weight(0, holder="shadow mirror benchmark", mirror=False)
    for window in windows:
        inside = [t for t in generator.timed if window.start <= t.started < window.end]
        window.client_ms = [t.ms for t in inside]
        window.failed = sum(not t.ok for t in inside)
        window.mirrorable = sum(t.mirrorable for t in inside)
        window.router_ms = _stable_user_request_ms(access_log, window.log_from, window.log_to)
    return summarize(windows, factor, rate, seconds, seed)


def summarize(windows: list[Window], factor: float, rate: float, seconds: float, seed: int) -> dict:
    """Every pair counts, those in which the load generator dropped requests (all its 128 slots busy)
    too: the machine may have starved it, or the mirror held its connections; they are counted apart."""
    starved = sorted({w.pair for w in windows if w.dropped})
    pairs = sorted({w.pair for w in windows})
    state = {mirror: [w for w in windows if w.mirror == mirror] for mirror in (False, True)}
    result = {
        "factor": factor, "rate": rate, "pairs_used": len(pairs), "starved": len(starved),
        "achieved": {m: sum(len(w.client_ms) for w in ws) / (seconds * len(ws)) if ws else float("nan")
                     for m, ws in state.items()},
        "shadow": {m: sum(w.shadow for w in windows if w.mirror == m) for m in (False, True)},
        "mirrorable_on": sum(w.mirrorable for w in windows if w.mirror),
        "failed": {m: sum(w.failed for w in windows if w.mirror == m) for m in (False, True)},
        "dropped": {m: sum(w.dropped for w in windows if w.mirror == m) for m in (False, True)},
        "cpu": {m: {k: float(np.mean([w.cpu[k] for w in windows if w.mirror == m])) for k in windows[0].cpu}
                for m in (False, True)},
        "load_average": (min(w.load_average for w in windows), max(w.load_average for w in windows)),
        "windows": windows,
    }
    client = {m: _p95(np.concatenate([w.client_ms for w in ws])) for m, ws in state.items()}
    router = {m: _p95(np.concatenate([w.router_ms for w in ws])) for m, ws in state.items()}
    ratio = client[True] / client[False]
    low, high = _bootstrap_interval(windows, "client_ms", seed)
    by_pair = {(w.pair, w.mirror): w for w in windows}
    return {
        **result, "client": client, "ratio": ratio, "interval": (low, high), "verdict": _verdict(ratio, high),
        "router": router, "router_ratio": router[True] / router[False],
        "router_interval": _bootstrap_interval(windows, "router_ms", seed),
        "pair_ratios": [_p95(by_pair[p, True].client_ms) / _p95(by_pair[p, False].client_ms) for p in pairs],
    }


def window_lines(result: dict) -> list[str]:
    lines = ["| load | pair | mirror | user requests | client p95 (ms) | router p95 (ms) | copies to the canary | "
             "failed | dropped | CPU: machine, stable, canary, client (cores) | load average |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    for w in result["windows"]:
        lines.append(f"| {result['factor']:g}× | {w.pair + 1} | {'on' if w.mirror else 'off'} | {len(w.client_ms)} | "
                     f"{_p95(w.client_ms):.1f} | {_p95(w.router_ms):.0f} | {w.shadow:.0f} | {w.failed} | {w.dropped} | "
                     f"{', '.join(f'{w.cpu[k]:.2f}' for k in ('machine', 'stable', 'canary', 'client'))} | "
                     f"{w.load_average:.2f} |")
    return lines


def section(results: list[dict], pairs: int, seconds: float, settle: float, load_before: float) -> str:
    averages = [a for r in results for a in r["load_average"]]
    lines = [f"{pairs} pairs of {seconds:g}-s windows per load (ABBA, {settle:g} s after each router reload left out); "
             "users' requests timed client-side through the router; 95 % intervals: bootstrap over the pairs; "
             f"load average {load_before:.2f} before the run, {min(averages):.2f}–{max(averages):.2f} during it",
             "",
             "| load (user req/s sent) | pairs (with requests dropped) | p95 off (ms) | p95 on (ms) | "
             "on ÷ off (95 % interval) | pairs slower with the mirror | within 5 %? | router's p95 off / on (ms) | "
             "router's on ÷ off (95 % interval) "
             "| copies to the canary (of mirrorable user requests) | copies with the mirror off | failed off / on | "
             "machine's CPU off / on (cores of 2) | canary's CPU off / on | this client's CPU off / on |",
             "|---|---|---:|---:|---|---:|---|---|---|---|---:|---|---|---|---|"]
    for r in results:
        low, high = r["interval"]
        router_low, router_high = r["router_interval"]
        slower = sum(x > 1 for x in r["pair_ratios"])
        copied = r["shadow"][True] / r["mirrorable_on"] if r["mirrorable_on"] else float("nan")
        lines.append(
            f"| {r['factor']:g}× ({r['achieved'][False]:.0f} / {r['achieved'][True]:.0f}) | "
            f"{r['pairs_used']} ({r['starved']}) | "
            f"{r['client'][False]:.1f} | {r['client'][True]:.1f} | {r['ratio']:.3f} ({low:.3f}–{high:.3f}) | "
            f"{slower} of {len(r['pair_ratios'])} | {r['verdict']} | "
            f"{r['router'][False]:.0f} / {r['router'][True]:.0f} | "
            f"{r['router_ratio']:.3f} ({router_low:.3f}–{router_high:.3f}) | "
            f"{r['shadow'][True]:,.0f} ({100 * copied:.1f} % of {r['mirrorable_on']:,}) | {r['shadow'][False]:,.0f} | "
            f"{r['failed'][False]} / {r['failed'][True]} | "
            + " | ".join(f"{r['cpu'][False][k]:.2f} / {r['cpu'][True][k]:.2f}" for k in ("machine", "canary", "client"))
            + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=6, help="off/on pairs of windows per load")
    parser.add_argument("--pair-seconds", type=float, default=25.0, help="measured seconds of each window of a pair")
    parser.add_argument("--settle-seconds", type=float, default=3.0, help="left out after each router reload")
    parser.add_argument("--warmup-seconds", type=float, default=10.0, help="unmeasured load before a load's windows")
    parser.add_argument("--loads", type=float, nargs="+", default=[1.0, 4.0],
                        help=f"multiples of the sandbox's {SANDBOX_RATE:g} user requests a second")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--write", action="store_true", help="write the table into benchmarks/README.md")
    args = parser.parse_args(argv)
    if args.pairs < 2:
        parser.error(f"--pairs: expected at least 2 for an interval over pairs, got {args.pairs}")
    if args.pair_seconds <= 0:
        parser.error(f"--pair-seconds: expected more than 0, got {args.pair_seconds:g}")

    def stop_on_term(_signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop_on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in the background, where it is ignored
    load_before = os.getloadavg()[0]
    results = []
    with tempfile.TemporaryDirectory(prefix="golive-bench-shadow-") as folder:
        sandbox = Sandbox.up(Path(folder) / "sandbox", free_ports=True, owner_pid=os.getpid(), seed=args.seed,
                             rate=0, probe_rate=SANDBOX_PROBE_RATE, timeout=90)
        try:
            _PIDS.update({c.name: c.pid for c in sandbox.status() if c.name in ("stable", "canary")})
            for factor in args.loads:
                results.append(measure_load(sandbox, factor, args.pairs, args.pair_seconds, args.settle_seconds,
                                            args.warmup_seconds, args.seed))
        finally:
            sandbox.down()
    for result in results:
        print("\n".join(window_lines(result)))
    table = section(results, args.pairs, args.pair_seconds, args.settle_seconds, load_before)
    print()
    print(table)
    if args.write:
        write_section("shadow-mirror", table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
