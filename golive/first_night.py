"""The first night's rules and report: an hour's verdict from its burn rates, and the morning's
markdown (hourly table, the burn-rate plot, a mini-RCA filled with the facts).

The runbook's thresholds: a 1 h burn under 1.5 is green; less than 10 % of the error budget left
freezes changes, and so does a budget that the 1 h or 6 h burn would spend within the page
horizon (`process.budget.page_horizon_hours`, 2 h): the night freezes before the budget is gone,
not after (golive.error_budget's rules, which the freeze then follows); the fast-burn page (1 h
and 5 min both at 14.4 or more) raises the `error-budget-burn` trigger and, when the policy says
so, rolls back.

An hour without data (Prometheus answered nothing, or no request was counted) is `nodata`: not a
zero burn and never green, for a night that cannot see cannot vouch. Two such hours in a row page
the war room, and the night ends `Held` saying it could not vouch for the release.

Hour `h` of a night that started at `T` is due at `T + h × hour`: it measures the windows that end
then, however late it runs, and its file is its record (an hour is measured once). The night ends
at its first rollback, or once every hour is recorded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from golive.error_budget import freeze_reason
from golive.plots import png
from golive.settings import FirstNightSettings
from golive.signals import Signal
from golive.slo import BURN_WINDOWS, firing

__all__ = ["NODATA_PAGE_AFTER", "SETTLE_SECONDS", "degraded_signals", "fast_burn_reason", "hour_due", "hour_verdict",
           "night_ending", "night_report", "nodata_note", "plot_burn", "unvouched"]

# A signal has degraded when it is above its stage-100 value by more than this share, and by more
# than this share of its threshold (so a 0.01 % → 0.02 % 5xx wobble is not a degradation).
RELATIVE_TOLERANCE = 0.25
THRESHOLD_SHARE_FLOOR = 0.10
FAST_BURN = BURN_WINDOWS[0]
NODATA = "nodata"
NODATA_PAGE_AFTER = 2  # hours without data in a row before the war room is paged
SETTLE_SECONDS = 1.5  # an hour is read this long after it is due, once its last scrapes have landed


def hour_due(started_at: float, hour: int, hour_seconds: float) -> float:
    """When hour `hour` (1-based) of a night that started at `started_at` ends: the end of the
    windows it measures, whenever it is measured."""
    if hour < 1:
        raise ValueError(f"hour: expected 1 or more, got {hour}")
    return started_at + hour * hour_seconds


def degraded_signals(now: Mapping[str, float | None], at_100: Mapping[str, float | None],
                     catalogue: Sequence[Signal]) -> list[str]:
    """Signals worse now than at the end of stage 100 (higher is worse for all eight)."""
    worse = []
    for signal in catalogue:
        value, reference = now.get(signal.name), at_100.get(signal.name)
        if value is None or reference is None:
            continue
        allowed = max(reference * (1 + RELATIVE_TOLERANCE), reference + THRESHOLD_SHARE_FLOOR * signal.threshold)
        if value > allowed:
            worse.append(signal.name)
    return worse


def hour_verdict(burns: Mapping[float, float | None], budget_remaining: float | None, degraded: Sequence[str],
                 policy: FirstNightSettings, exhaustion: Mapping[str, float | None] | None = None,
                 horizon_hours: float = 2.0) -> dict:
    """`status` (rollback, nodata, freeze, watch, green: the first that applies), the alerts that
    fire, and the actions to take. No 1 h burn (no answer, no requests) is `nodata`, never green.
    `exhaustion` is the seconds until the budget is spent at each window's burn (`{"1h": …}`)."""
    fired = firing(burns)
    actions = []
    triggers = []
    if FAST_BURN in fired:
        triggers.append("error-budget-burn")
        actions.append(policy.on_fast_burn)
    frozen_by = freeze_reason(budget_remaining, exhaustion or {}, policy.freeze_below_budget, horizon_hours)
    if frozen_by is not None and "freeze" not in actions:
        actions.append("freeze")
    hourly = burns.get(1)
    if "rollback" in actions:
        status = "rollback"
    elif hourly is None:
        status = NODATA
    elif "freeze" in actions:
        status = "freeze"
    elif hourly < policy.green_burn and not degraded:
        status = "green"
    else:
        status = "watch"
    return {"status": status, "alerts": [w.name for w in fired], "triggers": triggers, "actions": actions}


def fast_burn_reason(burns: Mapping[float, float | None], hour: int) -> str:
    """The rollback's reason when the fast-burn page fires."""
    long, short = burns[FAST_BURN.long_hours], burns[FAST_BURN.short_hours]
    return (f"error-budget-burn: {FAST_BURN.long_hours:g}h burn {long:.1f}, {FAST_BURN.short_hours * 60:g}m burn "
            f"{short:.1f} (≥ {FAST_BURN.factor:g}) in first-night hour {hour}")


def _nodata_run(hours: Sequence[Mapping]) -> list[int]:
    """The hours of the run of `nodata` hours that ends with the last hour (oldest first)."""
    run: list[int] = []
    for h in reversed(hours):
        if h["status"] != NODATA:
            break
        run.insert(0, h["hour"])
    return run


def nodata_note(release: str, hours: Sequence[Mapping]) -> str | None:
    """The war room's page when the last `NODATA_PAGE_AFTER` hours (or more) had no data; `hours`
    are the hour records so far, oldest first, the current one last."""
    run = _nodata_run(hours)
    if len(run) < NODATA_PAGE_AFTER:
        return None
    return (f"{len(run)} hours without data (hours {run[0]}–{run[-1]}): the first night cannot vouch for "
            f"v{release}; check Prometheus and the release's traffic")


def unvouched(release: str, hours: Sequence[Mapping]) -> str | None:
    """The night's ending message when it paged for missing data; None when it never had to."""
    longest, run = 0, 0
    for h in hours:
        run = run + 1 if h["status"] == NODATA else 0
        longest = max(longest, run)
    if longest < NODATA_PAGE_AFTER:
        return None
    return f"{longest} hours without data: the first night cannot vouch for v{release}"


def night_ending(release: str, hours: Sequence[Mapping], total: int, frozen: bool) -> tuple[str, str, str] | None:
    """How the night ends, as (state type, name, message), from the hour records so far; None while
    an hour is still to be measured. A rollback ends it at once; a night that paged for missing
    data ends `Held` failed (it cannot vouch); otherwise `Held` completed."""
    rolled = [h for h in hours if h["status"] == "rollback"]
    if rolled:
        outcome = rolled[0].get("rollback") or "RolledBack"
        if outcome == "LeftAlone":
            return "FAILED", "Superseded", (f"v{release}'s first night ended: a newer go-live holds the target, "
                                            "which the night's rollback left alone (error-budget-burn)")
        if outcome == "RollbackFailed":
            return "FAILED", "RollbackFailed", (f"v{release}: the first night's rollback could not verify weight 0 "
                                                "(error-budget-burn): page now")
        return "FAILED", "RolledBack", f"v{release} rolled back during the first night (error-budget-burn)"
    if not set(range(1, total + 1)) <= {h["hour"] for h in hours}:
        return None
    blind = unvouched(release, sorted(hours, key=lambda h: h["hour"]))
    if blind:
        return "FAILED", "Held", blind
    return "COMPLETED", "Held", f"v{release} held {total} hours" + (", changes frozen" if frozen else "")


def _cell(value: float | None, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def _percent(share: float | None) -> str:
    return "–" if share is None else f"{100 * share:.1f}%"


def night_report(release: str, hours: Sequence[Mapping], reference_found: bool, plot_name: str | None,
                 actions_taken: Sequence[str]) -> str:
    """first_night_<v>.md: the hourly table, the plot, and the RCA skeleton with the facts in it."""
    lines = [f"# First night of v{release}", ""]
    if plot_name:
        lines += [f"![burn rate per hour]({plot_name})", ""]
    lines += ["| hour | measured at (UTC) | burn 1h | burn 6h | burn 24h | budget left | p95 ms | 5xx % | degraded | status |",
              "|---:|---|---:|---:|---:|---:|---:|---:|---|---|"]
    for h in hours:
        burn = h["burn"]
        lines.append(
            f"| {h['hour']} | {h['measured_at_utc']} | {_cell(burn.get('1'), '.2f')} | {_cell(burn.get('6'), '.2f')} "
            f"| {_cell(burn.get('24'), '.2f')} | {_percent(h['budget_remaining'])} "
            f"| {_cell(h['signals'].get('api_p95_ms'), '.0f')} | {_cell(h['signals'].get('http_5xx_pct'), '.2f')} "
            f"| {', '.join(h['degraded']) or '–'} | {h['status']} |")
    notes = [h for h in hours if h.get("war_room")]
    if notes:
        lines += ["", "## War room", "", "| hour | note |", "|---:|---|",
                  *(f"| {h['hour']} | {h['war_room']} |" for h in notes)]
    not_green = [h for h in hours if h["status"] != "green"]
    moved = sorted({name for h in hours for name in h["degraded"]})
    lines += ["", "## Mini-RCA (facts filled in; a person finishes it)", "", "### Timeline"]
    if not not_green:
        lines.append(f"- {len(hours)} hours watched, every one green; nothing to explain.")
    for h in not_green:
        fired = f"; alerts {', '.join(h['alerts'])}" if h["alerts"] else ""
        lines.append(f"- hour {h['hour']} ({h['measured_at_utc']}): {h['status']}{fired}"
                     + (f"; actions: {', '.join(h['actions'])}" if h["actions"] else ""))
    lines += ["", "### Signals that moved",
              f"- {', '.join(moved)} (against the stage-100 snapshot)" if moved else
              ("- none against the stage-100 snapshot" if reference_found else "- not compared: no stage-100 snapshot"),
              "", "### Actions taken", *(f"- {a}" for a in actions_taken or ["none"]),
              "", "### Root cause", "_to be written_", "", "### Follow-ups", "- _to be written_", ""]
    return "\n".join(lines)


def plot_burn(hours: Sequence[Mapping], green_burn: float) -> bytes:
    """A PNG of the 1 h / 6 h / 24 h burn per hour, with the green line and the fast-burn line."""
    def draw(axes) -> None:
        xs = [h["hour"] for h in hours]
        for key, label in (("1", "1 h"), ("6", "6 h"), ("24", "24 h")):
            ys = [h["burn"].get(key) for h in hours]
            axes.plot(xs, [float("nan") if y is None else y for y in ys], marker="o", label=f"burn {label}")
        axes.axhline(green_burn, color="green", linestyle="--", linewidth=1, label=f"green < {green_burn:g}")
        axes.axhline(FAST_BURN.factor, color="red", linestyle="--", linewidth=1, label=f"fast burn {FAST_BURN.factor:g}")
        axes.set_yscale("symlog", linthresh=1)

    return png(draw, "hour after Live", "burn rate")
