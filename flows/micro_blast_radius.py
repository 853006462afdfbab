"""micro-blast-radius: the runbook's `… https://canary v1.4.0 30` before any user is moved.

Header-routed traffic (`X-Canary:` the router's pin) in the users' mix goes to the canary only, for a few
seconds; the services' own counters prove stable saw none of it.
"""

from __future__ import annotations

from prefect import flow, get_run_logger

from golive import layout
from golive.blast_radius import DrillSample, evaluate, samples_csv
from golive.models import BlastRadiusResult
from golive.settings import GoLiveSettings
from tasks.drill_traffic import send_canary_traffic
from tasks.evidence import ReleaseFolder
from tasks.http_client import clients_for_this_run
from tasks.service import read_drill_requests


# The sandbox router's count of requests per track and source (sandbox.router_metrics).
ROUTER_REQUESTS_METRIC = "golive_router_requests_total"


def _drill_counters(settings: GoLiveSettings) -> dict[str, float | None]:
    """Both tracks' drill counts, read at the same moment: the services' own counters, or for a
    drill of paths (a service that counts no drill) the sandbox router's per track."""
    target = settings.target
    if target.drill_paths:
        control = target.router.control_url
        stable = read_drill_requests.submit(control, ROUTER_REQUESTS_METRIC, "stable")
        canary = read_drill_requests.submit(control, ROUTER_REQUESTS_METRIC, "canary")
    else:
        stable, canary = read_drill_requests.submit(target.stable_url), read_drill_requests.submit(target.canary_url)
    return {"stable": stable.result(), "canary": canary.result()}


def _delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


@flow(name="micro-blast-radius", flow_run_name="micro blast radius v{settings.release}")
def micro_blast_radius(settings: GoLiveSettings, seconds: float | None = None, url: str | None = None) -> BlastRadiusResult:
    """Send canary-only traffic through `url` (default: the traffic entry) for `seconds` and judge it."""
    logger = get_run_logger()
    evidence = ReleaseFolder.of(settings)
    target = settings.target
    url = url or target.traffic_url
    seconds = seconds or settings.process.blast_radius_seconds
    with clients_for_this_run():
        before = _drill_counters(settings)
        logger.info("sending canary-only traffic to %s for %g s", url, seconds)
        samples = send_canary_traffic(url, seconds, settings.process.blast_radius_concurrency,
                                      paths=list(target.drill_paths) if target.drill_paths else None,
                                      router=target.router)
        after = _drill_counters(settings)
    counted = {track: _delta(before[track], after[track]) for track in before}
    verdict = evaluate([DrillSample(**s) for s in samples], settings.release, counted["stable"], counted["canary"],
                       settings.policy.catalogue())
    result = BlastRadiusResult(url=url, release=settings.release, seconds=seconds, **verdict)
    evidence.record(layout.MICRO_BLAST_RADIUS_COUNTERS, {"before": before, "after": after, "drill_requests": counted})
    evidence.record(layout.MICRO_BLAST_RADIUS_REQUESTS, samples_csv(samples))
    evidence.record(layout.MICRO_BLAST_RADIUS, result)
    evidence.seal("micro-blast-radius")
    logger.info("micro blast radius: %s (%d requests, %.1f%% as expected, p95 %s ms, stable reached %s)",
                "PASS" if result.ok else "FAIL: " + "; ".join(result.failures), result.requests,
                100 * result.success_ratio, result.p95_ms, result.stable_requests)
    return result
