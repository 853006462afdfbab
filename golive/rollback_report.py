"""The rollback record a person reads first after an incident: what, why, when, how fast."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from golive import layout
from golive.models import RollbackReport
from golive.stage import stage_name
from golive.validation import escape_line

__all__ = ["render_profile_addendum", "render_rollback", "rollback_file_name", "rollback_started_at"]

_STAMPED = re.compile(r"^(?:late_)?rollback_(?:dryrun_)?(\d{8}T\d{6}Z)_(\d{6})(?:_[A-Za-z0-9]{1,8})?\.txt$")


def rollback_file_name(at: float, dry_run: bool, run_id: str | None = None, late: bool = False) -> str:
    """The layout's name for the record, made unique: the microseconds of `at` and, when given,
    the first 8 characters of the run's id (two rollbacks in one second never share a file).
    `late`: the rollback left the target to a newer go-live (`late_rollback_…`)."""
    micro = int(at % 1 * 1_000_000)
    short_run = "".join(c for c in (run_id or "") if c.isalnum())[:8]
    unique = f"_{micro:06d}" + (f"_{short_run}" if short_run else "")
    name = layout.late_rollback_file(at) if late else layout.rollback_file(at, dry_run)
    return name.removesuffix(".txt") + unique + ".txt"


def rollback_started_at(name: str) -> float | None:
    """When the rollback of a record named by `rollback_file_name` started; None for another name."""
    match = _STAMPED.match(name)
    if not match:
        return None
    stamp, micro = match.groups()
    return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc).timestamp() + int(micro) / 1e6


def render_rollback(report: RollbackReport, release: str, at: float, signals: dict | None) -> str:
    """The record's text: one fact a line. Every free text (reason, who, triggers, steps, signal
    details) is escaped to one line, so no text can forge a line such as `weight after: 0`."""
    e = escape_line
    when = datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="seconds")
    seconds = "n/a" if report.seconds_to_weight_zero is None else f"{report.seconds_to_weight_zero:.2f}"
    lines = [
        f"{'DRY RUN — ' if report.dry_run else ''}ROLLBACK v{release} at {when}",
        f"outcome:        {report.outcome}" + (f" ({e(report.left_alone)})" if report.left_alone else ""),
        f"reason:         {e(report.reason)}",
        f"triggers:       {', '.join(e(t) for t in report.triggers) or 'none named'}",
        f"stage:          {'not given' if report.stage is None else stage_name(report.stage)}",
        f"triggered by:   {e(report.triggered_by)}",
        f"weight before:  {'not read' if report.weight_before is None else report.weight_before}",
        f"weight after:   {'unverified (the router could not be read)' if report.weight_after is None else report.weight_after}",
        f"fence:          {e(report.fence.describe()) if report.fence else 'none taken'}",
        f"seconds from the breaching interval to weight 0: {seconds}",
        "",
        "signals at that moment:",
    ]
    if signals:
        for name, v in signals.items():
            canary = "–" if v.get("canary") is None else f"{v['canary']:.4g}"
            stable = "–" if v.get("baseline") is None else f"{v['baseline']:.4g}"
            lines.append(f"  {e(name):<26} {e(v.get('verdict', '')):<9} canary {canary:<10} stable {stable:<10} "
                         f"rule {e(v.get('rule', ''))}  {e(v.get('detail', ''))}")
    else:
        lines.append("  (not given: a rollback started by hand)")
    lines += ["", "steps:"] + [f"  {i}. {e(step)}" for i, step in enumerate(report.steps, 1)]
    return "\n".join(lines) + "\n"


def render_profile_addendum(notes: list[str], diff_file: str | None, at: float) -> str:
    """The lines a stage appends to its rollback's record once the profiles are written (after
    weight 0, which they never delay): what grew in the canary and the advice, escaped as above."""
    when = datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="seconds")
    source = f"; {escape_line(diff_file)}" if diff_file else ""
    return "\n".join(["", f"profile of the stage, canary vs stable (written after weight 0, at {when}{source}):",
                      *(f"  {escape_line(note)}" for note in notes)]) + "\n"
