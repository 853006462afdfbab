"""What py-spy's sampling costs the demo service's p95: the same load with and without the profiler.

    python benchmarks/profiler_overhead.py [--rounds 4] [--seconds 20] [--rate 50] [--hz 20 100]

One demo service process (a track of the sandbox, on a free loopback port) gets an open-loop load
of `--rate` requests a second: quotes (the API's path, with its ~50 ms downstream call, the p95
the `api_p95_ms` signal reads) and health checks (no downstream call: the service's own time, the
most sensitive place to see a cost). Phases of `--seconds` alternate in rounds: no profiler, then
py-spy at each `--hz` as golive runs it (`record --nonblocking`, speedscope), so that a drifting
machine weighs on every phase alike. Per phase: client-side p50/p95 of both paths, the event
loop's p95 lag from the service's own histogram, and py-spy's CPU (utime+stime over the phase).
The median over rounds is reported; the difference to "off" is the profiler's cost.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sandbox.processes import free_ports, listening  # noqa: E402
from sandbox.store import create_database  # noqa: E402
from tasks.profiler import py_spy_executable  # noqa: E402


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _loop_lag_buckets(url: str) -> dict[float, float]:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    buckets = {}
    for line in text.splitlines():
        if line.startswith("spark_event_loop_lag_seconds_bucket{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[float("inf") if le == "+Inf" else float(le)] = float(line.rsplit(" ", 1)[1])
    return buckets


def _bucket_p95(before: dict, after: dict) -> float:
    counts = sorted((le, after[le] - before.get(le, 0.0)) for le in after)
    total = counts[-1][1] if counts else 0
    for le, cumulative in counts:
        if total and cumulative >= 0.95 * total:
            return le
    return float("nan")


async def _load(url: str, rate: float, seconds: float) -> dict[str, list[float]]:
    latencies: dict[str, list[float]] = {"quote": [], "healthz": []}
    async with httpx.AsyncClient(base_url=url, timeout=10, limits=httpx.Limits(max_connections=200)) as client:
        async def one(path: str, kind: str) -> None:
            started = time.perf_counter()
            response = await client.get(path, headers={"X-Synthetic": "1"})
            if response.status_code == 200:
                latencies[kind].append(1000 * (time.perf_counter() - started))

        tasks, start = [], time.perf_counter()
        for i in range(int(rate * seconds)):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            kind = "quote" if i % 2 == 0 else "healthz"
            path = "/api/quote/BTCUSD" if kind == "quote" else "/healthz"
            tasks.append(asyncio.create_task(one(path, kind)))
        await asyncio.gather(*tasks)
    return latencies


def _phase(url: str, pid: int, hz: int | None, rate: float, seconds: float, scratch: Path) -> dict:
    profiler = None
    if hz:
        command = [py_spy_executable(), "record", "--pid", str(pid), "--rate", str(hz), "--nonblocking",
                   "--format", "speedscope", "--output", str(scratch / f"p{hz}")]
        profiler = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # attached
    lag_before = _loop_lag_buckets(url)
    cpu_before = _cpu_seconds(profiler.pid) if profiler else 0.0
    latencies = asyncio.run(_load(url, rate, seconds))
    cpu = (_cpu_seconds(profiler.pid) - cpu_before) / seconds if profiler else 0.0
    lag_p95 = _bucket_p95(lag_before, _loop_lag_buckets(url))
    if profiler:
        profiler.send_signal(signal.SIGINT)
        profiler.wait(timeout=30)
    return {"quote_p50": _percentile(latencies["quote"], 0.5), "quote_p95": _percentile(latencies["quote"], 0.95),
            "healthz_p50": _percentile(latencies["healthz"], 0.5),
            "healthz_p95": _percentile(latencies["healthz"], 0.95),
            "loop_lag_p95": 1000 * lag_p95, "py_spy_cpu": 100 * cpu}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--hz", type=int, nargs="+", default=[20, 100])
    args = parser.parse_args(argv)
    if py_spy_executable() is None:
        print("py-spy is not installed: pip install py-spy", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="golive-bench-profiler-") as folder:
        scratch = Path(folder)
        create_database(str(scratch / "spark.sqlite"))
        port, admin = free_ports(2)
        service = subprocess.Popen(
            [sys.executable, "-m", "sandbox.service", "--track", "stable", "--version", "1.3.2", "--port", str(port),
             "--admin-port", str(admin), "--db", str(scratch / "spark.sqlite"), "--seed", "7"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while not listening(port) and time.monotonic() < deadline:
                time.sleep(0.1)
            url = f"http://127.0.0.1:{port}"
            asyncio.run(_load(url, args.rate, 3))  # warm-up
            phases: dict[str, list[dict]] = {}
            for _ in range(args.rounds):
                for hz in [None, *args.hz]:
                    label = "off" if hz is None else f"py-spy {hz} Hz"
                    phases.setdefault(label, []).append(_phase(url, service.pid, hz, args.rate, args.seconds, scratch))
        finally:
            service.terminate()
            service.wait(timeout=15)
    keys = ("quote_p50", "quote_p95", "healthz_p50", "healthz_p95", "loop_lag_p95", "py_spy_cpu")
    print(f"{args.rounds} rounds x {args.seconds:g} s per phase, {args.rate:g} req/s (half quotes, half health "
          f"checks), median over rounds; client-side latency in ms")
    print("| phase | quote p50 | quote p95 (rounds' range) | healthz p50 | healthz p95 (range) | loop lag p95 "
          "(buckets) | py-spy CPU |")
    print("|---|---|---|---|---|---|---|")
    for label, runs in phases.items():
        med = {k: statistics.median(r[k] for r in runs) for k in keys}
        low = {k: min(r[k] for r in runs) for k in keys}
        high = {k: max(r[k] for r in runs) for k in keys}
        print(f"| {label} | {med['quote_p50']:.1f} | {med['quote_p95']:.1f} ({low['quote_p95']:.0f}–"
              f"{high['quote_p95']:.0f}) | {med['healthz_p50']:.2f} | {med['healthz_p95']:.2f} "
              f"({low['healthz_p95']:.1f}–{high['healthz_p95']:.1f}) | ≤ {med['loop_lag_p95']:.1f} | "
              f"{med['py_spy_cpu']:.1f} % |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
