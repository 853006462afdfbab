"""The shadow stage's drift gate on the real sandbox: paper fills 8 ms late held back, 2 ms late passed.

    python benchmarks/shadow_drift.py [--delays 0 2 8] [--rounds 10] [--orders 200] [--busy 0 2] [--write]

One sandbox (its own folder, free loopback ports, stopped at the end whatever happens) at weight 0
with the router's mirror on: stable fills every user's order and writes it to the store and the
outbox; the canary fills the mirrored copy on paper, in memory. Its own load generator sends only
golive's probes. Each round sends `--orders` user orders through the router, one after another,
each of a quantity no other order has and its own idempotency key, with the canary's fault
`paper_fill_delay_ms` at the round's delay; then both tracks' fills of those orders are read
(`GET /__golive/fills?since_ns=`, once the canary and the secondary have filled every copy) and
judged by the gate the shadow stage runs, `drift_verdict(live, paper, p99_max_ms=5, min_pairs=20,
reference=the secondary's fills)`: the sides beyond the limit counted against the secondary's paper
fills of the same orders. Rounds take the
delays in turn (0, 2, 8 | 0, 2, 8 | …) so that a machine whose load changes weighs on each alike.

`--busy N` runs the same rounds again with N processes spinning on a CPU each (started before
the first round of that setting and stopped after its last, whatever happens): the machine's
scheduling then delays either service now and then, which the gate must not call the canary's
drift. After each round the store (the sandbox's SQLite file, read-only) is asked for the rows of
that round's orders per track, in `orders` and in `outbox`, once stable's are all there: the
canary's track must have none. Targets: 0 and 2 ms pass in every round, 8 ms breaches in every
round, no row of the canary's.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from readme_section import write_section  # noqa: E402

from golive.drift import drift_verdict  # noqa: E402
from sandbox.control import Sandbox  # noqa: E402
from sandbox.processes import die_with_parent  # noqa: E402
from sandbox.store import rows_by_track  # noqa: E402
from tasks.service import read_fills  # noqa: E402

P99_MAX_MS = 5.0
MIN_PAIRS = 20
PROBE_RATE = 5.0
HOLDER = "shadow drift benchmark"
KEY_PREFIX = "shadow-drift-"  # every order this benchmark sends has an idempotency key starting so
PASSING_DELAYS_MS = (0.0, 2.0)  # the issue: 2 ms late passes (and a healthy canary does)
BREACHING_DELAYS_MS = (8.0,)  # … 8 ms late is held back


@dataclass
class Round:
    busy: int
    delay_ms: float
    index: int
    verdict: dict = field(default_factory=dict)
    canary_rows: dict[str, int] = field(default_factory=dict)  # table → the canary's rows of this round's orders
    stable_rows: dict[str, int] = field(default_factory=dict)
    load_average: float = 0.0
    seconds: float = 0.0  # from the first order's live fill to the last's: the sign test votes once a second


def _clock(sandbox: Sandbox) -> int:
    return read_fills.fn(sandbox.service_url("stable"), 0)["now_ns"]


def _send_orders(sandbox: Sandbox, count: int) -> dict[float, str]:
    """`count` user orders through the router, by quantity (unique to this round) → idempotency key."""
    tag = random.randint(1, 999_999) / 1e9  # the load generator's quantities have 3 decimals: never these
    orders = {round(0.5 + i / 1000 + tag, 9): f"{KEY_PREFIX}{uuid.uuid4().hex}" for i in range(count)}
    with httpx.Client(base_url=sandbox.router_url, timeout=10) as client:
        for quantity, key in orders.items():
            answer = client.post("/api/exec/order", json={"symbol": "ETHUSD", "side": "buy", "quantity": quantity},
                                 headers={"X-Idempotency-Key": key})
            if answer.status_code != 201:
                raise RuntimeError(f"order {key}: the router answered {answer.status_code}, expected 201")
    return orders


def _fills_of(sandbox: Sandbox, track: str, since_ns: int, orders: dict[float, str]) -> list[dict]:
    return [fill for fill in read_fills.fn(sandbox.service_url(track), since_ns)["fills"] if fill["quantity"] in orders]


def _wait_until(check, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _rows_by_track(sandbox: Sandbox, keys) -> dict[str, dict[str, int]]:
    return rows_by_track(str(sandbox.workdir / "spark.sqlite"), keys)


def _canary_rows_of_all_rounds(sandbox: Sandbox) -> dict[str, int]:
    """The canary's rows of any order this benchmark sent, read at the end (a late write shows here).
    Not every canary row: the probes pinned to the canary place live orders there, as they should."""
    pattern = f"{KEY_PREFIX}%"
    with sqlite3.connect(f"file:{sandbox.workdir / 'spark.sqlite'}?mode=ro", uri=True) as db:
        orders = db.execute("SELECT count(*) FROM orders WHERE track = 'canary' AND idempotency_key LIKE ?",
                            (pattern,)).fetchone()[0]
        outbox = db.execute("SELECT count(*) FROM outbox JOIN orders ON orders.id = outbox.order_id "
                            "WHERE outbox.track = 'canary' AND orders.idempotency_key LIKE ?", (pattern,)).fetchone()[0]
    return {"orders": orders, "outbox": outbox}


def measure_round(sandbox: Sandbox, one: Round, orders_per_round: int) -> Round:
    sandbox.set_faults("canary", {"paper_fill_delay_ms": one.delay_ms})
    since_ns = _clock(sandbox)
    orders = _send_orders(sandbox, orders_per_round)
    for track in ("canary", "secondary"):
        if not _wait_until(lambda: len(_fills_of(sandbox, track, since_ns, orders)) >= len(orders), timeout=30):
            print(f"  the {track} filled fewer than {len(orders)} copies within 30 s; judged on what it filled",
                  flush=True)
    live, paper = _fills_of(sandbox, "stable", since_ns, orders), _fills_of(sandbox, "canary", since_ns, orders)
    times = [fill["at_ns"] for fill in live]
    one.seconds = (max(times) - min(times)) / 1e9 if times else 0.0
    one.verdict = drift_verdict(live, paper, p99_max_ms=P99_MAX_MS, min_pairs=MIN_PAIRS,
                                reference=_fills_of(sandbox, "secondary", since_ns, orders))
    expected = len(orders)
    _wait_until(lambda: all(_rows_by_track(sandbox, orders.values())[table].get("stable", 0) >= expected
                            for table in ("orders", "outbox")), timeout=30)
    rows = _rows_by_track(sandbox, orders.values())
    one.canary_rows = {table: rows[table].get("canary", 0) for table in rows}
    one.stable_rows = {table: rows[table].get("stable", 0) for table in rows}
    one.load_average = os.getloadavg()[0]
    v = one.verdict
    print(f"  busy {one.busy} delay {one.delay_ms:g} ms round {one.index + 1}: {v['verdict']}, {v['pairs']} pairs, "
          f"p50 {v['p50_ms']:.3f} ms, p99 |drift| {v['p99_abs_ms']:.3f} ms, late/early beyond "
          f"{v['late_beyond']}/{v['early_beyond']} against the {v['against']} in "
          f"{v['late_seconds']}/{v['early_seconds']} of {one.seconds:.1f} s, canary rows {one.canary_rows}, "
          f"load average {one.load_average:.2f}", flush=True)
    return one


def start_spinners(count: int) -> list[subprocess.Popen]:
    """`count` processes spinning on a CPU each, killed by the kernel if this process dies."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"], preexec_fn=die_with_parent)
            for _ in range(count)]


def stop_spinners(spinners: list[subprocess.Popen]) -> None:
    for spinner in spinners:
        spinner.terminate()
    for spinner in spinners:
        try:
            spinner.wait(timeout=10)
        except subprocess.TimeoutExpired:
            spinner.kill()
            spinner.wait()


def measure(sandbox: Sandbox, busy: int, delays: list[float], rounds: int, orders: int) -> list[Round]:
    spinners = start_spinners(busy)
    try:
        time.sleep(2 if busy else 0)  # the spinners have started and taken their CPUs
        return [measure_round(sandbox, Round(busy, delay, index), orders)
                for index in range(rounds) for delay in delays]
    finally:
        stop_spinners(spinners)
        sandbox.clear_faults("canary")


def _target(delay_ms: float) -> str | None:
    if delay_ms in PASSING_DELAYS_MS:
        return "pass"
    if delay_ms in BREACHING_DELAYS_MS:
        return "breach"
    return None


def summarize(rounds: list[Round], busy: int, delay_ms: float) -> dict:
    mine = [r for r in rounds if r.busy == busy and r.delay_ms == delay_ms]
    verdicts = [r.verdict for r in mine]
    p99s = [v["p99_abs_ms"] for v in verdicts if v["p99_abs_ms"] is not None]
    p50s = [v["p50_ms"] for v in verdicts if v["p50_ms"] is not None]
    target = _target(delay_ms)
    counts = {name: sum(v["verdict"] == name for v in verdicts) for name in ("pass", "breach", "insufficient")}
    return {
        "busy": busy, "delay_ms": delay_ms, "rounds": len(mine), **counts, "target": target,
        "met": None if target is None else counts[target] == len(mine),
        "pairs": sum(v["pairs"] for v in verdicts), "disagree": sum(v["disagree"] for v in verdicts),
        "unmatched": sum(v["unmatched_live"] + v["unmatched_paper"] for v in verdicts),
        "p50_median": statistics.median(p50s), "p50_worst": max(p50s, key=abs),
        "p99_median": statistics.median(p99s), "p99_worst": max(p99s),
        "late": sum(v["late_beyond"] for v in verdicts), "early": sum(v["early_beyond"] for v in verdicts),
        "late_seconds": sum(v["late_seconds"] for v in verdicts),
        "early_seconds": sum(v["early_seconds"] for v in verdicts),
        "round_seconds": statistics.median(r.seconds for r in mine),
        "canary_rows": sum(sum(r.canary_rows.values()) for r in mine),
        "stable_rows": {table: sum(r.stable_rows[table] for r in mine) for table in ("orders", "outbox")},
        "load_average": (min(r.load_average for r in mine), max(r.load_average for r in mine)),
    }


def _target_text(summary: dict) -> str:
    if summary["target"] is None:
        return "no target"
    wanted = "passes" if summary["target"] == "pass" else "breaches"
    if summary["met"]:
        return f"{wanted} every round: met"
    return f"{wanted} every round: **not met** ({summary[summary['target']]} of {summary['rounds']})"


def section(rounds: list[Round], busy_settings: list[int], delays: list[float], orders: int, rounds_per_delay: int,
            load_before: float, canary_rows_total: dict[str, int]) -> str:
    summaries = [summarize(rounds, busy, delay) for busy in busy_settings for delay in delays]
    averages = [r.load_average for r in rounds]
    lines = [f"{rounds_per_delay} rounds of {orders} user orders per delay and setting, the delays in turn; gate: "
             f"p99 |drift| < {P99_MAX_MS:g} ms over at least {MIN_PAIRS} pairs, the pairs beyond counted per side "
             f"against the secondary's paper fills of the same orders; "
             f"{os.cpu_count()} cores; load average {load_before:.2f} before the run, "
             f"{min(averages):.2f}–{max(averages):.2f} after its rounds",
             "",
             "| machine | canary's paper fills late by | rounds passed / breached (insufficient) | target | "
             "p50 drift, signed (ms): median of rounds (worst) | p99 \\|drift\\| (ms): median of rounds (worst) | "
             "pairs beyond 5 ms against the secondary: late / early (summed) | "
             "seconds of orders with more of them late / early (summed) | a round's orders, seconds (median) | "
             "pairs (unmatched, disagreeing) | canary's rows in orders + outbox (stable's) | "
             "load average in its rounds |",
             "|---|---:|---|---|---|---|---|---|---|---|---|---|"]
    for s in summaries:
        machine = "quiet" if s["busy"] == 0 else f"busy ({s['busy']} spinning)"
        lines.append(
            f"| {machine} | {s['delay_ms']:g} ms | {s['pass']} / {s['breach']} ({s['insufficient']}) | "
            f"{_target_text(s)} | {s['p50_median']:.2f} ({s['p50_worst']:.2f}) | "
            f"{s['p99_median']:.2f} ({s['p99_worst']:.2f}) | {s['late']:,} / {s['early']:,} | "
            f"{s['late_seconds']:,} / {s['early_seconds']:,} | {s['round_seconds']:.1f} | "
            f"{s['pairs']:,} ({s['unmatched']}, {s['disagree']}) | "
            f"{s['canary_rows']} ({s['stable_rows']['orders']:,} + {s['stable_rows']['outbox']:,}) | "
            f"{s['load_average'][0]:.2f}–{s['load_average'][1]:.2f} |")
    unmet = [s for s in summaries if s["met"] is False]
    no_row = sum(s["canary_rows"] for s in summaries) == 0 and not any(canary_rows_total.values())
    lines += ["",
              f"No row of the canary's in the store: {'met' if no_row else '**not met**'} (its track's rows of all "
              f"the rounds' orders, read again at the end: orders {canary_rows_total['orders']}, "
              f"outbox {canary_rows_total['outbox']}). "
              + ("Every verdict target met." if not unmet else "Verdict targets not met: " + "; ".join(
                  f"{'quiet' if s['busy'] == 0 else 'busy'} {s['delay_ms']:g} ms: {s['pass']} passed, "
                  f"{s['breach']} breached, {s['insufficient']} insufficient of {s['rounds']}" for s in unmet) + ".")]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delays", type=float, nargs="+", default=[0.0, 2.0, 8.0],
                        help="the canary's paper_fill_delay_ms, in ms, taken in turn each round")
    parser.add_argument("--rounds", type=int, default=10, help="rounds per delay (and per --busy setting)")
    parser.add_argument("--orders", type=int, default=200, help="user orders per round")
    parser.add_argument("--busy", type=int, nargs="+", default=[0],
                        help="processes spinning on a CPU during the rounds; each setting measured in turn")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--write", action="store_true", help="write the table into benchmarks/README.md")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds: expected at least 1, got {args.rounds}")
    if args.orders < MIN_PAIRS:
        parser.error(f"--orders: expected at least the gate's {MIN_PAIRS} pairs, got {args.orders}")
    if any(delay < 0 for delay in args.delays):
        parser.error(f"--delays: expected ms >= 0, got {args.delays}")
    if any(busy < 0 for busy in args.busy):
        parser.error(f"--busy: expected a count >= 0, got {args.busy}")

    def stop_on_term(_signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop_on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in the background, where it is ignored
    random.seed(args.seed)
    load_before = os.getloadavg()[0]
    rounds: list[Round] = []
    with tempfile.TemporaryDirectory(prefix="golive-bench-drift-") as folder:
        sandbox = Sandbox.up(Path(folder) / "sandbox", free_ports=True, owner_pid=os.getpid(), seed=args.seed,
                             rate=0, probe_rate=PROBE_RATE, timeout=90)
        try:
            sandbox.set_weight(0, holder=HOLDER, mirror=True)
            if not sandbox.mirroring():
                raise RuntimeError("mirror: the router reads off after turning it on")
            for busy in args.busy:
                rounds += measure(sandbox, busy, args.delays, args.rounds, args.orders)
            canary_rows_total = _canary_rows_of_all_rounds(sandbox)
        finally:
            sandbox.down()
    table = section(rounds, args.busy, args.delays, args.orders, args.rounds, load_before, canary_rows_total)
    print()
    print(table)
    if args.write:
        write_section("shadow-drift", table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
