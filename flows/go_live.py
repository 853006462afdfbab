"""go-live: a release from preflight to Live (or RolledBack), as the runbook reads.

preflight (Prometheus answers every signal, router reachable, canary serves the release, both
tracks healthy) → stages 1 → 5 → 25 → 50 → 100 % (`canary-stage`) → closing (final snapshot,
release one-liner, success criteria from the evidence, war room, manifest).
Ends Completed named "Live", or Failed named "RolledBack" (or "NoGo" when preflight fails).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.states import Completed, Failed, State

from golive.closing import final_decision, release_oneliner, success_criteria
from golive.evidence import EvidenceLedger
from golive.settings import load_settings
from golive.warroom import to_markdown
from flows.canary_stage import canary_stage
from tasks.artifacts import link_evidence, publish_war_room
from tasks.evidence import read_stage_records, record, seal
from tasks.prometheus import signals_answered
from tasks.router import read_weight
from tasks.service import check_health, check_version


def _set_aside_previous(folder: Path) -> str | None:
    """A rerun of a release keeps the earlier attempt's evidence beside it, never mixed in."""
    if not folder.exists() or not any(folder.iterdir()):
        return None
    stamp = datetime.fromtimestamp(folder.stat().st_mtime, timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    aside = folder.with_name(f"{folder.name}~{stamp}")
    folder.rename(aside)
    return str(aside)


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
    `settings` (a mapping) or `blocks` (names of the policy, prometheus and target blocks)."""
    logger = get_run_logger()
    overrides = {"release": release, "dwell_seconds": dwell_seconds, "final_dwell_seconds": dwell_seconds,
                 "interval_seconds": interval_seconds, "hold_seconds": hold_seconds,
                 "approve_each_stage": approve_each_stage}
    if blocks:
        from blocks import settings_from_blocks

        cfg = settings_from_blocks(policy=blocks["policy"], prometheus=blocks["prometheus"],
                                   target=blocks["target"], **overrides)
    else:
        cfg = load_settings(settings if settings is not None else config, **overrides)
    started = time.time()
    aside = _set_aside_previous(cfg.evidence_dir)
    if aside:
        logger.info("earlier evidence of v%s kept at %s", release, aside)
    folder = str(cfg.evidence_dir)
    record(folder, "settings.json", cfg.model_dump(mode="json"))

    # -- preflight --------------------------------------------------------------------------------
    missing = signals_answered(cfg)
    weight = read_weight(cfg.router)
    checks = [check_version(cfg.canary_url, release), check_health(cfg.canary_url), check_health(cfg.stable_url)]
    preflight = {
        "prometheus_answers_every_signal": {"ok": not missing, "missing": missing},
        "router_reachable": {"ok": True, "weight_in_force": weight.in_force},
        **{f"{c.name}_{'canary' if c.url == cfg.canary_url else 'stable'}": c.model_dump() for c in checks},
    }
    record(folder, "preflight.json", preflight)
    failed = [name for name, check in preflight.items() if not check["ok"]]
    if failed:
        return Failed(name="NoGo", message=f"preflight failed: {', '.join(failed)}")

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
    ledger = EvidenceLedger(folder)
    # success_criteria.json and manifest.json follow, and count towards the evidence.
    criteria = success_criteria(cfg.stages, stages, len(ledger.files()) + 2)
    record(folder, "success_criteria.json", criteria)
    rows = ledger.read_json("war_room.json") if ledger.path("war_room.json").exists() else []
    live = all(c["ok"] for c in criteria.values())
    summary = (f"# v{release}: {'Live' if live else 'RolledBack'}\n\n{oneliner}\n\n{to_markdown(rows)}\n"
               + "\n".join(f"- {'✅' if c['ok'] else '❌'} {name}" for name, c in criteria.items()) + "\n")
    publish_war_room(release, rows, summary)
    link_evidence(release, str(Path(folder).resolve()))
    seal(folder)
    logger.info(oneliner)
    if results and results[-1].outcome == "rollback":
        last = results[-1]
        return Failed(name="RolledBack", message=f"rolled back at {last.stage}%: {', '.join(last.triggers)}")
    if not live:
        unmet = [name for name, c in criteria.items() if not c["ok"]]
        return Failed(name="NotLive", message=f"success criteria not met: {', '.join(unmet)}")
    return Completed(name="Live", message=oneliner)
