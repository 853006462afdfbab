"""Judge accuracy under peeking: golive's judge beside static thresholds and a Kayenta-style judge.

    python benchmarks/judge_accuracy.py [--seed 7] [--per-class 1000] [--write]

Every rollout is judged at every look (the first 3 intervals, then 4, … up to 15), as a gate
that checks each interval does. With --write the table replaces the results section of
benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from comparators import kayenta_judge, static_judge  # noqa: E402
from readme_section import write_section  # noqa: E402
from scenarios import INTERVAL_SECONDS, INTERVALS, generate  # noqa: E402

from golive.judge import judge  # noqa: E402
from golive.signals import CATALOGUE  # noqa: E402
from golive.stage import only_traffic_missing  # noqa: E402
from golive.scenario import parse_scenario  # noqa: E402

FIRST_LOOK = 3
CLASSES = ("healthy", "breach", "deviation", "nodata")


def golive_judge(scenario: dict) -> str:
    """The decision, with a hold for lack of traffic alone told apart as "extend" (what the
    stage's gate makes of it: the window grows, it is not re-measured)."""
    verdict = judge(parse_scenario(scenario))
    if only_traffic_missing(verdict.decision, {n: v.verdict for n, v in verdict.signals.items()}):
        return "extend"
    return verdict.decision


JUDGES: dict[str, Callable[[dict], str]] = {
    "golive": golive_judge,
    "static thresholds": static_judge,
    "Kayenta-style MW": kayenta_judge,
}


def decisions(rollout, fn) -> list[str]:
    return [fn(rollout.scenario(look)) for look in range(FIRST_LOOK, INTERVALS + 1)]


def first(seq: list[str], word: str) -> int | None:
    return next((i + FIRST_LOOK for i, d in enumerate(seq) if d == word), None)


def _rate(hits: int, n: int) -> str:
    return f"{100 * hits / n:.1f} %" if n else "–"


# A stage whose canary traffic would show fewer events than this at the threshold cannot tell a
# breach from health: even zero events observed is likely (e^-3 = 5 %) for a canary at the limit.
TESTABLE_EVENTS = 3.0
_SIGNALS = {s.name: s for s in CATALOGUE}


def events_at_threshold(rollout) -> float | None:
    """Events the breached signal's canary would show over the whole stage at its threshold
    (None: a level signal, always testable)."""
    sig = _SIGNALS[rollout.signal]
    arms = [(i[rollout.signal]["canary"], i[rollout.signal]["baseline"]) for i in rollout.intervals]
    arms = [(c, b) for c, b in arms if c.get("value") is not None and c.get("total")]
    if sig.kind == "ratio":
        return sum(c["total"] for c, _ in arms) * sig.threshold / 100
    if sig.rule == "max_ratio_to_baseline":
        base_bad = sum(b.get("bad") or 0 for _, b in arms)
        base_total = sum(b.get("total") or 0 for _, b in arms)
        return sig.threshold * base_bad / base_total * sum(c["total"] for c, _ in arms) if base_total else 0.0
    if sig.kind == "rate":
        minutes = INTERVAL_SECONDS / 60
        return sum(sig.threshold * minutes * c["total"] / (c["total"] + (b.get("total") or 0)) for c, b in arms)
    return None


def evaluate(rollouts, fn) -> dict[str, str]:
    by_class: dict[str, list[list[str]]] = {c: [] for c in CLASSES}
    for r in rollouts:
        by_class[r.label].append(decisions(r, fn))
    healthy, breach, deviation, nodata = (by_class[c] for c in CLASSES)
    breach_rollouts = [r for r in rollouts if r.label == "breach"]
    testable = [d for r, d in zip(breach_rollouts, breach)
                if (events_at_threshold(r) or TESTABLE_EVENTS) >= TESTABLE_EVENTS]
    looks_rollback = [first(d, "rollback") for d in breach if first(d, "rollback")]
    looks_proceed = [first(d, "proceed") for d in healthy if first(d, "proceed")]
    return {
        "false rollback (healthy, any look)": _rate(sum("rollback" in d for d in healthy), len(healthy)),
        "false hold (healthy, last look)": _rate(sum(d[-1] != "proceed" for d in healthy), len(healthy)),
        "… of which too little traffic alone (the window extends)": _rate(sum(d[-1] == "extend" for d in healthy),
                                                                          len(healthy)),
        "breach rolled back (by last look)": _rate(sum("rollback" in d for d in breach), len(breach)),
        f"… where the stage can show it (≥ {TESTABLE_EVENTS:g} events expected at the threshold; "
        f"{len(testable)}/{len(breach)})": _rate(sum("rollback" in d for d in testable), len(testable)),
        "breach proceeded (any look)": _rate(sum("proceed" in d for d in breach), len(breach)),
        "deviation not proceeded (any look)": _rate(sum("proceed" not in d for d in deviation), len(deviation)),
        "deviation not proceeded (last look)": _rate(sum(d[-1] != "proceed" for d in deviation), len(deviation)),
        "nodata proceeded (any look)": _rate(sum("proceed" in d for d in nodata), len(nodata)),
        "looks to rollback (breach, mean)": f"{np.mean(looks_rollback):.1f}" if looks_rollback else "–",
        "looks to proceed (healthy, mean)": f"{np.mean(looks_proceed):.1f}" if looks_proceed else "–",
    }


def jsonl_throughput(rollouts) -> tuple[float, float]:
    """Scenarios per second through `golive judge --jsonl` on one process: per CPU second of that
    process (what one core does, whatever else the machine runs) and per wall-clock second."""
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        count = 0
        for r in rollouts:
            for look in range(FIRST_LOOK, INTERVALS + 1):
                f.write(json.dumps(r.scenario(look)) + "\n")
                count += 1
        path = f.name
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cli", "judge", "--jsonl", path], check=True, stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    Path(path).unlink()
    return count / cpu, count / elapsed


def render(results: dict[str, dict[str, str]], meta: str, speed: tuple[float, float]) -> str:
    names = list(results)
    rows = list(next(iter(results.values())))
    lines = [f"| measure | {' | '.join(names)} |", "|---|" + "---|" * len(names)]
    for row in rows:
        lines.append(f"| {row} | " + " | ".join(results[n][row] for n in names) + " |")
    lines.append(f"| scenarios/s (`golive judge --jsonl`, one process, per CPU second) | {speed[0]:.0f} | – | – |")
    lines.append(f"| … per wall-clock second, on the machine as loaded during the run | {speed[1]:.0f} | – | – |")
    return f"{meta}\n\n" + "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--per-class", type=int, default=1000)
    parser.add_argument("--write", action="store_true", help="update benchmarks/README.md")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    rollouts = [generate(label, rng) for label in CLASSES for _ in range(args.per_class)]
    results = {name: evaluate(rollouts, fn) for name, fn in JUDGES.items()}
    speed = jsonl_throughput(rollouts[: min(len(rollouts), 400)])
    meta = (
        f"seed {args.seed}, {args.per_class} rollouts per class, each judged at looks "
        f"{FIRST_LOOK}..{INTERVALS} ({INTERVALS - FIRST_LOOK + 1} looks)"
    )
    table = render(results, meta, speed)
    print(table)
    if args.write:
        write_section("judge-accuracy", table)


if __name__ == "__main__":
    main()
