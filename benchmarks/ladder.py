"""The whole ladder: seeded rollouts walked shadow → 1 → 5 → 25 → 50 → 100 % through the stage's gate.

    python benchmarks/ladder.py [--seed 11] [--per-class 100] [--jobs 2] [--no-shadow] [--write]

Each rollout is one release of a service with a given traffic (300, 1,000, 3,000 or 10,000
requests a minute), walked through every stage by `golive.stage.StageMachine` with the runbook's
timings (dwell 15 min, 30 at 100 %, a judgement every 60 s, a Hold re-measures 10 min within a
20-minute budget; at 1 % too little traffic to tell leaves those signals to 5 %, from 5 % on the
window extends to at most 2x the dwell, then a person is asked). Every
minute the judge sees the stage's window so far, generated as in `scenarios.py` (diurnal drift
shared by both arms, per-request latency, overdispersed counts, warm-up noise, scrape gaps).
A pause is answered at once by a person who approves (what they are shown is that only traffic
is missing); the count of pauses says how often one was asked.

The shadow stage comes first, as the go-live runs it where the router mirrors: users stay on
stable and the canary answers a copy of all their requests (both arms see the whole traffic),
judged as a mirrored scenario (weight 0) on the signals a mirror shows, and on CSP from the
browser check's page loads (`BROWSER_PAGES_PER_MINUTE` on each track), through the same gate
(dwell, holds, extension, pause). A rollback there exposes no user. The signals it ends green on
are passed to the later stages as `shadow_proven`, which the judge credits at 1 % and 5 %
(`JudgePolicy.shadow_credit_max_percent`). The shadow stage's own checks (stable slowed by the
mirror, live against paper fills) are not simulated. Beside it golive walks the same releases
without the shadow stage, 1 % first, as before it (`--no-shadow`: that walk only). Classes:

- healthy: the canary behaves as stable;
- breach: one signal of the canary is over its threshold from the start (as `scenarios.py`);
- deviation: one signal clearly worse than stable, inside its threshold (as `scenarios.py`).

Beside golive's judge, static thresholds and the Kayenta-style judge (`comparators.py`) gate the
same rollouts through the same state machine, 1 % first (they have no mirrored mode). With --write
the tables replace the ladder section of benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from comparators import kayenta_judge, static_judge  # noqa: E402
from readme_section import write_section  # noqa: E402
from scenarios import _BREACHES, _DEVIATIONS, Arm, _counts, _interval  # noqa: E402

from golive.judge import judge  # noqa: E402
from golive.scenario import Observation, Scenario, Series  # noqa: E402
from golive.signals import CATALOGUE, judged_signals  # noqa: E402
from golive.settings import PolicySettings, ShadowSettings  # noqa: E402
from golive.stage import SHADOW_STAGE, StageMachine, StagePlan, deferral_stage, stage_name  # noqa: E402

STAGES = (1, 5, 25, 50, 100)
# What the shadow stage judges: what the mirror shows, and what its browser check shows (CSP).
SHADOW_JUDGED = judged_signals(CATALOGUE, mirrored=True, browser=True)
MIRROR_SHOWS = frozenset(s.name for s in CATALOGUE if s.mirror_visible)
BROWSER_SHOWS = frozenset(s.name for s in CATALOGUE if s.browser_visible)
SHADOW_SHOWS = MIRROR_SHOWS | BROWSER_SHOWS
# The browser check's page loads a minute on each track (the default), and the model's page: one
# request in 20 is a page load (a page and the API calls it makes), so that the catalogue's CSP
# rate per request (1 in 100) is one report every five pages, as the sandbox's page gives.
BROWSER_PAGES_PER_MINUTE = ShadowSettings().browser_pages_per_minute
PAGES_PER_REQUEST = 0.05
RATES = (300, 1000, 3000, 10000)
CLASSES = ("healthy", "breach", "deviation")
INTERVAL = 60.0
DWELL, FINAL_DWELL = 900.0, 1800.0
HOLD, HOLD_BUDGET = 600.0, 1200.0
DEFER_UP_TO = PolicySettings().defer_insufficient_up_to_percent


def plan(percent: int) -> StagePlan:
    dwell = FINAL_DWELL if percent == 100 else DWELL
    return StagePlan(percent=percent, interval_seconds=INTERVAL, dwell_seconds=dwell, max_dwell_seconds=2 * dwell,
                     hold_seconds=HOLD, hold_budget_seconds=HOLD_BUDGET, on_insufficient_traffic="pause",
                     defers_to=deferral_stage(percent, (SHADOW_STAGE, *STAGES), DEFER_UP_TO))


@dataclass
class Release:
    """What a class does to the canary; the same release is replayed for every judge."""

    label: str
    signal: str | None
    canary: Arm
    per_minute: float
    phase: float
    seed: int


@dataclass
class Outcome:
    ending: str = "live"  # live | rollback
    stopped_at: int | None = None  # the stage whose gate rolled back
    reason: str = ""
    reached_full: bool = False
    holds: int = 0
    pauses: int = 0
    deferrals: int = 0  # stages that left signals short of traffic to the next
    paused: list[tuple[int, tuple[str, ...]]] = field(default_factory=list)  # stage, signals held for traffic
    flagged: bool = False  # held or rolled back for something other than traffic
    proven: frozenset[str] = frozenset()  # the signals the shadow stage ended green on
    signal: str | None = None  # the release's faulty signal (breach, deviation)
    minutes: float = 0.0
    exposure: float = 0.0  # sum of canary share x minutes served
    stage_minutes: dict[int, float] = field(default_factory=dict)


def release(label: str, per_minute: float, rng: np.random.Generator) -> Release:
    canary, signal = Arm(), None
    if label == "breach":
        signal = str(rng.choice(list(_BREACHES)))
        _BREACHES[signal](canary, rng)
    elif label == "deviation":
        signal = str(rng.choice(list(_DEVIATIONS)))
        _DEVIATIONS[signal](canary, rng)
    return Release(label, signal, canary, per_minute, float(rng.uniform(0, 2 * math.pi)), int(rng.integers(2**31)))


def _observation(o: dict) -> Observation:
    return Observation(o.get("value"), o.get("bad"), o.get("total"))


def golive_gate(window: list[dict], percent: int,
                proven: frozenset[str] = frozenset()) -> tuple[str, dict[str, str], tuple[str, ...]]:
    signals = {name: Series(tuple(_observation(i[name]["canary"]) for i in window),
                            tuple(_observation(i[name]["baseline"]) for i in window)) for name in window[0]}
    if percent == SHADOW_STAGE:
        scenario = Scenario(0.0, INTERVAL, signals, SHADOW_JUDGED, mirrored=True, browser=True)
    else:
        scenario = Scenario(float(percent), INTERVAL, signals, shadow_proven=proven)
    verdict = judge(scenario)
    return verdict.decision, {n: v.verdict for n, v in verdict.signals.items()}, verdict.triggers


def _as_dict(window: list[dict], percent: int) -> dict:
    signals = {name: {"canary": [i[name]["canary"] for i in window], "baseline": [i[name]["baseline"] for i in window]}
               for name in window[0]}
    return {"stage_percent": percent, "interval_seconds": INTERVAL, "signals": signals}


def comparator_gate(fn):
    def gate(window: list[dict], percent: int, proven: frozenset[str] = frozenset()
             ) -> tuple[str, dict[str, str], tuple[str, ...]]:
        decision = fn(_as_dict(window, percent))
        return decision, {}, ("breach",) if decision == "rollback" else ()
    return gate


GATES = {
    "golive": golive_gate,
    "static thresholds": comparator_gate(static_judge),
    "Kayenta-style MW": comparator_gate(kayenta_judge),
}


def mirrored_interval(rng: np.random.Generator, canary: Arm, stable: Arm, requests: int, drift: float,
                      minute: int) -> dict:
    """One minute of the shadow stage: both arms answer the same `requests` (stable the users',
    the canary a copy), each measured on its own, of which what a mirror shows is kept; and the
    browser check's page loads of each arm, with the CSP reports they cause."""
    arms = _interval(rng, {"canary": canary}, {"canary": requests}, drift, minute)
    for name, baseline in _interval(rng, {"baseline": stable}, {"baseline": requests}, drift, minute).items():
        arms[name].update(baseline)
    shown = {name: obs for name, obs in arms.items() if name in MIRROR_SHOWS}
    pages = BROWSER_PAGES_PER_MINUTE * INTERVAL / 60
    reports = {arm: _counts(rng, pages, behaviour.csp_rate / PAGES_PER_REQUEST)
               for arm, behaviour in (("canary", canary), ("baseline", stable))}
    shown["csp_violations_per_min"] = {arm: {"value": None} if rng.random() < 0.03 else  # a scrape gap
                                       {"value": bad / (INTERVAL / 60), "bad": bad, "total": pages}
                                       for arm, bad in reports.items()}
    return shown


def walk(rel: Release, gate_name: str, shadow: bool = True) -> Outcome:
    """One release through the stages (the shadow stage first when `shadow`); the traffic is
    replayed from the release's seed, so every judge sees the same minutes for as long as their
    ladders agree."""
    gate = GATES[gate_name]
    rng = np.random.default_rng(rel.seed)
    out = Outcome(signal=rel.signal)
    minute = 0
    stable = Arm()
    for percent in (SHADOW_STAGE, *STAGES) if shadow else STAGES:
        out.reached_full = out.reached_full or percent == 100
        machine = StageMachine(plan(percent), started_at=minute * INTERVAL)
        window: list[dict] = []
        stage_start = minute
        while True:
            drift = 1.0 + 0.2 * math.sin(rel.phase + minute / 10)
            traffic = rel.per_minute * drift
            # `_interval` warms the canary up in its first two minutes: the stage's, here.
            if percent == SHADOW_STAGE:
                window.append(mirrored_interval(rng, rel.canary, stable, int(rng.poisson(traffic)), drift,
                                                minute - stage_start))
            else:
                requests = {"canary": int(rng.poisson(traffic * percent / 100)),
                            "baseline": int(rng.poisson(traffic * (100 - percent) / 100))}
                window.append(_interval(rng, {"canary": rel.canary, "baseline": stable}, requests, drift,
                                        minute - stage_start))
            minute += 1
            decision, verdicts, triggers = gate(window, percent, out.proven)
            step = machine.observe(minute * INTERVAL, decision, verdicts, triggers)
            if step.action == "hold":
                out.holds += 1
                out.flagged = True
                window = []
            elif step.action in ("pause", "proceed", "rollback"):
                break
        spent = minute - stage_start
        out.stage_minutes[percent] = spent
        out.exposure += percent / 100 * spent
        if step.action == "rollback":
            out.ending, out.stopped_at, out.reason, out.flagged = "rollback", percent, ",".join(step.triggers), True
            break
        out.deferrals += bool(step.deferred)
        if step.action == "pause":
            out.pauses += 1  # a person approves at once
            out.paused.append((percent, tuple(name for name, word in verdicts.items() if word == "insufficient")))
        if percent == SHADOW_STAGE:
            out.proven = frozenset(name for name, word in verdicts.items() if word == "pass")
    out.minutes = float(minute)
    return out


def _walk_all(job: tuple[list[Release], str, bool]) -> list[Outcome]:
    releases, gate_name, shadow = job
    return [walk(r, gate_name, shadow) for r in releases]


def _pct(hits: int, n: int) -> str:
    return f"{100 * hits / n:.1f} %" if n else "–"


def _q(values: list[float], q: float, fmt: str = "{:.3g}") -> str:
    return fmt.format(float(np.quantile(values, q))) if values else "–"


def _stage(percent: int) -> str:
    return stage_name(percent) if percent == SHADOW_STAGE else f"{percent} %"


def _by_stage(outcomes: list[Outcome]) -> str:
    paused = Counter(percent for o in outcomes for percent, _ in o.paused)
    stages = (SHADOW_STAGE, *STAGES)
    return ", ".join(f"{_stage(s)}: {paused[s] / len(outcomes):.2f}" for s in stages if paused[s]) or "–"


def _exposure(outcomes: list[Outcome]) -> str:
    values = [o.exposure for o in outcomes]
    return f"{_q(values, 0.5)}, {_q(values, 0.95)}"


def summarise(results: dict[str, list[Outcome]], shadow: bool) -> dict[str, str]:
    healthy, breach, deviation = (results[c] for c in CLASSES)
    live = [o for o in healthy if o.ending == "live"]
    stopped = Counter(o.stopped_at for o in breach if o.ending == "rollback")
    stopped_text = ", ".join(f"{_stage(s)}: {100 * stopped[s] / len(breach):.0f}"
                             for s in (SHADOW_STAGE, *STAGES) if stopped[s]) or "–"
    shown = [o for o in breach if o.signal in SHADOW_SHOWS]
    unseen = [o for o in breach if o.signal not in SHADOW_SHOWS]
    in_shadow = [o for o in breach if o.ending == "rollback" and o.stopped_at == SHADOW_STAGE]
    return {
        "healthy: Live without a rollback": _pct(len(live), len(healthy)),
        "healthy: rolled back (false rollback)": _pct(len(healthy) - len(live), len(healthy))
        + (f" ({', '.join(sorted({o.reason for o in healthy if o.ending == 'rollback'}))})"
           if len(live) < len(healthy) else ""),
        "healthy: pauses per rollout, a person asked (mean)": f"{np.mean([o.pauses for o in healthy]):.2f}",
        "healthy: pauses per rollout by stage": _by_stage(healthy),
        "healthy: Live without asking a person (no pause)": _pct(sum(o.pauses == 0 for o in live), len(healthy)),
        "healthy: stages that left signals short of traffic to the next (per rollout)":
            f"{np.mean([o.deferrals for o in healthy]):.2f}",
        "healthy: holds per rollout (mean)": f"{np.mean([o.holds for o in healthy]):.2f}",
        "healthy: minutes to Live (median, p95)": f"{_q([o.minutes for o in live], 0.5, '{:.0f}')}, "
                                                  f"{_q([o.minutes for o in live], 0.95, '{:.0f}')}",
        "breach: reached 100 %": _pct(sum(o.reached_full for o in breach), len(breach)),
        "breach: stopped at stage (% of breaches)": stopped_text,
        "breach: caught in the shadow, no user exposed": _pct(len(in_shadow), len(breach)) if shadow else "–",
        "breach: exposure, full-traffic minutes (median, p95)": _exposure(breach),
        "breach the shadow shows (mirror, browser): caught in the shadow (of how many)": (
            f"{_pct(sum(o in in_shadow for o in shown), len(shown))} (of {len(shown)})" if shadow else "–"),
        "breach the shadow shows (mirror, browser): exposure (median, p95; max)": (
            f"{_exposure(shown)}; {_q([o.exposure for o in shown], 1.0)}"),
        "breach the shadow cannot show (websocket): exposure (median, p95)": _exposure(unseen),
        "breach: pauses per rollout (mean)": f"{np.mean([o.pauses for o in breach]):.2f}",
        "deviation: flagged (held or rolled back)": _pct(sum(o.flagged for o in deviation), len(deviation)),
        "deviation: reached Live unflagged": _pct(sum(o.ending == "live" and not o.flagged for o in deviation),
                                                  len(deviation)),
    }


def render(table: dict[str, dict[int, dict[str, str]]], meta: str) -> str:
    lines = [meta, ""]
    for name, by_rate in table.items():
        lines += [f"**{name}**", "", "| measure | " + " | ".join(f"{r:,} req/min" for r in by_rate) + " |",
                  "|---|" + "---|" * len(by_rate)]
        rows = list(next(iter(by_rate.values())))
        for row in rows:
            lines.append(f"| {row} | " + " | ".join(by_rate[r][row] for r in by_rate) + " |")
        lines.append("")
    return "\n".join(lines).rstrip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--per-class", type=int, default=60, help="rollouts per class and traffic")
    parser.add_argument("--rates", type=int, nargs="*", default=list(RATES))
    parser.add_argument("--judges", nargs="*", default=list(GATES))
    parser.add_argument("--no-shadow", action="store_true", help="only the ladder without the shadow stage")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--write", action="store_true", help="update benchmarks/README.md")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    releases = {rate: {c: [release(c, rate, rng) for _ in range(args.per_class)] for c in CLASSES}
                for rate in args.rates}
    # (table, judge, shadow stage first): golive walks both ladders; the comparators have no mirrored mode.
    walks = [] if args.no_shadow or "golive" not in args.judges else [("golive, shadow stage first", "golive", True)]
    walks += [(f"{name}, 1 % first (no shadow stage)" if name == "golive" and walks else name, name, False)
              for name in args.judges]
    jobs = [(releases[rate][c], name, shadow) for _, name, shadow in walks for rate in args.rates for c in CLASSES]
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        outcomes = iter(pool.map(_walk_all, jobs))
        table = {title: {rate: summarise({c: next(outcomes) for c in CLASSES}, shadow) for rate in args.rates}
                 for title, _, shadow in walks}
    meta = (f"seed {args.seed}, {args.per_class} rollouts per class and traffic; a pause is approved at once "
            f"({time.perf_counter() - start:.0f} s on {args.jobs} worker processes)")
    text = render(table, meta)
    print(text)
    if args.write:
        write_section("ladder", text)


if __name__ == "__main__":
    main()
