"""Consistency drift in the shadow stage: the live fill of an order (stable's) against the paper
fill of the same order (the canary's, on the mirrored copy), matched by request id.

Both services stamp a fill with the machine's monotonic clock in nanoseconds at the moment they
decide it (both tracks run on one machine and share CLOCK_MONOTONIC); the router gives a user's
order and its copy the same request id, which no client can set. For each matched pair

    drift_ms = (paper.at_ns - live.at_ns) / 1e6      (positive: the paper fill came later)

and the pair agrees when both decided alike: same symbol, side, quantity and status, and the same
price where both priced the fill. A pair that disagrees is a breach on its own, however few there are.

The runbook's gate is the 99th percentile of |drift| under a limit (5 ms): at most 1 % of the
pairs at the limit or beyond. But the two services wait for the same CPUs: on a busy machine one
of them is descheduled for tens of ms now and then, and a healthy canary's p99 |drift| was seen
at 28 ms, its median at 0.3 ms, its worst pairs on both sides (stable's fill 43 ms late, the
canary's 18 ms late). A machine delays either side; a canary's own lateness (or haste) delays one.
So the pairs beyond the limit are counted per side, and the gate fails when the side with more
still has more than 1 % of all pairs beyond the limit after the other side's count is taken off as
the machine's, and the imbalance is beyond chance: a sequential sign test (`_stats.sign_log_evalue`,
anytime-valid, so the stage may look at every interval), at `DRIFT_ALPHA` split between the two
sides. A canary 8 ms late puts every pair on one side; a healthy one on a busy machine, a few on both.

The test's votes are seconds, not pairs. A busy machine favours one process for a stretch (the one
not sharing a CPU with other work), so the pairs of one stretch lean the same way and are one event,
not many: with processes spinning and a browser loading pages, votes by pair rolled a healthy
canary back in twenty-second stages cut from the run, votes by second in none
(`benchmarks/shadow_drift_regimes.py`). Each second of orders (by the live fill's time) with pairs
beyond the limit is one vote, for the side with more of them (a tie, none), and that side must be
the one with more pairs. A canary late on every order votes every second, so it is told once
eleven seconds of orders have pairs beyond the limit, however many orders a second there are (the
runbook's shadow is 15 minutes). What this does not cover: a machine favouring one service for
eleven seconds or more in a row would still look like drift; a canary whose own lateness comes in
bursts (its own pauses) is told only when the bursts outnumber the machine's; and the second still
being filled may change its vote at the next look, which makes the test's anytime guarantee an
approximation.

The copy also travels a path the user's order does not (the router's mirror), and on a saturated
machine that path alone made a healthy canary's paper fills late more often than early (18 pairs
of 159 late by 5 ms or more, 2 early). Where the target has a secondary (a second stable instance
the mirror copies the same orders to), its paper fills travel that path too: the sides are then
counted on the canary's paper fill against the secondary's paper fill of the same order, which
leaves the canary's own lateness. The p99 |drift| reported stays live against paper, the runbook's.

Quantiles are nearest-rank: the q-quantile of n values is the ceil(q * n)-th smallest. It is
always a value that was seen, never interpolated down: below 100 pairs the p99 is the largest drift.

Pure: the flow reads the fills (`tasks.service.read_fills`) and asks here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from golive._stats import sign_log_evalue

__all__ = ["FILL_FIELDS", "HISTOGRAM_EDGES_MS", "MAX_EXAMPLES", "checked_fills", "drift_verdict", "nearest_rank"]

# Each bucket is [edge, next edge) of |drift| in ms; the last one has no upper end.
HISTOGRAM_EDGES_MS = (0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0)
MAX_EXAMPLES = 5
DRIFT_ALPHA = 0.01  # of calling the machine's scheduling noise a canary's drift, both sides together
VOTE_NS = 1_000_000_000  # one vote of the sign test: the pairs beyond the limit of one second of orders
BEYOND_SHARE = 0.01  # the share of pairs at the limit or beyond a p99 allows
# What the sides of the pairs beyond the limit are counted against, as the detail says it.
_THAN = {"live": "", "secondary": " (than the secondary's paper fill of the same order)"}
# What two fills of one order must share to agree (the price only where both have one).
_AGREEING_FIELDS = ("symbol", "side", "quantity", "status")
FILL_FIELDS = ("request_id", "at_ns", "paper", "symbol", "side", "quantity", "price", "status")


def nearest_rank(values: Sequence[float], q: float) -> float:
    """The q-quantile of `values` (not empty) by the nearest-rank method: the ceil(q * n)-th smallest."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def _disagreement(live: Mapping[str, Any], paper: Mapping[str, Any]) -> str | None:
    differing = [name for name in _AGREEING_FIELDS if live.get(name) != paper.get(name)]
    if live.get("price") is not None and paper.get("price") is not None and live["price"] != paper["price"]:
        differing.append("price")
    if not differing:
        return None
    return ", ".join(f"{name} {live.get(name)!r} live vs {paper.get(name)!r} paper" for name in differing)


def _by_request_id(fills: Sequence[Mapping[str, Any]], paper: bool, side: str) -> tuple[dict[str, Mapping], int]:
    """The fills of one side by request id (the first of any id seen twice), and how many were left over."""
    kept: dict[str, Mapping] = {}
    extra = 0
    for index, fill in enumerate(fills):
        if not isinstance(fill, Mapping):
            raise ValueError(f"{side}[{index}]: expected a fill object, got {type(fill).__name__}")
        if fill.get("paper") is not paper:
            continue
        request_id, at_ns = fill.get("request_id"), fill.get("at_ns")
        if not isinstance(request_id, str) or not request_id:
            raise ValueError(f"{side}[{index}].request_id: expected a non-empty string, got {request_id!r}")
        if isinstance(at_ns, bool) or not isinstance(at_ns, int):
            raise ValueError(f"{side}[{index}].at_ns: expected whole nanoseconds, got {at_ns!r}")
        if request_id in kept:
            extra += 1
        else:
            kept[request_id] = fill
    return kept, extra


def _votes_by_second(beyond: Sequence[tuple[int, float]]) -> list[bool]:
    """The sign test's votes, in time order: for each second of orders (`VOTE_NS`, by the live
    fill's time) with pairs beyond the limit, True when more of them were late, False when more
    were early; a second with as many each way casts none."""
    by_second: dict[int, int] = {}
    for at_ns, drift_ms in beyond:
        second = at_ns // VOTE_NS
        by_second[second] = by_second.get(second, 0) + (1 if drift_ms > 0 else -1)
    return [lead > 0 for _, lead in sorted(by_second.items()) if lead]


def _histogram(magnitudes: Sequence[float]) -> list[dict[str, float | int | None]]:
    counts = [0] * len(HISTOGRAM_EDGES_MS)
    for value in magnitudes:
        counts[max(i for i, edge in enumerate(HISTOGRAM_EDGES_MS) if value >= edge)] += 1
    uppers = [*HISTOGRAM_EDGES_MS[1:], None]
    return [{"from_ms": low, "to_ms": high, "pairs": n} for low, high, n in zip(HISTOGRAM_EDGES_MS, uppers, counts)]


def drift_verdict(live: Sequence[Mapping[str, Any]], paper: Sequence[Mapping[str, Any]], p99_max_ms: float,
                  min_pairs: int, reference: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The drift between live fills and the paper fills of the same orders, and its verdict.

    Args:
        live: stable's fills; only those with `paper` False are read.
        paper: the canary's fills; only those with `paper` True are read.
        p99_max_ms: the p99 of |drift| must stay under this.
        min_pairs: matched pairs needed before the p99 is judged.
        reference: the secondary's fills (only paper ones read), or None: with at least `min_pairs`
            orders filled by all three, a p99 at or over the limit is judged on the canary's paper
            fills against the secondary's (`against`: "secondary"), else against the live fills.

    Returns:
        `verdict`: "breach" when a matched pair disagrees, or with at least `min_pairs` pairs when
        p99 |drift| >= `p99_max_ms` and one side's pairs at the limit or beyond outnumber the other's
        by over 1 % of the pairs, and lead in more seconds of orders beyond chance; "insufficient"
        below `min_pairs` pairs; "pass" else. With
        `pairs`, `unmatched_live`, `unmatched_paper` (fills of one side without the other's, and
        repeated ids), `disagree`, `p50_ms` (signed), `p99_abs_ms`, `max_abs_ms` (None without pairs),
        `late_beyond` and `early_beyond` (the pairs at or over the limit on each side, against
        what `against` names), `late_seconds` and `early_seconds` (the sign test's votes: seconds
        of orders with more of those pairs late, or early), `reference_pairs` (orders the
        secondary filled too), `detail` (one line), `examples` (up to 5 pairs, disagreeing ones
        first, then the largest |drift|) and `histogram` (pairs per bucket of |drift|,
        `HISTOGRAM_EDGES_MS`).

    Raises:
        ValueError: a threshold out of range or a fill without a request id or a whole `at_ns`,
        one line naming it.
    """
    if isinstance(p99_max_ms, bool) or not isinstance(p99_max_ms, (int, float)) or not 0 < p99_max_ms < math.inf:
        raise ValueError(f"p99_max_ms: expected a positive number of ms, got {p99_max_ms!r}")
    if isinstance(min_pairs, bool) or not isinstance(min_pairs, int) or min_pairs < 1:
        raise ValueError(f"min_pairs: expected a whole number >= 1, got {min_pairs!r}")
    lives, extra_live = _by_request_id(live, False, "live")
    papers, extra_paper = _by_request_id(paper, True, "paper")
    matched = [request_id for request_id in lives if request_id in papers]
    pairs = []
    for request_id in matched:
        drift_ms = (papers[request_id]["at_ns"] - lives[request_id]["at_ns"]) / 1e6
        pairs.append({"request_id": request_id, "drift_ms": drift_ms,
                      "disagreement": _disagreement(lives[request_id], papers[request_id]),
                      "live": dict(lives[request_id]), "paper": dict(papers[request_id])})
    magnitudes = [abs(pair["drift_ms"]) for pair in pairs]
    disagreeing = [pair for pair in pairs if pair["disagreement"]]
    p99 = nearest_rank(magnitudes, 0.99) if pairs else None
    references = _by_request_id(reference, True, "reference")[0] if reference is not None else {}
    in_order = sorted(pairs, key=lambda pair: pair["live"]["at_ns"])
    referenced = [pair for pair in in_order if pair["request_id"] in references]
    against = "secondary" if len(referenced) >= min_pairs else "live"
    if against == "secondary":
        judged = [(pair, (pair["paper"]["at_ns"] - references[pair["request_id"]]["at_ns"]) / 1e6)
                  for pair in referenced]
    else:
        judged = [(pair, pair["drift_ms"]) for pair in in_order]
    beyond = [(pair["live"]["at_ns"], d) for pair, d in judged if abs(d) >= p99_max_ms]
    late, early = sum(d > 0 for _, d in beyond), sum(d < 0 for _, d in beyond)
    votes = _votes_by_second(beyond)
    # The side with more pairs must win the seconds too, beyond chance (either side could have been it).
    one_sided = sign_log_evalue(vote is (late > early) for vote in votes) >= math.log(2 / DRIFT_ALPHA)
    summary = {
        "pairs": len(pairs),
        "unmatched_live": len(lives) - len(pairs) + extra_live,
        "unmatched_paper": len(papers) - len(pairs) + extra_paper,
        "disagree": len(disagreeing),
        "p50_ms": nearest_rank([pair["drift_ms"] for pair in pairs], 0.5) if pairs else None,
        "p99_abs_ms": p99,
        "max_abs_ms": max(magnitudes) if pairs else None,
        "late_beyond": late, "early_beyond": early,
        "late_seconds": sum(votes), "early_seconds": len(votes) - sum(votes),
        "against": against, "reference_pairs": len(referenced),
    }
    if disagreeing:
        first = disagreeing[0]
        verdict = "breach"
        detail = (f"{len(disagreeing)} of {len(pairs)} paper fills disagree with the live fill of the same order, "
                  f"e.g. request {first['request_id']}: {first['disagreement']}")
    elif len(pairs) < min_pairs:
        verdict = "insufficient"
        detail = f"{len(pairs)} matched pairs, fewer than the {min_pairs} needed to judge the drift"
    elif p99 >= p99_max_ms and abs(late - early) > BEYOND_SHARE * len(judged) and one_sided:
        verdict = "breach"
        side, other = ("late", "early") if late > early else ("early", "late")
        detail = (f"p99 |drift| {p99:.3f} ms over {len(pairs)} pairs, at or over {p99_max_ms:g} ms: {max(late, early)} "
                  f"paper fills that {side}{_THAN[against]} against {min(late, early)} the other way, {side} in "
                  f"{summary[side + '_seconds']} seconds of orders against {summary[other + '_seconds']}: beyond "
                  f"the machine's noise")
    else:
        verdict = "pass"
        where = (f"under {p99_max_ms:g} ms" if p99 < p99_max_ms else f"at or over {p99_max_ms:g} ms, but "
                 f"{late} late and {early} early{_THAN[against]}, in {summary['late_seconds']} and "
                 f"{summary['early_seconds']} seconds of orders: no side beyond the machine's noise")
        detail = f"p99 |drift| {p99:.3f} ms over {len(pairs)} pairs, {where}; all agree"
    worst = sorted(pairs, key=lambda pair: (pair["disagreement"] is None, -abs(pair["drift_ms"])))
    return {"verdict": verdict, **summary, "detail": detail, "examples": worst[:MAX_EXAMPLES],
            "histogram": _histogram(magnitudes)}


def checked_fills(answer: Any, where: str) -> dict[str, Any]:
    """A service's answer to GET /__golive/fills, checked: `{"clock": "monotonic_ns", "now_ns":
    int, "fills": [fill, ...]}`, each fill with `FILL_FIELDS`; ValueError, one line naming `where`
    and the field, else."""
    if not isinstance(answer, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(answer).__name__}")
    if answer.get("clock") != "monotonic_ns":
        raise ValueError(f"{where}: clock: expected 'monotonic_ns', got {answer.get('clock')!r}")
    now_ns = answer.get("now_ns")
    if isinstance(now_ns, bool) or not isinstance(now_ns, int):
        raise ValueError(f"{where}: now_ns: expected whole nanoseconds, got {now_ns!r}")
    fills = answer.get("fills")
    if not isinstance(fills, list):
        raise ValueError(f"{where}: fills: expected a list, got {type(fills).__name__}")
    for index, fill in enumerate(fills):
        if not isinstance(fill, dict):
            raise ValueError(f"{where}: fills[{index}]: expected an object, got {type(fill).__name__}")
        if missing := [name for name in FILL_FIELDS if name not in fill]:
            raise ValueError(f"{where}: fills[{index}].{missing[0]}: missing")
        at_ns, paper = fill["at_ns"], fill["paper"]
        if isinstance(at_ns, bool) or not isinstance(at_ns, int):
            raise ValueError(f"{where}: fills[{index}].at_ns: expected whole nanoseconds, got {at_ns!r}")
        if not isinstance(paper, bool):
            raise ValueError(f"{where}: fills[{index}].paper: expected true or false, got {paper!r}")
        if not isinstance(fill["request_id"], str) or not fill["request_id"]:
            raise ValueError(f"{where}: fills[{index}].request_id: expected a non-empty string")
    return answer
