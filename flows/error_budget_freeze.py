"""error-budget-freeze: the error budget as policy, on a schedule and on the budget's event.

Reads the budget of `process.budget.track` from Prometheus (the period's requests and 5xx, and
the burns of `process.budget.predict_windows_hours`) and applies golive.error_budget's freeze
rules. A freeze labels the open pull requests with `process.budget.freeze_label`, emits the
`golive.error-budget.frozen` event and tells the war room; a lift takes the label off again
(`golive.error-budget.lifted`). The freeze is the records under
`<evidence_root>/<budget.folder>/`; the preflight reads them and refuses a go-live on a frozen
budget unless a person's override for that release is on record (`golive budget override`).

prefect.yaml deploys it twice over: on a schedule, and as the automation that runs it when the
first night reports a low budget (`golive.error-budget.low`). The first night applies the same
rules itself when it freezes, so a machine without a Prefect server freezes too.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Mapping
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.states import Completed, Failed, State

from blocks import settings_for_run
from golive import layout
from golive.error_budget import (Freeze, budget_check, budget_folder, exhaustion_seconds, freeze_step, read_freeze,
                                 read_override, record_change)
from golive.models import Check
from golive.settings import GoLiveSettings
from golive.slo import PERIOD, budget_remaining, burn_rate
from golive.validation import error_line
from flows import with_its_clients
from tasks.github import GitHubError, relabel_for_budget
from tasks.notify import announce
from tasks.prometheus import measure_error_counts

# The policy watches the service, not a release; the settings still name one.
BUDGET_RELEASE = "0.0.0-error-budget"


def prediction_windows(cfg: GoLiveSettings) -> dict[str, float]:
    """The windows the budget is read over, in seconds of the first night's hour: the period and
    each prediction window (`1h`, `6h`)."""
    night, budget = cfg.process.first_night, cfg.process.budget
    return {PERIOD: night.slo_period_hours * night.hour_seconds,
            **{f"{h:g}h": h * night.hour_seconds for h in budget.predict_windows_hours}}


def predictions(cfg: GoLiveSettings, counts: Mapping[str, list | None]) -> tuple[float | None, dict[str, float | None]]:
    """The budget's share left and the seconds until it is spent at each window's burn, from
    `{window: [bad, total]}` as measured (None where a window had no answer)."""
    night = cfg.process.first_night
    remaining = budget_remaining(*(counts.get(PERIOD) or (None, None)), night.slo_objective)
    exhaustion = {}
    for name in prediction_windows(cfg):
        if name == PERIOD:
            continue
        bad, total = counts.get(name) or (None, None)
        burn = None if total is None else burn_rate(bad or 0.0, total, night.slo_objective)
        exhaustion[name] = exhaustion_seconds(remaining, burn, night.slo_period_hours)
    return remaining, exhaustion


class _FolderLock:
    """One writer of the freeze at a time (the schedule and the automation may run together)."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / layout.BUDGET_LOCK

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def _relabel(cfg: GoLiveSettings, action: str) -> dict:
    budget = cfg.process.budget
    if cfg.process.github is None or not budget.label_pull_requests:
        return {"labelled" if action == "add" else "unlabelled": [],
                "note": "no pull requests labelled (no process.github, or budget.label_pull_requests off)"}
    try:
        report = relabel_for_budget(cfg.process.github, budget.freeze_label, action)
    except GitHubError as exc:
        return {"labelled" if action == "add" else "unlabelled": [], "failed": {"all": str(exc)}}
    return {"labelled" if action == "add" else "unlabelled": report.done,
            "failed": {str(n): why for n, why in report.failed.items()}}


def enforce_budget(cfg: GoLiveSettings, remaining: float | None, exhaustion: Mapping[str, float | None],
                   source: str, now: float | None = None) -> dict:
    """Apply the freeze rules to one reading of the budget and act on the change: label or
    unlabel the open pull requests, record, emit the event and tell the war room. What happened."""
    budget = cfg.process.budget
    line = cfg.process.first_night.freeze_below_budget
    folder = budget_folder(cfg.process.evidence_root, budget)
    now = time.time() if now is None else now
    with _FolderLock(folder):
        state = read_freeze(folder) or Freeze(line=line)
        new, change = freeze_step(state, remaining, exhaustion, now, line, budget)
        details: dict = {"source": source}
        if change is not None:
            details |= _relabel(cfg, "add" if change == "freeze" else "remove")
            new = new.model_copy(update={"pull_requests": details.get("labelled", [])})
        record = record_change(folder, new, change, details)
    if change is not None:
        announce(cfg, f"budget-{change}", None, new.reason,
                 details={"remaining": remaining, "line": line, "exhaustion_seconds": dict(exhaustion),
                          "record": record, **details})
    return {"change": change, "frozen": new.frozen, "reason": new.reason, "record": record, **details}


def preflight_budget_check(settings: GoLiveSettings) -> Check:
    """The preflight's check of the budget: frozen without an override for this release is NO-GO;
    a freeze record that cannot be read is NO-GO too (the freeze cannot be known)."""
    try:
        folder = budget_folder(settings.process.evidence_root, settings.process.budget)
        return budget_check(read_freeze(folder), read_override(folder, settings.release), settings.release)
    except ValueError as exc:
        return Check(name="error_budget", ok=False, detail=f"the freeze cannot be known: {exc}")


@flow(name="error-budget-freeze", flow_run_name="error budget freeze policy")
@with_its_clients  # its GitHub clients closed when it ends
def error_budget_freeze(config: str | None = None, settings: dict | None = None,
                        blocks: dict[str, str] | None = None, triggered_by: str = "schedule") -> State:
    """Read the error budget now and freeze, keep, or lift as the policy says."""
    logger = get_run_logger()
    cfg = settings_for_run(BUDGET_RELEASE, config, settings, blocks)
    try:
        counts = measure_error_counts(cfg.prometheus, cfg.policy, cfg.process.budget.track, prediction_windows(cfg),
                                      time.time())
    except ValueError as exc:  # a signal list without an errors role: said in one line, every run
        return Failed(name="Unknown", message=f"the budget cannot be measured: {error_line(exc)}")
    remaining, exhaustion = predictions(cfg, counts)
    try:
        outcome = enforce_budget(cfg, remaining, exhaustion, source=f"error-budget-freeze ({triggered_by})")
    except ValueError as exc:
        return Failed(name="Unknown", message=f"the freeze cannot be known: {error_line(exc)}")
    left = "unknown" if remaining is None else f"{100 * remaining:.1f} %"
    logger.info("error budget %s left; %s", left, outcome["reason"] or "not frozen")
    if remaining is None:
        return Completed(name="Unknown", message="no budget measured (no answer or no requests): nothing changed")
    name = {"freeze": "Frozen", "lift": "Lifted"}.get(outcome["change"], "Frozen" if outcome["frozen"] else "Open")
    return Completed(name=name, message=f"error budget {left} left: {outcome['reason'] or 'not frozen'}")
