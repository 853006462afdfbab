"""go-live: a release from flight check to Live (or RolledBack), as the runbook reads.

flight check (preflight, micro blast radius, release ritual, evidence complete for takeoff) →
stages 1 → 5 → 25 → 50 → 100 % (`canary-stage`) → final snapshot, release one-liner, evidence
complete at the end, success criteria (unmet at 100 %: rollback), war room, sealed manifest →
at Live, `closing` (tag pushed, freeze lifted).

It ends in a state of `golive.outcome.ENDINGS`, each of which says where the traffic is: Completed
named "Live"; Failed named "RolledBack", "RollbackFailed", "NoGo" (the flight check failed) or
"Refused" (another run holds the traffic target or the release). An error rolls back before the
run ends; a cancel or a crash rolls back from Prefect's hooks (and, when the whole worker is
lost, from the rollback deployment's trigger).
"""

from __future__ import annotations

import time
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.client.schemas.objects import Flow, FlowRun
from prefect.states import Completed, Failed, State

from golive import layout
from golive.closing import final_decision, release_oneliner, success_criteria, transient_breaches
from golive.outcome import ENDINGS, Ending, ending_of
from golive.settings import GoLiveSettings
from golive.validation import error_line
from golive.warroom import table_rows, to_markdown
from blocks import settings_for_run
from flows.artifact_completeness import artifact_completeness
from flows.canary_stage import canary_stage
from flows.closing import closing
from flows.flight_check import flight_check
from flows.rollback import rollback
from tasks.artifacts import link_evidence, publish_war_room
from tasks.evidence import ReleaseFolder, read_stage_records
from tasks.notify import announce
from tasks.prefect_api import GoLiveLocked, go_live_lock, schedule_first_night


def roll_back_after_the_run(flow: Flow, flow_run: FlowRun, state: State) -> None:
    """Prefect's cancel and crash hooks: whatever the run was doing, its traffic goes back to
    stable, through the router alone (the thing that failed is not asked)."""
    cause = "crashed" if state.is_crashed() else "cancelled"
    params = flow_run.parameters
    try:
        cfg = settings_for_run(params["release"], params.get("config"), params.get("settings"), params.get("blocks"))
    except Exception as exc:  # noqa: BLE001 - a hook must not raise; the rollback deployment's trigger still fires
        get_run_logger().critical("go-live %s: cannot load its settings to roll back: %s", cause, exc)
        return
    rollback(reason=f"the go-live run was {cause}: {state.message or state.name}", release=cfg.release,
             settings=cfg, triggered_by=f"go-live run {flow_run.name!r} ({cause})", triggers=[cause],
             return_state=True)


@flow(name="go-live", flow_run_name="go-live v{release}",
      on_cancellation=[roll_back_after_the_run], on_crashed=[roll_back_after_the_run])
def go_live(
    release: str,
    config: str | None = None,
    settings: dict | None = None,
    dwell_seconds: float | None = None,
    interval_seconds: float | None = None,
    hold_seconds: float | None = None,
    approve_each_stage: bool | None = None,
    blocks: dict[str, str] | None = None,
    recover: bool = False,
) -> State:
    """Take `release` live, stage by stage, on the target described by `config` (a YAML file),
    `settings` (a mapping) or `blocks` (names of the policy, prometheus, target and process
    blocks); one run per traffic target and per release at a time. `recover`: roll the target
    back first (after a run that died with the weight raised)."""
    logger = get_run_logger()
    cfg = settings_for_run(release, config, settings, blocks, policy={
        "dwell_seconds": dwell_seconds, "final_dwell_seconds": dwell_seconds, "interval_seconds": interval_seconds,
        "hold_seconds": hold_seconds, "approve_each_stage": approve_each_stage})
    try:
        with go_live_lock(cfg.target.router.target, release):
            return _take_live(cfg, blocks, recover)
    except GoLiveLocked as exc:
        logger.error("%s", exc)
        return Failed(name="Refused", message=str(exc))


def _take_live(cfg: GoLiveSettings, blocks: dict[str, str] | None, recover: bool) -> State:
    logger = get_run_logger()
    started = time.time()
    if recover:
        rollback(reason="recover: a previous go-live left the weight raised", release=cfg.release, settings=cfg,
                 triggered_by="go-live (recover)")
    cleared = flight_check(cfg.release, settings=cfg.model_dump(mode="json"), return_state=True)
    if cleared.name != "Cleared":
        return Failed(name="NoGo", message=cleared.message)

    evidence = ReleaseFolder.of(cfg)
    try:
        for percent in cfg.policy.stages:
            if canary_stage(cfg, percent).outcome == "rollback":
                break
        stages = read_stage_records(evidence.path, list(cfg.policy.stages))
        ending, message, unmet = _end_of_stages(cfg, evidence, stages, started)
    except Exception as exc:
        logger.exception("go-live failed; rolling back")
        rolled = rollback(reason=f"the go-live failed: {error_line(exc)}", release=cfg.release, settings=cfg,
                          triggered_by="go-live", triggers=["orchestrator-error"], return_state=True)
        ending = ENDINGS["RolledBack" if rolled.is_completed() else "RollbackFailed"]
        return Failed(name=ending.name, message=f"the go-live failed: {error_line(exc)}; traffic: {ending.traffic}")
    if ending.name != "Live":
        return _failed(ending, stages, unmet, message)

    closed = closing(cfg, return_state=True)
    if blocks:  # a deployment's run: the first night follows on the same blocks
        evidence.record(layout.FIRST_NIGHT_SCHEDULE, schedule_first_night(cfg.release, blocks))
    else:
        logger.info("first night: start it with `golive first-night --release %s`", cfg.release)
    if closed.name != "Closed":
        logger.warning("closing: %s", closed.message)
        return Completed(name="Live", message=f"{message}; closing partial: {closed.message}")
    return Completed(name="Live", message=message)


def _end_of_stages(cfg: GoLiveSettings, evidence: ReleaseFolder, stages: list[dict],
                   started: float) -> tuple[Ending, str, list[str]]:
    """Evidence, criteria (unmet at 100 %: rollback) and the ending, once the stages are over;
    the one-liner with the evidence chain's head, for the final state's message."""
    release = cfg.release
    evidence.record(layout.FINAL_SNAPSHOT, {"release": release, "decision": final_decision(stages)})
    oneliner = release_oneliner(release, stages, time.time() - started)
    evidence.record(layout.RELEASE_ONELINER, oneliner + "\n")
    complete = artifact_completeness(cfg, "end", [s["stage"] for s in stages])
    criteria = success_criteria(cfg.policy.stages, stages, complete)
    unmet = [name for name, c in criteria.items() if not c["ok"]]
    evidence.record(layout.SUCCESS_CRITERIA, {**criteria, "transient_breaches": transient_breaches(stages)})
    criteria_rollback = None
    if unmet and stages and stages[-1]["outcome"] == "proceed":
        # Every stage proceeded, yet the release fails its criteria: it must not stay at 100 %.
        rolled = rollback(reason=f"success criteria not met at 100 %: {', '.join(unmet)}", stage=stages[-1]["stage"],
                          release=release, settings=cfg, triggered_by="go-live", triggers=["success-criteria-unmet"],
                          return_state=True)
        criteria_rollback = "RolledBack" if rolled.is_completed() else "RollbackFailed"
    ending = ending_of(stages, unmet, criteria_rollback)
    if ending.name == "Live":
        announce(cfg, "live", None, oneliner)

    rows = evidence.read_json(layout.WAR_ROOM_JSON) if evidence.has(layout.WAR_ROOM_JSON) else []
    summary = (f"# v{release}: {ending.name}\n\n{oneliner}\n\nTraffic: {ending.traffic}.\n\n{to_markdown(rows)}\n"
               + "\n".join(f"- {'✅' if c['ok'] else '❌'} {name}" for name, c in criteria.items()) + "\n")
    publish_war_room(release, table_rows(rows), summary)
    link_evidence(release, str(Path(evidence.path).resolve()))
    head = evidence.seal("go-live")["head"]
    get_run_logger().info(oneliner)
    return ending, f"{oneliner}; evidence head {head}", unmet


def _failed(ending: Ending, stages: list[dict], unmet: list[str], message: str) -> State:
    last = stages[-1] if stages else {}
    if last.get("outcome") == "rollback":
        cause = f"rolled back at {last['stage']}%: {', '.join(last.get('triggers', []))}"
    else:
        cause = f"success criteria not met: {', '.join(unmet)}"
    return Failed(name=ending.name, message=f"{cause}; traffic: {ending.traffic}; {message}")
