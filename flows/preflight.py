"""preflight: the runbook's T-10 minutes, every check its own task and its own evidence file.

Configuration, every signal's PromQL on both tracks (and, as `golive signals check` says it, every
signal of the list with data for both tracks and no metric Prometheus has never seen), the scrape
targets, users' traffic, the router at weight 0, both versions served and healthy, the evidence
folder, the git tree and tag, the signing key. The checks are independent, so they are asked all at once. One failure,
or the whole taking longer than its budget, is NO-GO.
"""

from __future__ import annotations

import time

from prefect import flow, get_run_logger, unmapped
from prefect.futures import PrefectFuture
from prefect.task_runners import ThreadPoolTaskRunner

from golive import layout
from golive import preflight as rules
from golive.models import Check
from golive.settings import GoLiveSettings, RouterSettings
from golive.signals import TRACKS
from flows.error_budget_freeze import preflight_budget_check
from tasks.evidence import ReleaseFolder, inspect_folder
from tasks.git_repo import GitError, read_git_state
from tasks.http_client import clients_for_this_run
from tasks.prometheus import check_promql, check_scrape_targets, check_signal_data, check_traffic
from tasks.router import RouterError, read_weight
from tasks.router_base import read_canary_pin
from tasks.service import check_health, check_version
from tasks.signing import check_signing_key


def _router_check(reading: PrefectFuture, router: RouterSettings) -> Check:
    try:
        read_canary_pin(router)
    except RouterError as exc:
        return rules.router_check(None, pin_problem=str(exc))
    try:
        return rules.router_check(reading.result())
    except RouterError as exc:
        return rules.router_check(None, str(exc))


def _git_checks(state: PrefectFuture | None) -> list[Check]:
    if state is None:
        return rules.git_checks(None, configured=False)
    try:
        return rules.git_checks(state.result())
    except GitError as exc:
        return rules.git_checks(None, str(exc))


@flow(name="preflight", flow_run_name="preflight v{settings.release}", task_runner=ThreadPoolTaskRunner(max_workers=8))
def preflight(settings: GoLiveSettings, run_started: float | None = None) -> dict:
    """Run every check; returns the summary written to preflight.json (`decision` GO or NO-GO)."""
    logger = get_run_logger()
    started = time.monotonic()
    policy, prometheus, target, process = settings.policy, settings.prometheus, settings.target, settings.process
    evidence = ReleaseFolder.of(settings)
    with clients_for_this_run():
        signals = [(sig.name, track) for sig in policy.catalogue() for track in TRACKS]
        scrape_targets = check_scrape_targets.submit(prometheus)
        traffic = check_traffic.submit(prometheus)
        signal_data = check_signal_data.submit(prometheus, policy)
        promql = check_promql.map(unmapped(prometheus), unmapped(policy), [name for name, _ in signals],
                                  [track for _, track in signals])
        router = read_weight.submit(target.router)
        canary_version = check_version.submit(target.canary_url, settings.release)
        canary_health = check_health.submit(target.canary_url)
        stable_version = check_version.submit(target.stable_url)
        stable_health = check_health.submit(target.stable_url)
        git = (read_git_state.submit(process.git.repo, settings.release, process.git.remote)
               if process.git.repo is not None else None)
        signing = check_signing_key.submit(process.signing)
        folder_state = inspect_folder(evidence.path)

        checks = [
            rules.evidence_folder_check(settings.evidence_dir, folder_state["writable_error"], folder_state["files"],
                                        run_started or time.time()),
            rules.config_check(policy),
            scrape_targets.result(),
            traffic.result(),
            *promql.result(),
            signal_data.result(),
            _router_check(router, target.router),
            rules.service_check("canary_version", canary_version.result()),
            rules.service_check("canary_health", canary_health.result()),
            rules.stable_version_check(stable_version.result(), settings.release),
            rules.service_check("stable_health", stable_health.result()),
            *_git_checks(git),
            signing.result(),
            preflight_budget_check(settings),
        ]

    for check in checks:
        evidence.record(layout.preflight_check(check.name), check)
    result = rules.summary(checks, time.monotonic() - started, process.preflight_budget_seconds)
    evidence.record(layout.PREFLIGHT, result)
    evidence.seal("preflight")
    for reason in result["reasons"]:
        logger.warning("NO-GO %s", reason)
    logger.info("preflight v%s: %s (%d checks in %.1f s)", settings.release, result["decision"], len(checks),
                result["elapsed_seconds"])
    return result
