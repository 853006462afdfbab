"""rollback-drill: the rollback rehearsed as a dry run; nothing may change, every step is timed."""

from __future__ import annotations

import time

from prefect import flow

from golive import layout
from golive.settings import GoLiveSettings
from flows import subflows_without_heartbeats
from flows.rollback import rollback
from tasks.evidence import ReleaseFolder
from tasks.router import read_weight


@flow(name="rollback-drill", flow_run_name="rollback drill")
@subflows_without_heartbeats
def rollback_drill(settings: GoLiveSettings, folder: str) -> dict:
    """Read the weight, run `rollback` with dry_run, read the weight again: it must not move."""
    at = time.time()
    stamp = layout.utc_stamp(at)
    timings = {}
    started = time.monotonic()
    before = read_weight(settings.target.router).in_force
    timings["read the weight"] = time.monotonic() - started
    started = time.monotonic()
    report = rollback(reason="rollback drill (dry run)", stage=before or None, dry_run=True, settings=settings,
                      triggered_by="rollback drill", evidence_folder=folder)
    timings["rollback, dry run"] = time.monotonic() - started
    started = time.monotonic()
    after = read_weight(settings.target.router).in_force
    timings["read the weight back"] = time.monotonic() - started
    ok = before == after
    failures = [] if ok else [f"the dry run changed the weight: {before} → {after}"]
    lines = [f"rollback drill {stamp}", f"weight before: {before}", f"weight after:  {after}",
             f"result: {'PASS: nothing changed' if ok else 'FAIL: ' + failures[0]}", "", "steps the rollback would take:",
             *(f"  - {step}" for step in report.steps), "", "timings:",
             *(f"  - {name}: {seconds:.2f} s" for name, seconds in timings.items())]
    evidence = ReleaseFolder(path=folder, signing=settings.process.signing)
    evidence.record(layout.rollback_drill(at), "\n".join(lines) + "\n")
    evidence.seal("rollback-drill")
    return {"ok": ok, "failures": failures, "summary": f"dry run, weight {before} unchanged, "
            f"{sum(timings.values()):.1f} s" if ok else failures[0], "timings": timings}
