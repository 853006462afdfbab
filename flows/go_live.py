"""go-live: a release from flight check to Live (or RolledBack), as the runbook reads.

flight check (preflight, micro blast radius, release ritual, evidence complete for takeoff) →
the traffic target taken (a fencing generation, `golive.fencing`) → the shadow stage (users on
stable, their requests mirrored to the canary: `shadow-stage`) where the router mirrors → stages
1 → 5 → 25 → 50 → 100 % (`canary-stage`), every weight written with that generation → final snapshot, release
one-liner, evidence complete at the end, success criteria (unmet at 100 %: rollback), war room,
sealed manifest → at Live, `closing` (tag pushed, freeze lifted).

It ends in a state of `golive.outcome.ENDINGS`, each of which says where the traffic is: Completed
named "Live"; Failed named "RolledBack", "RollbackFailed", "NoGo" (the flight check failed),
"Refused" (another run holds the traffic target or the release) or "Superseded" (a newer writer
took the target: a rollback while this run was paused, say; it moved nothing after that). The
ending is read from the release's records and the target's fence, not from this run's memory: a
rollback recorded since the run started means it is not Live. An error rolls back before the run
ends; a cancel or a crash rolls back from Prefect's hooks (and, when the whole worker is lost,
from the rollback deployment's trigger), each ending only this run's generation.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.client.schemas.objects import Flow, FlowRun
from prefect.runtime import flow_run as this_run
from prefect.states import Completed, Failed, State

from golive import layout
from golive.closing import final_decision, release_oneliner, rollbacks_since, success_criteria, transient_breaches
from golive.fencing import Fence, FenceHolder
from golive.outcome import ENDINGS, Ending, ending_of
from golive.settings import GoLiveSettings
from golive.stage import SHADOW_STAGE, stage_name
from golive.validation import error_line
from golive.warroom import table_rows, to_markdown
from blocks import settings_for_run
from flows import subflows_without_heartbeats
from flows.artifact_completeness import artifact_completeness
from flows.canary_stage import canary_stage
from flows.shadow_stage import shadow_stage
from flows.closing import closing
from flows.flight_check import flight_check
from flows.rollback import ending_after, roll_back, rollback_outcome
from tasks.artifacts import link_evidence, publish_war_room
from tasks.evidence import ReleaseFolder, list_evidence, read_stage_records
from tasks.notify import announce
from tasks.prefect_api import GoLiveLocked, go_live_lock, schedule_first_night
from tasks.router import read_weight, take_generation

class InterruptibleGoLives:
    """The generations go-lives of this process took, for the shell's Ctrl-C: it ends these, and
    only these, so an interrupt never rolls back another run's go-live. Once `stop` is called no
    go-live of this process takes the target any more (the check and the take hold one lock, so
    an interrupt cannot fall between them)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._generations: list[int] = []
        self._stopped = False

    def take(self, take: Callable[[], Fence]) -> Fence | None:
        with self._lock:
            if self._stopped:
                return None
            fence = take()
            self._generations.append(fence.generation)
            return fence

    def stop(self) -> list[int]:
        with self._lock:
            self._stopped = True
            return list(self._generations)


IN_THIS_PROCESS = InterruptibleGoLives()


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
    roll_back(reason=f"the go-live run was {cause}: {state.message or state.name}", release=cfg.release,
              settings=cfg, triggered_by=f"go-live run {flow_run.name!r} ({cause})", triggers=[cause],
              crashed_run=str(flow_run.id))


@flow(name="go-live", flow_run_name="go-live v{release}",
      on_cancellation=[roll_back_after_the_run], on_crashed=[roll_back_after_the_run])
@subflows_without_heartbeats
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
        with go_live_lock(cfg.target.router.target, release) as takeovers:
            for taken in takeovers:
                logger.warning("took over the lock %s: %s", taken["lock"], taken["why"])
            return _take_live(cfg, blocks, recover, takeovers)
    except GoLiveLocked as exc:
        logger.error("%s", exc)
        return Failed(name="Refused", message=str(exc))


def _take_live(cfg: GoLiveSettings, blocks: dict[str, str] | None, recover: bool, takeovers: list[dict]) -> State:
    logger = get_run_logger()
    started = time.time()
    if recover:
        recovered = roll_back(reason="recover: a previous go-live left the weight raised", release=cfg.release,
                              settings=cfg, triggered_by="go-live (recover)")
        if rollback_outcome(recovered) == "RollbackFailed":
            ending = ENDINGS["RollbackFailed"]
            return Failed(name=ending.name, message=f"recover: {recovered.message}; traffic: {ending.traffic}")
    cleared = flight_check(cfg.release, settings=cfg.model_dump(mode="json"), return_state=True)
    if cleared.name != "Cleared":
        return Failed(name="NoGo", message=cleared.message)

    evidence = ReleaseFolder.of(cfg)
    holder = FenceHolder(kind="go-live", name=f"go-live v{cfg.release}", run=str(this_run.id) if this_run.id else None)
    fence = IN_THIS_PROCESS.take(lambda: take_generation(cfg.target.router, holder))
    if fence is None:
        return Failed(name="Cancelled", message="interrupted before any weight moved; "
                                                f"traffic: {ENDINGS['NoGo'].traffic}")
    evidence.record(layout.GO_LIVE_RUN, {"flow_run": holder.run, "fence": fence.model_dump(mode="json"),
                                         "lock_takeovers": takeovers})
    logger.info("took the traffic target %s: %s", cfg.target.router.target, fence.describe())
    try:
        proven: list[str] = []  # what the shadow stage showed green, for the small stages
        for percent in cfg.planned_stages:
            if percent == SHADOW_STAGE:
                stage = shadow_stage(cfg, fence.generation)
                proven = (stage.shadow or {}).get("proven", [])
            else:
                stage = canary_stage(cfg, percent, fence.generation, proven)
            if stage.outcome != "proceed":
                break
        stages = read_stage_records(evidence.path, list(cfg.planned_stages))
        ending, message, unmet = _end_of_stages(cfg, evidence, stages, started, fence)
    except Exception as exc:
        logger.exception("go-live failed; rolling back")
        rolled = roll_back(reason=f"the go-live failed: {error_line(exc)}", release=cfg.release, settings=cfg,
                           triggered_by="go-live", triggers=["orchestrator-error"], generation=fence.generation)
        ending = ENDINGS[ending_after(rolled)]
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


def _superseded_by(cfg: GoLiveSettings, fence: Fence, stages: list[dict], rollbacks: list[str]) -> str | None:
    """Why this run no longer holds the release, from its records and the target's fence; None
    while it does. A rollback recorded since the run started, by anyone, means it is not Live."""
    if stages and stages[-1].get("outcome") == "superseded":
        last = stages[-1]
        return f"fenced off at {stage_name(last['stage'])}: {last.get('superseded_by') or 'by a newer writer'}"
    if rollbacks:
        return f"rolled back while it ran ({', '.join(rollbacks)})"
    now = read_weight(cfg.target.router, return_state=True)
    if now.is_completed() and now.result().fence and now.result().fence.generation != fence.generation:
        return f"fenced off after its last stage: {now.result().fence.describe()}"
    return None


def _end_of_stages(cfg: GoLiveSettings, evidence: ReleaseFolder, stages: list[dict],
                   started: float, fence: Fence) -> tuple[Ending, str, list[str]]:
    """Evidence, criteria (unmet at 100 %: rollback) and the ending, once the stages are over;
    the one-liner with the evidence chain's head, for the final state's message."""
    release = cfg.release
    rollbacks = rollbacks_since(list_evidence(evidence.path), started)
    stage_rolled_back = any(s.get("outcome") == "rollback" for s in stages)
    superseded = _superseded_by(cfg, fence, stages, [] if stage_rolled_back else rollbacks)
    evidence.record(layout.FINAL_SNAPSHOT, {"release": release, "decision": final_decision(stages),
                                            "superseded_by": superseded})
    oneliner = release_oneliner(release, stages, time.time() - started, rollbacks)
    evidence.record(layout.RELEASE_ONELINER, oneliner + "\n")
    complete = artifact_completeness(cfg, "end", [s["stage"] for s in stages])
    criteria = success_criteria(cfg.planned_stages, stages, complete, rollbacks)
    unmet = [name for name, c in criteria.items() if not c["ok"]]
    evidence.record(layout.SUCCESS_CRITERIA, {**criteria, "transient_breaches": transient_breaches(stages)})
    criteria_rollback = None
    if unmet and not superseded and stages and stages[-1]["outcome"] == "proceed":
        # Every stage proceeded, yet the release fails its criteria: it must not stay at 100 %.
        rolled = roll_back(reason=f"success criteria not met at 100 %: {', '.join(unmet)}",
                           stage=stages[-1]["stage"], release=release, settings=cfg, triggered_by="go-live",
                           triggers=["success-criteria-unmet"], generation=fence.generation)
        criteria_rollback = ending_after(rolled)
    ending = ending_of(stages, unmet, criteria_rollback, superseded)
    if ending.name == "Live":
        announce(cfg, "live", None, oneliner)

    rows = evidence.read_json(layout.WAR_ROOM_JSON) if evidence.has(layout.WAR_ROOM_JSON) else []
    summary = (f"# v{release}: {ending.name}\n\n{oneliner}\n\nTraffic: {ending.traffic}.\n\n{to_markdown(rows)}\n"
               + "\n".join(f"- {'✅' if c['ok'] else '❌'} {name}" for name, c in criteria.items()) + "\n")
    publish_war_room(release, table_rows(rows), summary)
    link_evidence(release, str(Path(evidence.path).resolve()))
    head = evidence.seal("go-live")["head"]
    get_run_logger().info(oneliner)
    message = f"{oneliner}; evidence head {head}"
    return ending, (f"{superseded}; {message}" if ending.name == "Superseded" else message), unmet


def _failed(ending: Ending, stages: list[dict], unmet: list[str], message: str) -> State:
    last = stages[-1] if stages else {}
    if ending.name == "Superseded":
        return Failed(name=ending.name, message=f"{message}; traffic: {ending.traffic}")
    if last.get("outcome") == "rollback":
        cause = f"rolled back at {stage_name(last['stage'])}: {', '.join(last.get('triggers', []))}"
    else:
        cause = f"success criteria not met: {', '.join(unmet)}"
    return Failed(name=ending.name, message=f"{cause}; traffic: {ending.traffic}; {message}")
