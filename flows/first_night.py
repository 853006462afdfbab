"""first-night: after Live, every hour for a day, does the release really hold?

Each hour: the error counts over the burn windows (1 h/5 min, 6 h/30 min, 1 d/2 h, 3 d/6 h) and
the SLO period, the eight signals against the stage-100 snapshot, and the hour's verdict
(golive.first_night). A budget under the freeze line, or one the 1 h or 6 h burn would spend within
the page horizon, freezes under the error budget's policy (flows/error_budget_freeze.py: the
budget's label on the open pull requests, the freeze recorded, the event, the war room) and
reports `golive.error-budget.low`, the event the freeze automation runs on; a fast burn rolls
back when the policy says so. An hour without data is `nodata`; two in a row page the war room and the night
ends `Held`, saying it cannot vouch for the release. Every hour is a file: an hour whose file
exists is never measured again, and an hour measured late reads the windows that ended when it
was due.

On a Prefect server the night is `first-night-hour` runs, one per hour, scheduled at Live for the
end of each hour (a run lasts seconds; a worker that was down runs the missed ones late). Without
a server, `first-night` runs the hours in one process, sleeping between them.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

from prefect import flow, get_run_logger
from prefect.states import Completed, Failed, State

from golive import layout
from golive.first_night import (SETTLE_SECONDS, degraded_signals, fast_burn_reason, hour_due, hour_verdict,
                                night_ending, night_report, nodata_note, plot_burn)
from golive.settings import FirstNightSettings, GoLiveSettings
from golive.error_budget import spoken_duration
from golive.slo import burns_of, measurement_windows
from blocks import settings_for_run
from flows import subflows_without_heartbeats
from flows.error_budget_freeze import enforce_budget, predictions, prediction_windows
from flows.rollback import roll_back, rollback_outcome
from tasks.evidence import ReleaseFolder
from tasks.notify import announce
from tasks.prometheus import measure_error_counts, snapshot_signals

EARLY_WAIT_LIMIT_SECONDS = 120  # a scheduled hour started early (a worker's prefetch) waits for its due time
# The last hour's run ends the night; hours that were late with it (a worker back from a restart
# runs them together) get this long to be recorded first, so that it ends the whole night.
EARLIER_HOURS_WAIT_SECONDS = 60


def _utc(at: float) -> str:
    return datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


@flow(name="first-night", flow_run_name="first night v{release}")
@subflows_without_heartbeats
def first_night(release: str, config: str | None = None, settings: dict | None = None, hours: int | None = None,
                hour_seconds: float | None = None, blocks: dict[str, str] | None = None) -> State:
    """Watch the release for `hours` hours of `hour_seconds` (default 24 of 3600) after Live, in
    this one run (a machine without a Prefect server)."""
    logger = get_run_logger()
    cfg = settings_for_run(release, config, settings, blocks)
    evidence = ReleaseFolder.of(cfg)
    plan, night = _plan(cfg, evidence, hours, hour_seconds)
    for hour in range(1, night.hours + 1):
        if evidence.has(layout.first_night_hour(hour)):
            continue
        due = hour_due(plan["started_at"], hour, night.hour_seconds)
        if due + SETTLE_SECONDS > time.time():
            logger.info("hour %d of %d: measuring at %s UTC", hour, night.hours, _utc(due))
            time.sleep(due + SETTLE_SECONDS - time.time())
        if _measure_hour(cfg, evidence, night, hour, due)["status"] == "rollback":
            break
    return _end(cfg, evidence, night)


@flow(name="first-night-hour", flow_run_name="first night v{release} hour {hour}")
def first_night_hour(release: str, hour: int, started_at: float, hours: int, hour_seconds: float,
                     config: str | None = None, settings: dict | None = None,
                     blocks: dict[str, str] | None = None) -> State:
    """Measure hour `hour` of the night that started at `started_at`, over the windows that ended
    when it was due. The night ends with a rollback, or once every hour is recorded: normally in
    the last hour's run, which first gives late earlier hours a minute to finish."""
    logger = get_run_logger()
    cfg = settings_for_run(release, config, settings, blocks)
    evidence = ReleaseFolder.of(cfg)
    _, night = _plan(cfg, evidence, hours, hour_seconds, started_at)
    if evidence.has(layout.first_night_hour(hour)):
        return Completed(name="Recorded", message=f"hour {hour} of v{release} was already measured")
    rolled_back = [h["hour"] for h in _hours(evidence, night.hours) if h["status"] == "rollback"]
    if rolled_back:
        return Completed(name="NightOver", message=f"hour {hour} not measured: v{release} rolled back in hour "
                                                   f"{rolled_back[0]}")
    due = hour_due(started_at, hour, night.hour_seconds)
    wait = due + SETTLE_SECONDS - time.time()
    if 0 < wait <= EARLY_WAIT_LIMIT_SECONDS:
        time.sleep(wait)
    elif wait > EARLY_WAIT_LIMIT_SECONDS:
        return Failed(name="Early", message=f"hour {hour} is due at {_utc(due)} UTC, not yet: nothing measured")
    if hour == night.hours:
        _wait_for_earlier_hours(evidence, hour)
    late = time.time() - due - SETTLE_SECONDS
    if late > night.hour_seconds / 10:
        logger.warning("hour %d measured %.0f s late, over the windows that ended at %s UTC", hour, late, _utc(due))
    record = _measure_hour(cfg, evidence, night, hour, due)
    ending = _end(cfg, evidence, night)
    if ending.name in ("Held", "RolledBack"):
        return ending
    return Completed(name="Measured", message=f"hour {hour}/{night.hours}: {record['status']}")


def _wait_for_earlier_hours(evidence: ReleaseFolder, last: int) -> None:
    """Give runs of earlier hours that are still measuring a bounded time to record theirs."""
    deadline = time.monotonic() + EARLIER_HOURS_WAIT_SECONDS
    while time.monotonic() < deadline:
        if all(evidence.has(layout.first_night_hour(h)) for h in range(1, last)):
            return
        time.sleep(1)


def _plan(cfg: GoLiveSettings, evidence: ReleaseFolder, hours: int | None, hour_seconds: float | None,
          started_at: float | None = None) -> tuple[dict, FirstNightSettings]:
    """The night's plan (kept once recorded: a restart belongs to the night it started) and the
    first night's settings with its hours."""
    night = cfg.process.first_night
    if evidence.has(layout.FIRST_NIGHT_PLAN):
        plan = evidence.read_json(layout.FIRST_NIGHT_PLAN)
    else:
        plan = {"started_at": time.time() if started_at is None else started_at,
                "hours": hours or night.hours, "hour_seconds": hour_seconds or night.hour_seconds}
        evidence.record(layout.FIRST_NIGHT_PLAN, plan)
    return plan, night.model_copy(update={"hours": plan["hours"], "hour_seconds": plan["hour_seconds"]})


def _reference(evidence: ReleaseFolder) -> dict:
    """The canary's signals at the end of stage 100, what each hour is compared with."""
    if not evidence.has(layout.FINAL_SNAPSHOT):
        return {}
    decision = evidence.read_json(layout.FINAL_SNAPSHOT).get("decision") or {"signals": {}}
    return {name: v.get("canary") for name, v in decision["signals"].items()}


def _measure_hour(cfg: GoLiveSettings, evidence: ReleaseFolder, night: FirstNightSettings, hour: int,
                  due: float) -> dict:
    """Measure, judge, act on and record one hour over the windows that end at `due`; the record."""
    logger = get_run_logger()
    release = cfg.release
    reference = _reference(evidence)
    windows = measurement_windows(night.hour_seconds, night.slo_period_hours) | prediction_windows(cfg)
    counts = measure_error_counts(cfg.prometheus, cfg.policy, night.track, windows, due)
    burns = burns_of(counts, night.slo_objective)
    remaining, exhaustion = predictions(cfg, counts)
    signals = snapshot_signals(cfg.prometheus, cfg.policy, night.track, night.hour_seconds, due)
    degraded = degraded_signals(signals, reference, cfg.policy.catalogue())
    verdict = hour_verdict(burns, remaining, degraded, night, exhaustion, cfg.process.budget.page_horizon_hours)
    taken = []
    if "freeze" in verdict["actions"]:
        announce(cfg, "budget-low", 100, f"hour {hour}: error budget "
                 f"{'–' if remaining is None else f'{100 * remaining:.1f}%'} left, gone in "
                 f"{spoken_duration(min((s for s in exhaustion.values() if s is not None), default=None))}",
                 details={"hour": hour, "remaining": remaining, "exhaustion_seconds": exhaustion})
        if night.track != cfg.process.budget.track:
            # The freeze is read on process.budget.track, as the scheduled policy reads it (the budget-low
            # event runs it): frozen on this night's track, it would be lifted on the other.
            taken.append(f"hour {hour}: freeze left to the error-budget policy (track {cfg.process.budget.track}, "
                         f"not the night's {night.track})")
        elif not evidence.has(layout.FIRST_NIGHT_FREEZE):
            taken.append(_freeze(cfg, evidence, hour, remaining, exhaustion))
            announce(cfg, "freeze", 100, taken[-1], details={"hour": hour})
    rolled = None
    if "rollback" in verdict["actions"]:
        # It ends the go-live that went Live, by the generation it took: a newer one is left alone.
        went_live = evidence.read_json(layout.GO_LIVE_RUN) if evidence.has(layout.GO_LIVE_RUN) else {}
        state = roll_back(reason=fast_burn_reason(burns, hour), stage=100, release=release, settings=cfg,
                          triggered_by=f"first-night hour {hour}", triggers=["error-budget-burn"],
                          generation=(went_live.get("fence") or {}).get("generation"))
        rolled = rollback_outcome(state)
        taken.append(f"hour {hour}: {rolled} ({state.result().evidence_file if state.is_completed() else state.message})")
    record = {
        "hour": hour, "due": due, "measured_at_utc": _utc(due),
        "burn": {f"{h:g}": b for h, b in burns.items()}, "counts": counts, "budget_remaining": remaining,
        "budget_exhaustion_seconds": exhaustion,
        "signals": signals, "degraded": degraded, **verdict, "taken": taken, "rollback": rolled,
    }
    page = nodata_note(release, [*_hours(evidence, hour - 1), record])
    if page:
        record["war_room"] = page
        logger.error("war room: %s", page)
    evidence.record(layout.first_night_hour(hour), record)
    announce(cfg, "first-night-hour", 100, _hour_line(hour, night.hours, verdict["status"], burns, remaining, page),
             details={"hour": hour, "status": verdict["status"], "alerts": verdict["alerts"], "taken": taken})
    _report(cfg, evidence, night, bool(reference))
    logger.info("hour %d: %s (1h burn %s, budget left %s)", hour, verdict["status"],
                "–" if burns[1] is None else f"{burns[1]:.2f}",
                "–" if remaining is None else f"{100 * remaining:.1f}%")
    return record


def _end(cfg: GoLiveSettings, evidence: ReleaseFolder, night: FirstNightSettings) -> State:
    """The night's final state once it is over (the folder sealed); `Watching` while hours remain."""
    ending = night_ending(cfg.release, _hours(evidence, night.hours), night.hours,
                          frozen=evidence.has(layout.FIRST_NIGHT_FREEZE))
    if ending is None:
        return Completed(name="Watching", message=f"v{cfg.release}: hours of the first night still to measure")
    evidence.seal("first-night")
    kind, name, message = ending
    return (Failed if kind == "FAILED" else Completed)(name=name, message=message)


def _hour_line(hour: int, hours: int, status: str, burns: dict, remaining: float | None,
               page: str | None) -> str:
    """The hour's verdict as the war room reads it."""
    burn = "–" if burns.get(1) is None else f"{burns[1]:.2f}"
    budget = "–" if remaining is None else f"{100 * remaining:.1f}%"
    line = f"first night hour {hour}/{hours}: {status} (1h burn {burn}, budget left {budget})"
    return f"{line}; {page}" if page else line


def _freeze(cfg, evidence: ReleaseFolder, hour: int, remaining: float | None, exhaustion: dict) -> str:
    """Freeze under the error budget's policy (a freeze already on stays as it is); the night's record."""
    try:
        applied = enforce_budget(cfg, remaining, exhaustion, source=f"first night v{cfg.release} hour {hour}")
        outcome = {"hour": hour, **applied}
    except ValueError as exc:  # the freeze's own record unreadable: said here, the night goes on
        outcome = {"hour": hour, "labelled": [], "failed": {"all": str(exc)}}
    outcome.setdefault("labelled", [])
    evidence.record(layout.FIRST_NIGHT_FREEZE, outcome)
    return f"hour {hour}: froze changes ({len(outcome['labelled'])} pull requests labelled)"


def _hours(evidence: ReleaseFolder, up_to: int) -> list[dict]:
    """The hour records so far, oldest first."""
    return [evidence.read_json(layout.first_night_hour(h)) for h in range(1, up_to + 1)
            if evidence.has(layout.first_night_hour(h))]


def _report(cfg, evidence: ReleaseFolder, night, reference_found: bool) -> None:
    hours = _hours(evidence, night.hours)
    plot_name = layout.first_night_plot(cfg.release)
    evidence.record(plot_name, plot_burn(hours, night.green_burn))
    taken = [action for h in hours for action in h["taken"]]
    evidence.record(layout.first_night_report(cfg.release),
                    night_report(cfg.release, hours, reference_found, plot_name, taken))
