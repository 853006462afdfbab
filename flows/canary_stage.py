"""canary-stage: one step of the canary, as the runbook does it.

Check the canary's rollout is fit → set the weight → read it back → check the traffic really
split that way → each interval, watch the signals and the rollout for the dwell → judge →
Proceed, Hold (re-measure, within the hold budget) or Rollback (the `rollback` flow, at once).
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timezone

from prefect import flow, get_run_logger
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run

from golive.gate import gate_action
from golive.models import RolloutObservation, SignalWindow, StageResult
from golive.rollout import rollout_triggers
from golive.settings import GoLiveSettings
from golive.warroom import WarRoomRow
from flows.rollback import rollback
from tasks.approval import StageApproval
from tasks.artifacts import publish_stage
from tasks.evidence import add_war_room_row, record, seal
from tasks.gate import judge_window
from tasks.kubernetes import read_kubernetes_rollout
from tasks.prometheus import observe_share, query_signals
from tasks.router import read_weight, set_weight
from tasks.service import read_service_rollout

# Prometheus scrapes every second; give an interval's last samples time to land before reading it.
SCRAPE_SETTLE_SECONDS = 1.5


def _sleep_until(at: float) -> None:
    delay = at - time.time()
    if delay > 0:
        time.sleep(delay)


def _describe(triggers: list[str], signals: dict) -> str:
    parts = []
    for trigger in triggers:
        name = trigger.split(":", 1)[1] if trigger.startswith("breach:") else None
        if name and name in signals:
            v = signals[name]
            parts.append(f"{trigger} ({v['detail']}; canary {v['canary']:.4g}, stable "
                         f"{'–' if v['baseline'] is None else format(v['baseline'], '.4g')}, rule {v['rule']})")
        else:
            parts.append(trigger)
    return "; ".join(parts)


def _observe_rollout(settings: GoLiveSettings) -> RolloutObservation | None:
    """The canary's Deployment (on Kubernetes) or process (the sandbox); None when it cannot be read."""
    if settings.router.on_kubernetes:
        state = read_kubernetes_rollout(settings.router.kubernetes, return_state=True)
    else:
        state = read_service_rollout(settings.canary_url, return_state=True)
    return state.result() if state.is_completed() else None


def _wait_for_approval(settings: GoLiveSettings, percent: int, folder: str) -> StageApproval | None:
    """Pause before raising the weight until a person answers. Each unanswered wait is a Hold;
    None once the holds fill the stage's hold budget."""
    waited = 0.0
    asks = 0
    while True:
        asks += 1
        try:
            approval = pause_flow_run(wait_for_input=StageApproval, timeout=int(max(1, settings.approval_timeout_seconds)),
                                      key=f"approve-stage-{percent}-{asks}")
        except FlowPauseTimeout:
            waited += settings.approval_timeout_seconds
            add_war_room_row(folder, WarRoomRow.from_verdict(datetime.now(timezone.utc), percent, "Hold", {}))
            if waited >= settings.hold_budget_seconds:
                return None
            continue
        record(folder, f"approval_stage_{percent}.json",
               {**approval.model_dump(include={"approve", "approver", "reason"}), "at": time.time()})
        return approval


@flow(name="canary-stage", flow_run_name="stage {percent}%")
def canary_stage(settings: GoLiveSettings, percent: int) -> StageResult:
    """Run one stage at `percent` % of traffic; returns how it ended (proceed or rollback)."""
    logger = get_run_logger()
    folder = str(settings.evidence_dir)
    tag = f"stage_{percent}"
    catalogue = settings.catalogue()
    started = time.time()
    result = StageResult(stage=percent, outcome="proceed", started_at=started, ended_at=started)

    def finish(outcome: str, reason: str, triggers: list[str] = (), signals: dict | None = None,
               detected_at: float | None = None) -> StageResult:
        result.outcome, result.reason, result.triggers = outcome, reason, list(triggers)
        if outcome == "rollback":
            rollback(reason=f"{_describe(list(triggers), signals or {})}: {reason}", stage=percent,
                     release=settings.release, settings=settings, triggered_by=f"canary-stage {percent}%",
                     signals=signals, breach_detected_at=detected_at)
        result.ended_at = time.time()
        record(folder, f"{tag}.json", result)
        seal(folder, f"canary-stage {percent}%", settings.signing)
        return result

    if settings.approve_each_stage:
        approval = _wait_for_approval(settings, percent, folder)
        if approval is None:
            return finish("rollback", "no approval within the hold budget", ["hold-budget-exhausted"])
        if not approval.approve:
            return finish("rollback", f"rejected by {approval.approver}: {approval.reason}", ["manual-abort"])

    rollout = _observe_rollout(settings)
    record(folder, f"rollout_{tag}.json", rollout or {"observed": False})
    restarts_at_start = rollout.restarts if rollout else None
    if rollout and (fired := rollout_triggers(rollout, settings.release)):
        return finish("rollback", "; ".join(fired.values()), list(fired), detected_at=rollout.at)

    change = set_weight(settings.router, percent)
    record(folder, f"weight_set_{tag}.json", change)
    readback = read_weight(settings.router)
    record(folder, f"weight_readback_{tag}.json", readback)
    result.weight_verified = readback.in_force == percent
    if not result.weight_verified:
        return finish("rollback", f"asked for {percent}, router serves {readback.in_force}", ["weight-not-applied"],
                      detected_at=readback.at)

    interval = settings.interval_seconds
    window_start = readback.at
    intervals = math.ceil(settings.dwell_for(percent) / interval - 1e-9)
    held, k, window_no = 0.0, 0, 1
    logger.info("stage %s%%: weight in force, watching %d intervals of %gs", percent, intervals, interval)
    while True:
        k += 1
        tick = window_start + k * interval
        _sleep_until(tick + SCRAPE_SETTLE_SECONDS)
        state = query_signals(settings, percent, window_start, tick, return_state=True)
        window = state.result() if state.is_completed() else SignalWindow(
            stage_percent=percent, start=window_start, end=tick, interval_seconds=interval, answered=False,
            scenario={"stage_percent": percent, "interval_seconds": interval, "signals": {}},
        )
        if not window.answered:
            logger.warning("stage %s%%: Prometheus did not answer for interval %d", percent, k)
        if window.answered and not result.share_ok:
            # From one scrape after the change: requests served just before it are counted at the next scrape.
            share = observe_share(settings, percent, readback.at + SCRAPE_SETTLE_SECONDS, tick)
            record(folder, f"traffic_share_{tag}.json", share)
            result.share_ok = share.ok
            if not share.ok:
                return finish("rollback", f"observed {share.observed_pct}% of user traffic on the canary "
                              f"(tolerance ±{share.tolerance_points} points)", ["weight-not-applied"],
                              detected_at=tick)
        rollout = _observe_rollout(settings)
        fired = rollout_triggers(rollout, settings.release, restarts_at_start) if rollout else {}
        verdict = judge_window(window.scenario, catalogue)
        record(folder, f"judge_{tag}_w{window_no}_i{k:02d}.json",
               {"window": [window_start, tick], "answered": window.answered, "verdict": verdict,
                "rollout": rollout.model_dump(mode="json") if rollout else None,
                "rollout_triggers": list(fired)})
        if fired:
            logger.warning("stage %s%%: the canary's rollout is not fit: %s", percent, "; ".join(fired.values()))
            return finish("rollback", "; ".join(fired.values()), list(fired), verdict["signals"],
                          detected_at=rollout.at)
        action = gate_action(verdict["decision"], verdict["triggers"], k >= intervals, held,
                             settings.hold_seconds, settings.hold_budget_seconds, window.answered)
        if action.action == "continue":
            continue

        decided_at = datetime.now(timezone.utc)
        suffix = "" if action.action != "hold" else f"_hold{result.holds + 1}"
        record(folder, f"snapshot_{tag}{suffix}.json", {
            "stage_percent": percent, "window": [window_start, tick], "decision": action.action,
            "reason": action.reason, "triggers": list(action.triggers), "verdict": verdict,
            "thresholds": {s.name: {"rule": s.rule, "threshold": s.threshold} for s in catalogue},
            "series": window.model_dump(mode="json"),
        })
        row = WarRoomRow.from_verdict(decided_at, percent, action.action.capitalize(), verdict["signals"])
        add_war_room_row(folder, row)
        publish_stage(settings.release, percent, action.action, verdict["reason"], verdict["signals"], row)
        result.decisions.append({"at": tick, "decision": action.action, "reason": verdict["reason"],
                                 "triggers": list(action.triggers), "signals": verdict["signals"]})
        logger.info("stage %s%%: %s (%s)", percent, action.action.upper(), verdict["reason"])
        if action.action == "rollback":
            return finish("rollback", action.reason, list(action.triggers), verdict["signals"], detected_at=tick)
        if action.action == "proceed":
            return finish("proceed", verdict["reason"])
        result.holds += 1
        held += settings.hold_seconds
        window_start, k, window_no = tick, 0, window_no + 1
        intervals = math.ceil(settings.hold_seconds / interval - 1e-9)
