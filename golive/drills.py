"""The drills' rules: what each expects, and the saw-tooth ("teeth") in an outbox's lag.

Pure functions over what a drill saw; the flows in `flows/` run the drills and record them.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from golive.plots import png

__all__ = ["CHAOS_SCENARIOS", "OUTBOX_LIMITS", "ChaosScenario", "burst_verdict", "chaos_command_verdict",
           "chaos_verdict", "detect_teeth", "outbox_verdict", "pick_scenario", "plot_lag", "weekly_record"]

# The runbook's outbox-lag budget, seconds.
OUTBOX_LIMITS = {"p50": 2.0, "p95": 10.0, "p99": 30.0, "max": 60.0}


def burst_verdict(statuses: Sequence[int | None], conflicts_before: float | None,
                  conflicts_after: float | None) -> dict:
    """N requests with one idempotency key: exactly one may create the order (201), every other
    must be refused as a conflict (409). More than one success is a duplicate order: money."""
    n = len(statuses)
    created = sum(s == 201 for s in statuses)
    conflicts = sum(s == 409 for s in statuses)
    other = n - created - conflicts
    counted = None if conflicts_before is None or conflicts_after is None else conflicts_after - conflicts_before
    failures = []
    if created > 1:
        failures.append(f"DUPLICATE ORDERS: {created} of {n} requests with one key succeeded ({created - 1} duplicates)")
    if created == 0:
        failures.append(f"no request of {n} created the order")
    if other:
        failures.append(f"{other} requests answered neither 201 nor 409")
    if counted is not None and counted != conflicts:
        failures.append(f"the conflict metric moved by {counted:g}, the service refused {conflicts}")
    return {"requests": n, "created": created, "conflicts": conflicts, "other": other,
            "duplicates": max(0, created - 1), "conflict_metric_delta": counted,
            "metric_spiked_beyond_expected": counted is not None and counted > n - 1,
            "ok": not failures, "failures": failures}


def detect_teeth(values: Sequence[float], min_amplitude: float = 0.5, min_teeth: int = 2) -> dict:
    """A saw-tooth: lag that climbs for a while and then drops back, again and again (a stalled
    worker catching up). Its steps are mostly small rises, broken by a few sharp falls. A fall is
    a run of at most three falling steps losing at least the amplitude (half the series' 10-90 %
    spread, and no less than `min_amplitude`); teeth need at least `min_teeth` falls and 72 % of
    all steps rising or level, so noise (as many falls as rises), a flat line and a steady climb
    (no falls) show none."""
    values = [float(v) for v in values]
    if len(values) < 8:
        return {"teeth": 0, "found": False, "amplitude": None, "rising_share": None}
    ordered = sorted(values)
    spread = ordered[int(0.9 * (len(ordered) - 1))] - ordered[int(0.1 * (len(ordered) - 1))]
    amplitude = max(min_amplitude, 0.5 * spread)
    steps = [b - a for a, b in zip(values, values[1:])]
    falls, i = 0, 0
    while i < len(steps):
        j = i
        while j < len(steps) and steps[j] < 0 and j - i < 3:
            j += 1
        if j > i and -sum(steps[i:j]) >= amplitude:
            falls += 1
        i = max(j, i + 1)
    # A stalled worker's lag may also stand still between climbs: "not falling" counts.
    rising_share = sum(d >= -0.1 * amplitude for d in steps) / len(steps)
    found = falls >= min_teeth and rising_share >= 0.72
    return {"teeth": falls if found else 0, "found": found, "amplitude": round(amplitude, 3),
            "rising_share": round(rising_share, 3)}


def outbox_verdict(samples: Sequence[Mapping[str, float]]) -> dict:
    """The worst of each percentile over the window against the runbook's limits, and teeth in p95."""
    failures = []
    worst = {}
    for name, limit in OUTBOX_LIMITS.items():
        seen = [s[name] for s in samples if s.get(name) is not None]
        worst[name] = max(seen) if seen else None
        if worst[name] is not None and worst[name] >= limit:
            failures.append(f"{name} {worst[name]:.2f} s ≥ {limit:g} s")
    if not samples:
        failures.append("no lag reading")
    teeth = detect_teeth([s["p95"] for s in samples if s.get("p95") is not None])
    if teeth["found"]:
        failures.append(f"teeth: the lag climbed and dropped back {teeth['teeth']} times (a stalling worker)")
    return {"samples": len(samples), "worst": worst, "limits": OUTBOX_LIMITS, "teeth": teeth,
            "ok": not failures, "failures": failures}


@dataclass(frozen=True)
class ChaosScenario:
    name: str
    what: str
    faults: dict  # switched on on the canary for the window (the sandbox's fault names)
    signal: str  # the golden signal that must show it
    expect: str  # what the gate must do while it lasts
    command: str | None = None  # on a real system: run this instead
    notes: dict = field(default_factory=dict)


CHAOS_SCENARIOS = {s.name: s for s in (
    ChaosScenario("slow-database", "every database call takes 400 ms longer", {"slow_db_ms": 400},
                  "api_p95_ms", "not proceed"),
    ChaosScenario("error-burst", "a fifth of requests fail with 5xx", {"error_rate": 0.2},
                  "http_5xx_pct", "not proceed"),
    ChaosScenario("event-loop-block", "the event loop blocks 120 ms at a time", {"loop_block_ms": 120},
                  "event_loop_p95_ms", "not proceed"),
    ChaosScenario("latency-spike", "every response 350 ms slower", {"latency_ms": 350},
                  "api_p95_ms", "not proceed"),
    ChaosScenario("websocket-stall", "the websocket stops ticking", {"ws_stall": 1},
                  "ws_staleness_s", "not proceed"),
)}


def pick_scenario(name: str | None, seed: int | None) -> tuple[str, int | None]:
    """The named scenario, or one chosen at random with a seed to record (drawn when not given)."""
    if name:
        if name not in CHAOS_SCENARIOS:
            raise ValueError(f"scenario: expected one of {', '.join(CHAOS_SCENARIOS)}, got {name!r}")
        return name, None
    seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
    return random.Random(seed).choice(sorted(CHAOS_SCENARIOS)), seed


def chaos_verdict(scenario: ChaosScenario, during: Mapping, after: Mapping) -> dict:
    """A fault switched on must be seen, and gone once switched off. `during` and `after` are the
    judge's verdicts (its JSON form) over the fault's window and a window after it. Fails when:

    1. the gate proceeded during the fault, or passed the scenario's signal;
    2. else the signal was no worse on the canary than on stable (the gate held for another reason);
    3. the signal still breaches its threshold after the fault went off.
    """
    seen = during["signals"][scenario.signal]
    mended = after["signals"][scenario.signal]
    failures = []
    if during["decision"] == "proceed" or seen["verdict"] == "pass":
        failures.append(f"the gate let {scenario.signal} pass during {scenario.name}")
    elif seen["baseline"] is not None and seen["canary"] is not None and seen["canary"] <= seen["baseline"]:
        failures.append(f"{scenario.signal} was no worse on the canary than on stable during {scenario.name}")
    if mended["verdict"] == "breach":
        failures.append(f"{scenario.signal} still over its threshold after the fault went off")
    return {"ok": not failures, "failures": failures,
            "summary": f"{scenario.name}: gate {during['decision'].upper()} during ({scenario.signal} {seen['verdict']}), "
                       f"{mended['verdict']} after",
            "during": {"decision": during["decision"], "reason": during["reason"], "signal": seen},
            "after": {"decision": after["decision"], "signal": mended}}


def chaos_command_verdict(name: str, command: str | None, exit_code: int | None) -> dict:
    """On a real system the configured command is the fault: it must exist and exit 0."""
    if command is None:
        return {"ok": False, "failures": [f"no fault switch and no command for {name}"], "summary": "not run"}
    failures = [] if exit_code == 0 else [f"`{command}` exited {exit_code}"]
    return {"ok": not failures, "failures": failures, "summary": f"`{command}` exit {exit_code}"}


def weekly_record(date: str, results: Mapping[str, Mapping], seed: int | None) -> str:
    """weekly_drill_<YYYYMMDD>.txt in the runbook's form: one PASS/FAIL line a drill, then notes."""
    labels = {"rollback_drill": "Rollback", "chaos": "Chaos", "contract": "Contract",
              "idempotency_burst": "Idempotency", "outbox_smoke": "Outbox"}
    lines = [f"Weekly drill {date}"]
    for key, label in labels.items():
        if key in results:
            r = results[key]
            lines.append(f"{label + ':':<13}{'PASS' if r['ok'] else 'FAIL'}  {r.get('summary', '')}".rstrip())
    lines += ["", "Notes:"]
    notes = [f"- {labels[k]}: {f}" for k, r in results.items() for f in r.get("failures", [])]
    if seed is not None:
        notes.append(f"- chaos scenario chosen at random with seed {seed}")
    lines += notes or ["- all drills as expected"]
    overall = all(r["ok"] for r in results.values())
    lines += ["", f"RESULT: {'PASS' if overall else 'FAIL'}"]
    return "\n".join(lines) + "\n"


def plot_lag(samples: Sequence[Mapping[str, float]]) -> bytes:
    """A PNG of the outbox lag percentiles over the smoke's window, with the runbook's limits."""
    start = samples[0]["at"] if samples else 0

    def draw(axes) -> None:
        xs = [s["at"] - start for s in samples]
        for name in ("p50", "p95", "p99", "max"):
            axes.plot(xs, [s.get(name) for s in samples], label=name)
        for name in ("p50", "p95"):
            axes.axhline(OUTBOX_LIMITS[name], linestyle="--", linewidth=1, color="grey")

    return png(draw, "seconds into the smoke", "outbox lag, s")
