"""rollback: traffic back to stable, verified, recorded. Its own flow and its own deployment.

Weight 0 first (traffic is safe within a second); then read it back from the router; on
Kubernetes, when asked, scale the canary Deployment to 0; then the record. Safe to run twice:
a router already at 0 is read back and recorded, nothing else.
"""

from __future__ import annotations

import time

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from golive.models import RollbackReport
from golive.rollback_report import render_rollback, rollback_file_name
from golive.settings import GoLiveSettings
from blocks import settings_for_run
from tasks.evidence import record, seal
from tasks.kubernetes import scale_canary
from tasks.prefect_api import rename_flow_run
from tasks.router import read_weight, set_weight
from tasks.service import check_version


def _run_name() -> str:
    params = flow_run.parameters
    settings = params.get("settings")
    release = params.get("release") or getattr(settings, "release", None) or (settings or {}).get("release")
    return f"rollback v{release} at {params.get('stage', 0)}%" if release else f"rollback at {params.get('stage', 0)}%"


@flow(name="rollback", flow_run_name=_run_name)
def rollback(
    reason: str,
    stage: int = 0,
    dry_run: bool = False,
    release: str | None = None,
    config: str | None = None,
    settings: GoLiveSettings | None = None,
    blocks: dict[str, str] | None = None,
    triggered_by: str = "operator",
    signals: dict | None = None,
    breach_detected_at: float | None = None,
    evidence_folder: str | None = None,
) -> RollbackReport:
    """Move all traffic to stable and leave `rollback_<UTC>.txt` in the release's evidence.
    Without `release`, the release is the version the canary serves; `evidence_folder` (a drill's)
    replaces the release's folder."""
    logger = get_run_logger()
    if settings is None:
        settings = settings_for_run(release or "unknown", config, None, blocks)
        if release is None:
            served = check_version(settings.canary_url)
            settings = settings.model_copy(update={"release": served.version or "unknown"})
            if flow_run.id:
                rename_flow_run(flow_run.id, f"rollback v{settings.release} at {stage}%")
    started = time.time()
    steps: list[str] = []

    before = read_weight(settings.router).in_force
    steps.append(f"read the weight in force: {before}")
    after = before
    if dry_run:
        steps.append(f"would set the canary weight {before} → 0 (dry run: not changed)")
        steps.append("would read the weight back and expect 0")
    elif before == 0:
        steps.append("weight already 0: nothing to change")
    else:
        change = set_weight(settings.router, 0)
        steps.append(f"set the canary weight {before} → {change.in_force} (in force after {change.seconds:.2f} s)")
    if not dry_run:
        after = read_weight(settings.router).in_force
        steps.append(f"read back the weight in force: {after}")
    weight_zero_at = time.time()
    cluster = settings.router.kubernetes if settings.router.on_kubernetes else None
    if cluster and cluster.scale_canary_to_zero:
        deployment = f"deployment {cluster.namespace}/{cluster.canary_deployment}"
        if dry_run:
            steps.append(f"would scale {deployment} to 0 replicas once the weight is 0")
        elif after == 0:
            scaled = scale_canary(cluster, 0, return_state=True)
            steps.append(f"scaled {deployment} to {scaled.result()} replicas" if scaled.is_completed()
                         else f"could not scale {deployment} to 0 (traffic is safe at weight 0): {scaled.message}")
    for step in steps:
        logger.info(step)

    origin = breach_detected_at or started
    report = RollbackReport(
        reason=reason, stage=stage, triggered_by=triggered_by, dry_run=dry_run, steps=steps,
        weight_before=before, weight_after=after,
        seconds_to_weight_zero=None if dry_run else round(weight_zero_at - origin, 3),
        breach_detected_at=breach_detected_at, evidence_file=rollback_file_name(started, dry_run),
    )
    folder = evidence_folder or str(settings.evidence_dir)
    record(folder, report.evidence_file, render_rollback(report, settings.release, started, signals))
    seal(folder, f"rollback{' (dry run)' if dry_run else ''}", settings.signing)
    if not dry_run and after != 0:
        raise RuntimeError(f"rollback incomplete: the router still serves weight {after}")
    return report
