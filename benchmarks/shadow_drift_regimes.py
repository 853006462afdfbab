"""The drift gate's sign test on a busy machine: votes by pair against votes by second of orders.

    python benchmarks/shadow_drift_regimes.py [--seconds 150] [--busy 1] [--window 20] [--look 3] [--write]

One sandbox (its own folder, free loopback ports, stopped at the end whatever happens) at weight 0
with the router's mirror on, its load generator at the tests' 50 requests a second, a healthy
canary, `--busy` processes spinning on a CPU each, and the shadow stage's browser check loading
`/app` on stable, the canary and the secondary at the demo's 60 pages a minute each. For
`--seconds` the fills of stable, the canary and the secondary are read (`GET /__golive/fills`).

Then every `--window`-second stretch of orders, one starting each second, is judged as a shadow
stage of that length would judge it, at a look every `--look` seconds on the orders so far: by the
gate (`golive.drift.drift_verdict`, against the secondary, its sign test voting once a second of
orders) and by the same gate with one vote per pair beyond the limit (as it was); the looks are a
stage's, the last one ending at or just past `--window`. The canary is healthy, so a stage
breached at any look is a false rollback. Overlapping stages share their orders, so the stages that
share none (one every stage's length) are counted apart too. Target: none by second.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from readme_section import write_section  # noqa: E402
from shadow_drift import start_spinners, stop_spinners  # noqa: E402

from golive._stats import sign_log_evalue  # noqa: E402
from golive.drift import BEYOND_SHARE, DRIFT_ALPHA, drift_verdict, nearest_rank  # noqa: E402
from sandbox.control import Sandbox  # noqa: E402
from tasks.browser import start_browser_check, stop_browser_check  # noqa: E402

P99_MAX_MS = 5.0
MIN_PAIRS = 20
LOAD_RATE = 50.0
PAGES_PER_MINUTE = 60.0
HOLDER = "shadow drift regimes benchmark"
SIDES = (("live", "stable", False), ("paper", "canary", True), ("reference", "secondary", True))


def collect(sandbox: Sandbox, seconds: float) -> dict[str, dict[str, dict]]:
    """Every fill of the three services over the next `seconds`, by side and request id (read every
    5 s: each keeps its newest 10,000)."""
    fills: dict[str, dict[str, dict]] = {side: {} for side, _, _ in SIDES}
    end = time.monotonic() + seconds
    with httpx.Client(timeout=10) as client:
        clock = client.get(f"{sandbox.service_url('stable')}/__golive/fills", params={"since_ns": 0})
        since_ns = clock.json()["now_ns"]
        while True:
            time.sleep(min(5.0, max(0.0, end - time.monotonic())))
            for side, track, paper in SIDES:
                answer = client.get(f"{sandbox.service_url(track)}/__golive/fills",
                                    params={"since_ns": since_ns}).json()
                fills[side].update((f["request_id"], f) for f in answer["fills"] if f["paper"] is paper)
            if time.monotonic() >= end:
                return fills


def by_pair_breach(live: list[dict], paper: list[dict], reference: list[dict]) -> bool:
    """The gate as it was, with one vote per pair beyond the limit, in the order of the live fills
    (against the secondary where it filled `MIN_PAIRS` of the orders, else against the live fills)."""
    papers = {f["request_id"]: f for f in paper}
    references = {f["request_id"]: f for f in reference}
    pairs = sorted((f["at_ns"], f["request_id"]) for f in live if f["request_id"] in papers)
    if len(pairs) < MIN_PAIRS:
        return False
    p99 = nearest_rank([abs(papers[i]["at_ns"] - at) / 1e6 for at, i in pairs], 0.99)
    if sum(i in references for _, i in pairs) >= MIN_PAIRS:
        judged = [(papers[i]["at_ns"] - references[i]["at_ns"]) / 1e6 for _, i in pairs if i in references]
    else:
        judged = [(papers[i]["at_ns"] - at) / 1e6 for at, i in pairs]
    beyond = [d for d in judged if abs(d) >= P99_MAX_MS]
    late, early = sum(d > 0 for d in beyond), sum(d < 0 for d in beyond)
    evidence = max(sign_log_evalue(d > 0 for d in beyond), sign_log_evalue(d < 0 for d in beyond))
    return (p99 >= P99_MAX_MS and abs(late - early) > BEYOND_SHARE * len(judged)
            and evidence >= math.log(2 / DRIFT_ALPHA))


def judge_windows(fills: dict[str, dict[str, dict]], window: float, look: float) -> dict:
    live = sorted(fills["live"].values(), key=lambda f: f["at_ns"])
    if not live:
        raise RuntimeError("no live fill was read: the load generator sent no order")
    first, last = live[0]["at_ns"], live[-1]["at_ns"]
    looks = math.ceil(window / look - 1e-9)  # as a stage's (`golive.stage`): the last may end past `window`
    span = looks * look
    starts = range(0, int((last - first) / 1e9 - span) + 1)
    result = {"windows": len(starts), "pair": 0, "second": 0,
              "disjoint": 0, "disjoint_pair": 0, "disjoint_second": 0}
    for start in starts:
        begin = first + start * 1_000_000_000
        pair = second = False
        for k in range(1, looks + 1):
            end = begin + round(k * look * 1e9)
            ids = {f["request_id"] for f in live if begin <= f["at_ns"] < end}
            sides = [[f for f in fills[side].values() if f["request_id"] in ids] for side, _, _ in SIDES]
            pair = pair or by_pair_breach(*sides)
            second = second or drift_verdict(*sides[:2], P99_MAX_MS, MIN_PAIRS, sides[2])["verdict"] == "breach"
        result["pair"] += pair
        result["second"] += second
        if start % math.ceil(span) == 0:  # the stages that share no order
            result["disjoint"] += 1
            result["disjoint_pair"] += pair
            result["disjoint_second"] += second
    return result


def section(result: dict, args: argparse.Namespace, pairs: int, beyond: tuple[int, int], loaded: dict,
            load: tuple[float, float]) -> str:
    met = "met" if result["second"] == 0 else "**not met**"
    return "\n".join([
        f"{args.seconds:g} s of a healthy canary in the shadow: {LOAD_RATE:g} requests a second through the router, "
        f"{args.busy} process(es) spinning, the browser check at {PAGES_PER_MINUTE:g} pages a minute on each of "
        f"stable, the canary and the secondary (loaded {loaded}); {pairs:,} orders filled by all three, "
        f"{beyond[0]} late and {beyond[1]} early by {P99_MAX_MS:g} ms or more against the secondary; "
        f"{os.cpu_count()} cores; load average {load[0]:.2f} before, {load[1]:.2f} after",
        "",
        f"| the sign test votes | {args.window:g}-s stages, a look every {args.look:g} s: one starting each second "
        "(overlapping) | falsely breached at some look | of them sharing no order | falsely breached | target |",
        "|---|---:|---:|---:|---:|---|",
        f"| once per pair beyond the limit (as it was) | {result['windows']} | {result['pair']} | "
        f"{result['disjoint']} | {result['disjoint_pair']} | – |",
        f"| once per second of orders (the gate) | {result['windows']} | {result['second']} | "
        f"{result['disjoint']} | {result['disjoint_second']} | none: {met} |",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=150.0, help="how long the fills are collected")
    parser.add_argument("--busy", type=int, default=1, help="processes spinning on a CPU meanwhile")
    parser.add_argument("--window", type=float, default=20.0, help="a shadow stage's length, seconds")
    parser.add_argument("--look", type=float, default=3.0, help="the stage's interval, seconds")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--write", action="store_true", help="write the table into benchmarks/README.md")
    args = parser.parse_args(argv)
    if args.busy < 0:
        parser.error(f"--busy: expected a count >= 0, got {args.busy}")
    if not 0 < args.look <= args.window < args.seconds:
        parser.error("--look, --window, --seconds: expected 0 < look <= window < seconds")

    def stop_on_term(_signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop_on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="golive-bench-regimes-") as folder:
        sandbox = Sandbox.up(Path(folder) / "sandbox", free_ports=True, owner_pid=os.getpid(), seed=args.seed,
                             rate=LOAD_RATE, probe_rate=5, timeout=90)
        spinners: list[subprocess.Popen] = []
        try:
            sandbox.set_weight(0, holder=HOLDER, mirror=True)
            spinners = start_spinners(args.busy)
            check = start_browser_check.fn({track: sandbox.service_url(track) for _, track, _ in SIDES}, ("/app",),
                                           PAGES_PER_MINUTE)
            if check.problem:
                raise RuntimeError(check.problem)
            try:
                fills = collect(sandbox, args.seconds)
            finally:
                loaded = stop_browser_check.fn(check).loaded
        finally:
            stop_spinners(spinners)
            sandbox.down()
    load_after = os.getloadavg()[0]
    result = judge_windows(fills, args.window, args.look)
    ids = [i for i in fills["live"] if i in fills["paper"] and i in fills["reference"]]
    drifts = [(fills["paper"][i]["at_ns"] - fills["reference"][i]["at_ns"]) / 1e6 for i in ids]
    beyond = (sum(d >= P99_MAX_MS for d in drifts), sum(d <= -P99_MAX_MS for d in drifts))
    table = section(result, args, len(ids), beyond, loaded, (load_before, load_after))
    print(table)
    if args.write:
        write_section("shadow-drift-regimes", table)
    return 0 if result["second"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
