"""flight-check: preflight → micro blast radius → release ritual → artifact completeness.

The runbook's T-10 and T-2 minutes as one umbrella. It ends `Cleared` (CLEARED FOR TAKEOFF) or
`NoGo` with every failed check named, and leaves flight_check.json saying which.

It sets an earlier attempt's folder aside, so whoever runs it holds the go-live lock of the
traffic target and the release (tasks.prefect_api.go_live_lock): a go-live runs it under its own
lock, `golive flight-check` takes the lock around it. The flow does not take it itself, or a
go-live would lock itself out.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.states import Completed, Failed, State

from golive import layout
from golive.settings import GoLiveSettings, SettingsError, load_settings
from golive.validation import redacted
from flows import subflows_without_heartbeats
from flows.artifact_completeness import artifact_completeness
from flows.micro_blast_radius import micro_blast_radius
from flows.preflight import preflight
from flows.release_ritual import release_ritual
from tasks.evidence import ReleaseFolder
from tasks.http_client import clients_for_this_run


def set_aside_previous(folder: Path) -> str | None:
    """A rerun of a release keeps the earlier attempt's evidence beside it, never mixed in. Only
    under the go-live lock: never a folder a running go-live owns."""
    if not folder.exists() or not any(folder.iterdir()):
        return None
    stamp = datetime.fromtimestamp(folder.stat().st_mtime, timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    aside = folder.with_name(f"{folder.name}~{stamp}")
    folder.rename(aside)
    return str(aside)


def _verdict(settings: GoLiveSettings, failed: list[str], evidence: ReleaseFolder, started: float) -> State:
    evidence.record(layout.FLIGHT_CHECK, {"release": settings.release, "cleared": not failed, "failed": failed,
                                       "elapsed_seconds": round(time.time() - started, 1)})
    evidence.seal("flight-check")
    if failed:
        return Failed(name="NoGo", message="NO-GO: " + "; ".join(failed))
    return Completed(name="Cleared", message="CLEARED FOR TAKEOFF")


@flow(name="flight-check", flow_run_name="flight check v{release}")
@subflows_without_heartbeats
def flight_check(release: str, config: str | None = None, settings: dict | None = None,
                 blast_radius_seconds: float | None = None) -> State:
    """Every check before the first user is moved, on the target in `config` or `settings`."""
    logger = get_run_logger()
    started = time.time()
    try:
        cfg = load_settings(settings if settings is not None else config, release=release,
                            process={"blast_radius_seconds": blast_radius_seconds})
    except SettingsError as exc:
        return Failed(name="NoGo", message=f"NO-GO: config: {exc}")
    evidence = ReleaseFolder.of(cfg)
    aside = set_aside_previous(cfg.evidence_dir)
    if aside:
        logger.info("earlier evidence of v%s kept at %s", release, aside)
    # Settings hold no secret by construction; the net is for one that slips in anyway.
    evidence.record(layout.SETTINGS, redacted(cfg.model_dump(mode="json")))

    with clients_for_this_run():  # the four flows below share them
        checks = preflight(cfg, run_started=started)
        if checks["decision"] != "GO":
            return _verdict(cfg, checks["reasons"], evidence, started)
        blast = micro_blast_radius(cfg)
        if not blast.ok:
            # A drill that fails before any traffic moved is the `drill-failed` trigger: nothing to roll back.
            return _verdict(cfg, [f"drill-failed: micro_blast_radius: {f}" for f in blast.failures], evidence, started)
        ritual = release_ritual(cfg)
    failed = [f"release_ritual: {name}" for name in ritual["failed"]]
    complete = artifact_completeness(cfg, "takeoff")
    if not complete["ok"]:
        failed.append(f"artifact_completeness: {complete['files']} files of {complete['minimum_files']}"
                      + (f", missing {', '.join(complete['missing'])}" if complete["missing"] else ""))
    return _verdict(cfg, failed, evidence, started)
