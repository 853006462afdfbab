"""go-live: a release from flight check to Live (or RolledBack), as the runbook reads.

flight check (preflight, micro blast radius, release ritual, evidence complete for takeoff) →
stages 1 → 5 → 25 → 50 → 100 % (`canary-stage`) → final snapshot, release one-liner, evidence
complete at the end, success criteria, war room, sealed manifest → at Live, `closing` (tag
pushed, freeze lifted).
Ends Completed named "Live", or Failed named "RolledBack" (or "NoGo" when the flight check
fails, "Refused" when another run holds the release).
"""

from __future__ import annotations

import time
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.states import Completed, Failed, State

from golive.closing import final_decision, release_oneliner, success_criteria
from golive.evidence import EvidenceLedger
from golive.settings import GoLiveSettings
from golive.warroom import to_markdown
from blocks import settings_for_run
from flows.artifact_completeness import artifact_completeness
from flows.canary_stage import canary_stage
from flows.closing import closing
from flows.flight_check import flight_check
from tasks.artifacts import link_evidence, publish_war_room
from tasks.evidence import read_stage_records, record, seal
from tasks.prefect_api import ReleaseLocked, release_lock, schedule_first_night


@flow(name="go-live", flow_run_name="go-live v{release}")
def go_live(
    release: str,
    config: str | None = None,
    settings: dict | None = None,
    dwell_seconds: float | None = None,
    interval_seconds: float | None = None,
    hold_seconds: float | None = None,
    approve_each_stage: bool | None = None,
    blocks: dict[str, str] | None = None,
) -> State:
    """Take `release` live, stage by stage, on the target described by `config` (a YAML file),
    `settings` (a mapping) or `blocks` (names of the policy, prometheus, target and process
    blocks); one run of a release at a time."""
    logger = get_run_logger()
    cfg = settings_for_run(release, config, settings, blocks, dwell_seconds=dwell_seconds,
                           final_dwell_seconds=dwell_seconds, interval_seconds=interval_seconds,
                           hold_seconds=hold_seconds, approve_each_stage=approve_each_stage)
    try:
        with release_lock(release):
            return _take_live(cfg, blocks)
    except ReleaseLocked as exc:
        logger.error("%s", exc)
        return Failed(name="Refused", message=str(exc))


def _take_live(cfg: GoLiveSettings, blocks: dict[str, str] | None) -> State:
    logger = get_run_logger()
    release = cfg.release
    started = time.time()
    folder = str(cfg.evidence_dir)
    cleared = flight_check(release, settings=cfg.model_dump(mode="json"), return_state=True)
    if cleared.name != "Cleared":
        return Failed(name="NoGo", message=cleared.message)

    # -- stages -----------------------------------------------------------------------------------
    results = []
    for percent in cfg.stages:
        result = canary_stage(cfg, percent)
        results.append(result)
        if result.outcome == "rollback":
            break

    # -- closing ----------------------------------------------------------------------------------
    stages = read_stage_records(folder, list(cfg.stages))
    record(folder, "final_snapshot.json", {"release": release, "decision": final_decision(stages)})
    oneliner = release_oneliner(release, stages, time.time() - started)
    record(folder, "release_oneliner.txt", oneliner + "\n")
    complete = artifact_completeness(cfg, "end", [s["stage"] for s in stages])
    criteria = success_criteria(cfg.stages, stages, complete)
    record(folder, "success_criteria.json", criteria)
    ledger = EvidenceLedger(folder)
    rows = ledger.read_json("war_room.json") if ledger.path("war_room.json").exists() else []
    live = all(c["ok"] for c in criteria.values())
    summary = (f"# v{release}: {'Live' if live else 'RolledBack'}\n\n{oneliner}\n\n{to_markdown(rows)}\n"
               + "\n".join(f"- {'✅' if c['ok'] else '❌'} {name}" for name, c in criteria.items()) + "\n")
    publish_war_room(release, rows, summary)
    link_evidence(release, str(Path(folder).resolve()))
    seal(folder, "go-live", cfg.signing)
    logger.info(oneliner)
    closed = closing(cfg, return_state=True) if live else None
    if results and results[-1].outcome == "rollback":
        last = results[-1]
        return Failed(name="RolledBack", message=f"rolled back at {last.stage}%: {', '.join(last.triggers)}")
    if not live:
        unmet = [name for name, c in criteria.items() if not c["ok"]]
        return Failed(name="NotLive", message=f"success criteria not met: {', '.join(unmet)}")
    if blocks:  # a deployment's run: the first night follows on the same blocks
        record(folder, "first_night_schedule.json", schedule_first_night(release, blocks))
    else:
        logger.info("first night: start it with `golive first-night --release %s`", release)
    if closed.name != "Closed":
        logger.warning("closing: %s", closed.message)
        return Completed(name="Live", message=f"{oneliner}; closing partial: {closed.message}")
    return Completed(name="Live", message=oneliner)
