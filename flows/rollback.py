"""rollback: traffic back to stable, verified, recorded. Its own flow and its own deployment.

Weight 0 is written first, before anything is read: a router whose reads fail still gets it.
Then it is read back; a write or a read that fails is tried again with backoff for the rollback's
budget (`rollback_budget_seconds`). Weight 0 read back ends `RolledBack` (a report); anything else
ends Failed named `RollbackFailed`, loudly: the traffic may still be on the canary. On Kubernetes,
when asked, the canary Deployment is then scaled to 0. Safe to run twice.

Started by the `go-live` deployment's trigger when a go-live run crashed or was cancelled, it is
given that run's id (`crashed_run`) and rolls back the release and target that run was given.
"""

from __future__ import annotations

import time

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from prefect.states import Failed, State

from golive import layout
from golive.models import RollbackReport
from golive.rollback_report import render_rollback, rollback_file_name
from golive.settings import GoLiveSettings, RouterSettings, SettingsError
from golive.validation import error_line, parse_release
from blocks import settings_for_run
from tasks.evidence import ReleaseFolder, list_evidence
from tasks.kubernetes import scale_canary
from tasks.notify import announce
from tasks.prefect_api import free_go_live_lock, read_flow_run_parameters, rename_flow_run
from tasks.router import read_weight, set_weight
from tasks.service import check_version

RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)


def _run_name() -> str:
    params = flow_run.parameters
    settings = params.get("settings")
    release = params.get("release") or getattr(settings, "release", None) or (settings or {}).get("release")
    return f"rollback v{release} at {params.get('stage', 0)}%" if release else f"rollback at {params.get('stage', 0)}%"


def _failure(state: State) -> str:
    exc = state.result(raise_on_failure=False)
    return error_line(exc) if isinstance(exc, BaseException) else " ".join((state.message or state.name).split())


def _weight_to_zero(router: RouterSettings, budget_seconds: float, steps: list[str]) -> int | None:
    """Write 0 and read it back until 0 is read or the budget is spent; the weight last read
    (None: never read). A failed read never stops the write."""
    write, read = set_weight.with_options(retries=0), read_weight.with_options(retries=0)
    deadline = time.monotonic() + budget_seconds
    after = None
    for attempt, delay in enumerate((*RETRY_DELAYS, *[RETRY_DELAYS[-1]] * 100), 1):
        wrote = write(router, 0, return_state=True)
        if wrote.is_completed():
            steps.append(f"set the canary weight to 0 (in force after {wrote.result().seconds:.2f} s)")
        else:
            steps.append(f"could not set the canary weight to 0 (attempt {attempt}): {_failure(wrote)}")
        readback = read(router, return_state=True)
        if readback.is_completed():
            after = readback.result().in_force
            steps.append(f"read back the weight in force: {after}")
            if after == 0:
                return after
        else:
            steps.append(f"could not read the weight back, unverified (attempt {attempt}): {_failure(readback)}")
        if time.monotonic() + delay > deadline:
            steps.append(f"gave up after {attempt} attempts (rollback budget {budget_seconds:g} s)")
            return after
        time.sleep(delay)
    return after


def _settings_of(release: str | None, config: str | None, blocks: dict[str, str] | None, stage: int,
                 crashed_run: str | None) -> GoLiveSettings:
    settings = None
    if crashed_run:
        given = read_flow_run_parameters(crashed_run)
        release = release or given.get("release")
        config, blocks, settings = config or given.get("config"), blocks or given.get("blocks"), given.get("settings")
    cfg = settings_for_run(release or "0.0.0", config, settings, blocks)
    if release is None:
        served = check_version(cfg.target.canary_url)
        try:
            cfg = cfg.model_copy(update={"release": parse_release(served.version or "")})
        except ValueError as exc:
            raise SettingsError(f"release: not given, and the canary's /version answer is no release: {exc}") from None
        if flow_run.id:
            rename_flow_run(flow_run.id, f"rollback v{cfg.release} at {stage}%")
    return cfg


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
    triggers: list[str] | None = None,
    crashed_run: str | None = None,
) -> RollbackReport | State:
    """Move all traffic to stable and leave `rollback_<UTC>.txt` in the release's evidence.
    Without `release`, the release is the one `crashed_run` was given, else the version the canary
    serves; `evidence_folder` (a drill's) replaces the release's folder."""
    logger = get_run_logger()
    if settings is None:
        settings = _settings_of(release, config, blocks, stage, crashed_run)
    # The stages a dead go-live raised the weight for: its evidence says how far it got.
    moved = [p for name in list_evidence(str(settings.evidence_dir))
             if (p := layout.parse_weight_set(name)) is not None] if crashed_run else []
    stage = stage or max(moved, default=0)
    router = settings.target.router
    started = time.time()
    steps: list[str] = []

    if dry_run:
        current = read_weight(router, return_state=True)
        after = current.result().in_force if current.is_completed() else None
        steps.append(f"read the weight in force: {after}" if after is not None
                     else f"could not read the weight in force: {_failure(current)}")
        steps.append(f"would set the canary weight {'?' if after is None else after} → 0 (dry run: not changed)")
        steps.append("would read the weight back and expect 0")
    else:
        after = _weight_to_zero(router, settings.policy.rollback_budget_seconds, steps)
    weight_zero_at = time.time()
    cluster = router.kubernetes if router.on_kubernetes else None
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
        weight_before=stage or None, weight_after=after, verified=not dry_run and after == 0,
        seconds_to_weight_zero=round(weight_zero_at - origin, 3) if not dry_run and after == 0 else None,
        breach_detected_at=breach_detected_at, evidence_file=rollback_file_name(started, dry_run, str(flow_run.id) if flow_run.id else None),
        triggers=list(triggers or ()),
    )
    folder = ReleaseFolder(path=evidence_folder or str(settings.evidence_dir), signing=settings.process.signing)
    if not dry_run:
        announce(settings, "rolled-back" if report.verified else "rollback-failed", stage, reason)
    try:
        folder.record(report.evidence_file, render_rollback(report, settings.release, started, signals))
        folder.seal(f"rollback{' (dry run)' if dry_run else ''}")
    except Exception as exc:  # noqa: BLE001 - the traffic is where it is; a lost record must not hide it
        logger.error("rollback: the record could not be written or sealed: %s", exc)
    if moved and report.verified:
        free_go_live_lock(router.target, settings.release)
        logger.info("the dead run's locks on %s and v%s are free again", router.target, settings.release)
    if report.outcome == "RollbackFailed":
        message = (f"ROLLBACK FAILED: weight 0 not verified within {settings.policy.rollback_budget_seconds:g} s; "
                   f"the router last read {'nothing' if after is None else after}: traffic may still reach the canary")
        logger.critical(message)
        return Failed(name="RollbackFailed", message=message)
    return report
