"""The closing of a release: the one-liner and the success criteria, from the stage records."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from fnmatch import fnmatch

from golive import layout
from golive.rollback_report import rollback_started_at
from golive.stage import stage_name

__all__ = ["final_decision", "not_live_because", "records_disagree", "release_oneliner", "rollbacks_since",
           "success_criteria", "transient_breaches"]

_SHORT = {
    "api_p95_ms": ("p95", "~{:.0f}ms"),
    "http_p95_ms": ("p95", "~{:.0f}ms"),  # the packs' latency (golive.signal_packs)
    "http_5xx_pct": ("5xx", "{:.2f}%"),
    "ws_staleness_s": ("ws", "{:.1f}s"),
    "risk_blocks_per_min": ("risk", "{:.2f}/min"),
    "idempotency_conflict_pct": ("idem", "{:.2f}%"),
    "event_loop_p95_ms": ("evloop", "{:.1f}ms"),
    "gc_pause_avg_ms": ("gc", "{:.1f}ms"),
}


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def final_decision(stages: Sequence[Mapping]) -> Mapping | None:
    for stage in reversed(stages):
        if stage.get("decisions"):
            return stage["decisions"][-1]
    return None


def rollbacks_since(files: Sequence[str], started: float) -> list[str]:
    """The rollback records among `files` (dry runs aside) of rollbacks that started at or after
    `started`: whoever ran them, the release was rolled back then."""
    return sorted(name for name in _rollback_records(files) if rollback_started_at(name) >= started)


def _rollback_records(files: Sequence[str]) -> list[str]:
    """The records of rollbacks that ran (not dry runs, not drills), in the order given."""
    return [name for name in files if fnmatch(name, layout.ROLLBACKS) and not fnmatch(name, _DRY_ROLLBACKS)
            and rollback_started_at(name) is not None]


def release_oneliner(release: str, stages: Sequence[Mapping], elapsed_seconds: float,
                     rollbacks: Sequence[str] = ()) -> str:
    """`v1.4.0 canary: 1%→5%→25%→50%→100% in 6m12s, holds=0, rollback=0; p95=~141ms, …`; the
    rollback count is every rollback recorded since the go-live started (`rollbacks`), a stage's own
    or another's, so the line never says 0 beside a rollback record."""
    path = "→".join(stage_name(s["stage"]) for s in stages)
    holds = sum(s.get("holds", 0) for s in stages)
    by_stage = any(s.get("outcome") == "rollback" for s in stages)
    count = max(len(rollbacks), int(by_stage))
    head = f"v{release} canary: {path} in {_duration(elapsed_seconds)}, holds={holds}, rollback={count}"
    if by_stage:
        last = stages[-1]
        head += f" (at {stage_name(last['stage'])}: {', '.join(last.get('triggers', [])) or 'rolled back'})"
    elif stages and stages[-1].get("outcome") == "superseded":
        head += f" (superseded at {stage_name(stages[-1]['stage'])})"
    elif rollbacks:
        head += " (rolled back by another while it ran)"
    final = final_decision(stages)
    if not final:
        return head
    parts = [_level(name, verdict) for name, verdict in final["signals"].items()]
    green = sum(v.get("verdict") == "pass" for v in final["signals"].values())
    transient = transient_breaches(stages)
    held = f"; transient breaches={len(transient)} ({', '.join(transient)}: held, re-measured green)" if transient else ""
    return f"{head}; {', '.join(p for p in parts if p)}; {green}/{len(final['signals'])} green{held}"


def _level(name: str, verdict: Mapping) -> str:
    """One signal's canary level in the one-liner: the runbook's short form for its eight
    (`p95=~141ms`, `csp=+10%` against stable), `name=value` for any other signal."""
    value = verdict.get("canary")
    if str(verdict.get("rule", "")).startswith("<= baseline") or name == "csp_violations_per_min":
        label = "csp" if name == "csp_violations_per_min" else name
        baseline = verdict.get("baseline")
        return f"{label}={(value / baseline - 1) * 100:+.0f}%" if value is not None and baseline else ""
    label, fmt = _SHORT.get(name, (name, "{:.4g}"))
    return f"{label}={fmt.format(value) if value is not None else 'n/a'}"


def transient_breaches(stages: Sequence[Mapping]) -> list[str]:
    """Breaches that a Hold re-measured green (`5%:api_p95_ms`): seen at a decision before the
    last of a stage that then proceeded. Reported, not held against the release."""
    return [
        f"{stage_name(s['stage'])}:{name}"
        for s in stages if s.get("outcome") == "proceed"
        for d in s.get("decisions", [])[:-1] for name, v in d["signals"].items() if v.get("verdict") == "breach"
    ]


def _green(decision: Mapping | None) -> bool:
    # The judge gives every signal of the list a verdict, so a decision's signals are the list judged.
    return (decision is not None and decision.get("decision") == "proceed" and bool(decision["signals"])
            and all(v.get("verdict") == "pass" for v in decision["signals"].values()))


def _left_to_a_later_stage(decision: Mapping | None, proceeded: Sequence[int]) -> bool:
    """The stage proceeded with its only open signals short of traffic, left to a later stage that
    judged them and proceeded too (`golive.stage`'s rule 4)."""
    if decision is None or decision.get("decision") != "proceed" or decision.get("deferred_to") not in proceeded:
        return False
    open_signals = {name for name, v in decision["signals"].items() if v.get("verdict") != "pass"}
    return bool(open_signals) and open_signals <= set(decision.get("deferred", ())) and all(
        decision["signals"][name].get("verdict") == "insufficient" for name in open_signals)


def success_criteria(planned: Sequence[int], stages: Sequence[Mapping], completeness: Mapping,
                     rollbacks: Sequence[str] = ()) -> dict[str, dict]:
    """Each criterion with its result and the facts behind it; `completeness` is the evidence
    check at the end (golive.completeness), `rollbacks` the rollback records since the go-live
    started (`rollbacks_since`). As the runbook says, "8/8 signals pass at each stage" is judged
    on each stage's final Proceed; a stage that proceeded on a person's word after too little
    traffic to tell is named as such, and so is one that left its signals short of traffic to the
    next stage, which proceeded."""
    proceeded = [s for s in stages if s.get("outcome") == "proceed"]
    proceeded_stages = [s["stage"] for s in proceeded]
    on_approval = [s["stage"] for s in proceeded if s.get("decisions") and s["decisions"][-1]["decision"] == "pause"]
    passed_on = [s["stage"] for s in proceeded
                 if _left_to_a_later_stage((s.get("decisions") or [None])[-1], proceeded_stages)]
    not_green = [s["stage"] for s in proceeded if s["stage"] not in on_approval and s["stage"] not in passed_on
                 and not _green((s.get("decisions") or [None])[-1])]
    unverified = [s["stage"] for s in stages if not (s.get("weight_verified") and s.get("share_ok"))]
    final = final_decision(stages)
    return {
        "all_stages_proceeded": {"ok": proceeded_stages == list(planned), "planned": list(planned),
                                 "proceeded": proceeded_stages},
        "no_rollback": {"ok": not rollbacks and not any(s.get("outcome") in ("rollback", "superseded") for s in stages),
                        "records": list(rollbacks)},
        "each_stage_green_at_proceed": {"ok": not not_green and bool(proceeded), "not_green": not_green,
                                        "proceeded_on_approval": on_approval,
                                        "left_to_a_later_stage": passed_on},
        "final_signals_green": {"ok": _green(final) or (bool(stages) and stages[-1]["stage"] in on_approval)},
        "weights_verified": {"ok": not unverified and bool(stages), "unverified_stages": unverified},
        "no_critical_alerts": {"ok": not any(s.get("critical_alerts") for s in stages),
                               "fired": sorted({f"{stage_name(s['stage'])}:{a}" for s in stages
                                                for a in s.get("critical_alerts", [])}),
                               "looks_unread": sum(s.get("alerts_unread", 0) for s in stages)},
        "evidence_complete": {"ok": completeness["ok"], "files": completeness["files"],
                              "minimum_files": completeness["minimum_files"], "missing": completeness["missing"]},
    }


# What the closing and the first night write after the go-live's last seal, between their own
# seals (a dry run never seals): not yet in the manifest, and no sign of tampering with the go-live.
_AFTER_LIVE = (
    layout.git_tag(), layout.git_tag(True), layout.freeze_lift(), layout.freeze_lift(True), layout.closing(),
    layout.closing(True), layout.FIRST_NIGHT_SCHEDULE, layout.FIRST_NIGHT_PLAN, layout.FIRST_NIGHT_FREEZE,
    layout.FIRST_NIGHT_HOURS, layout.first_night_report("*"), layout.first_night_plot("*"),
)
_DRY_ROLLBACKS = layout.rollback_file(0, True).replace(layout.utc_stamp(0), "*")
_UNSEALED = ": not in the manifest"  # how golive.verify names a file the chain does not hold


def _after_live_unsealed(problem: str) -> bool:
    name = problem.removesuffix(_UNSEALED)
    return problem.endswith(_UNSEALED) and any(fnmatch(name, pattern) for pattern in _AFTER_LIVE)


def not_live_because(release: str, planned: Sequence[int], stages: Sequence[Mapping], criteria: Mapping | None,
                     files: Sequence[str], evidence_problems: Sequence[str]) -> str | None:
    """Why the evidence does not show `release` Live, as one line; None when it does.

    Live means, in this order: every planned stage has a record and proceeded, none rolled back;
    the go-live recorded its success criteria and each is met; no rollback was recorded since
    (a dry run's aside); and the folder verifies (`evidence_problems`, from golive.verify), but
    for the files the closing and the first night write after Live and seal themselves.
    `stages` are the stage records found (oldest first), `criteria` the success_criteria record,
    `files` every file in the folder.
    """
    def refused(why: str) -> str:
        return f"v{release} is not Live: {why}"

    if not stages:
        return refused("no stage records: the go-live never moved traffic")
    last = stages[-1]
    if last.get("outcome") == "rollback":
        triggers = ", ".join(last.get("triggers") or []) or "no trigger named"
        return refused(f"rolled back at {stage_name(last['stage'])} ({triggers})")
    proceeded = [s["stage"] for s in stages if s.get("outcome") == "proceed"]
    if proceeded != list(planned):
        missing = [p for p in planned if p not in proceeded]
        return refused(f"stopped at {stage_name(last['stage'])}: stage{'s' if len(missing) > 1 else ''} "
                       f"{', '.join(stage_name(p) for p in missing)} never proceeded")
    if criteria is None:
        return refused("no success criteria recorded: the go-live did not finish")
    unmet = [name for name, c in criteria.items() if isinstance(c, Mapping) and not c.get("ok", True)]
    if unmet:
        return refused(f"success criteria not met: {', '.join(unmet)}")
    rollbacks = sorted(n for n in files if fnmatch(n, layout.ROLLBACKS) and not fnmatch(n, _DRY_ROLLBACKS))
    if rollbacks:
        return refused(f"rolled back after Live ({', '.join(rollbacks)})")
    problems = [p for p in evidence_problems if not _after_live_unsealed(p)]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return refused(f"its evidence does not verify: {problems[0]}{more}")
    return None


_ROLLED_BACK_COUNT = re.compile(r"\brollback=(\d+)")


def records_disagree(files_in_seal_order: Sequence[str], oneliner: str | None, criteria: Mapping | None) -> list[str]:
    """Where a release's records contradict each other, one line each; [] when they agree.

    `files_in_seal_order` lists the folder's files in the order the evidence chain first sealed
    them. A one-liner or success criteria that say "no rollback" cannot stand beside a rollback
    record sealed before them (dry runs aside): the go-live that wrote them had been rolled back
    while it ran. A rollback sealed after them is a later event (the first night's, say) and
    contradicts nothing.
    """
    order = {name: i for i, name in enumerate(files_in_seal_order)}
    rollbacks = _rollback_records(files_in_seal_order)
    problems = []
    claims = []
    if oneliner is not None and (match := _ROLLED_BACK_COUNT.search(oneliner)) and match.group(1) == "0":
        claims.append((layout.RELEASE_ONELINER, "says rollback=0"))
    no_rollback = (criteria or {}).get("no_rollback")
    if isinstance(no_rollback, Mapping) and no_rollback.get("ok") is True:
        claims.append((layout.SUCCESS_CRITERIA, "says no_rollback is met"))
    for name, claim in claims:
        earlier = [r for r in rollbacks if order.get(r, len(order)) < order.get(name, -1)]
        if earlier:
            problems.append(f"{name}: {claim}, but {earlier[-1]} was recorded before it: the records disagree")
    return problems
