"""idempotency-burst: one idempotency key, many times at once, to the canary. One order, N−1 409s."""

from __future__ import annotations

from prefect import flow, get_run_logger

from golive import layout
from golive.drills import burst_verdict
from golive.settings import GoLiveSettings
from tasks.drill_traffic import send_keyed_burst
from tasks.evidence import ReleaseFolder
from tasks.service import read_idempotency_conflicts


@flow(name="idempotency-burst", flow_run_name="idempotency burst")
def idempotency_burst(settings: GoLiveSettings, folder: str, requests: int | None = None,
                      parallel: int | None = None) -> dict:
    """Send the burst through the router to the canary and compare with its conflict counter."""
    requests = requests or settings.process.game_day.burst_requests
    parallel = parallel or settings.process.game_day.burst_parallel
    before = read_idempotency_conflicts(settings.target.canary_url)
    sent = send_keyed_burst(settings.target.traffic_url, requests, parallel, settings.target.router)
    after = read_idempotency_conflicts(settings.target.canary_url)
    verdict = burst_verdict(sent["statuses"], before, after)
    summary = (f"{verdict['created']} created, {verdict['conflicts']} conflicts of {requests}"
               + (f", {verdict['duplicates']} DUPLICATES" if verdict["duplicates"] else ""))
    result = {**verdict, "summary": summary, "inputs": {"requests": requests, "parallel": parallel, "key": sent["key"],
                                                         "url": settings.target.traffic_url},
              "conflicts_counter": {"before": before, "after": after}}
    evidence = ReleaseFolder(path=folder, signing=settings.process.signing)
    evidence.record(layout.IDEMPOTENCY_BURST, result)
    evidence.seal("idempotency-burst")
    if not result["ok"]:
        get_run_logger().error("idempotency burst: %s", "; ".join(result["failures"]))
    return result
