"""preflight: the runbook's T-10 minutes, every check its own task and its own evidence file.

Configuration, every signal's PromQL on both tracks, the scrape targets, users' traffic, the
router at weight 0, both versions served and healthy, the evidence folder, the git tree and
tag, the signing key. One failure, or the whole taking longer than its budget, is NO-GO.
"""

from __future__ import annotations

import time

from prefect import flow, get_run_logger

from golive import layout
from golive import preflight as rules
from golive.settings import GoLiveSettings
from golive.signals import TRACKS
from tasks.evidence import ReleaseFolder, inspect_folder
from tasks.git_repo import GitError, read_git_state
from tasks.prometheus import check_promql, check_scrape_targets, check_traffic
from tasks.router import RouterError, read_weight
from tasks.service import check_health, check_version
from tasks.signing import check_signing_key


@flow(name="preflight", flow_run_name="preflight v{settings.release}")
def preflight(settings: GoLiveSettings, run_started: float | None = None) -> dict:
    """Run every check; returns the summary written to preflight.json (`decision` GO or NO-GO)."""
    logger = get_run_logger()
    started = time.monotonic()
    policy, prometheus, target, process = settings.policy, settings.prometheus, settings.target, settings.process
    evidence = ReleaseFolder.of(settings)
    folder_state = inspect_folder(evidence.path)
    checks = [
        rules.evidence_folder_check(settings.evidence_dir, folder_state["writable_error"], folder_state["files"],
                                    run_started or time.time()),
        rules.config_check(policy),
        check_scrape_targets(prometheus),
        check_traffic(prometheus),
        *(check_promql(prometheus, policy, sig.name, track) for sig in policy.catalogue() for track in TRACKS),
    ]
    try:
        checks.append(rules.router_check(read_weight(target.router)))
    except RouterError as exc:
        checks.append(rules.router_check(None, str(exc)))
    checks += [
        rules.service_check("canary_version", check_version(target.canary_url, settings.release)),
        rules.service_check("canary_health", check_health(target.canary_url)),
        rules.stable_version_check(check_version(target.stable_url), settings.release),
        rules.service_check("stable_health", check_health(target.stable_url)),
    ]
    if process.git.repo is None:
        checks += rules.git_checks(None, configured=False)
    else:
        try:
            checks += rules.git_checks(read_git_state(process.git.repo, settings.release, process.git.remote))
        except GitError as exc:
            checks += rules.git_checks(None, str(exc))
    checks.append(check_signing_key(process.signing))

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
