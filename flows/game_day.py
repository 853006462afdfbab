"""game-day: the Monday drill. Rollback drill → one chaos scenario → contract spot check →
idempotency burst → outbox-lag smoke; the weekly record in the runbook's form, and a Prefect
markdown artifact. `first_flight` runs the runbook's three mini drills only (rollback,
idempotency burst, outbox smoke) before a team's first release."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.states import Completed, Failed, State

from blocks import settings_for_run
from golive import layout
from golive.drills import weekly_record
from golive.settings import GoLiveSettings, SettingsError
from flows import subflows_without_heartbeats
from flows.chaos_scenario import chaos_scenario, pick_scenario
from flows.contract_check import contract_check
from flows.idempotency_burst import idempotency_burst
from flows.outbox_smoke import outbox_smoke
from flows.rollback_drill import rollback_drill
from tasks.evidence import ReleaseFolder


# A game day rehearses the target, not a release; the settings still name one.
GAME_DAY_RELEASE = "0.0.0-game-day"


def drill_folder(cfg: GoLiveSettings, day: str) -> str:
    """`<evidence_root>/<game_day.folder>/<day>`, proven to stay inside the evidence root: the
    settings refuse `..` and absolute folders, and this refuses a link that leads out of it."""
    root = Path(cfg.process.evidence_root)
    folder = root / cfg.process.game_day.folder / day
    if root.resolve() not in folder.resolve().parents:
        raise SettingsError(f"process.game_day.folder: {folder} leaves process.evidence_root {root}")
    return str(folder)


@flow(name="game-day", flow_run_name="game day")
@subflows_without_heartbeats
def game_day(config: str | None = None, settings: dict | None = None, blocks: dict[str, str] | None = None,
             scenario: str | None = None, seed: int | None = None, first_flight: bool = False) -> State:
    """Run the drills against the target; every result and its inputs go into
    <evidence_root>/<game_day.folder>/<YYYYMMDD>/."""
    logger = get_run_logger()
    cfg = settings_for_run(GAME_DAY_RELEASE, config, settings, blocks)
    today = datetime.now(timezone.utc).strftime("%Y%m%d")
    folder = drill_folder(cfg, today)
    results = {"rollback_drill": rollback_drill(cfg, folder)}
    if not first_flight:
        name, seed = pick_scenario(scenario, seed)
        results["chaos"] = chaos_scenario(cfg, folder, name)
        results["contract"] = contract_check(cfg, folder)
    results["idempotency_burst"] = idempotency_burst(cfg, folder)
    results["outbox_smoke"] = outbox_smoke(cfg, folder)
    text = weekly_record(today, results, seed if not first_flight else None)
    name_of_record = layout.drill_record(today, first_flight)
    evidence = ReleaseFolder(path=folder, signing=cfg.process.signing)
    evidence.record(name_of_record, text)
    evidence.seal("game-day")
    create_markdown_artifact(f"```\n{text}```\n", key=f"game-day-{today}", description=f"Game day {today}")
    failed = [key for key, r in results.items() if not r["ok"]]
    logger.info("game day %s: %s", today, "PASS" if not failed else f"FAIL ({', '.join(failed)})")
    if failed:
        return Failed(name="DrillFailed", message=f"failed: {', '.join(failed)}; see {folder}/{name_of_record}")
    return Completed(name="Passed", message=f"all drills passed; {folder}/{name_of_record}")
