"""The rollback record a person reads first after an incident: what, why, when, how fast."""

from __future__ import annotations

from datetime import datetime, timezone

from golive import layout
from golive.models import RollbackReport

__all__ = ["render_rollback", "rollback_file_name"]


def rollback_file_name(at: float, dry_run: bool) -> str:
    return layout.rollback_file(at, dry_run)


def render_rollback(report: RollbackReport, release: str, at: float, signals: dict | None) -> str:
    when = datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="seconds")
    seconds = "n/a" if report.seconds_to_weight_zero is None else f"{report.seconds_to_weight_zero:.2f}"
    lines = [
        f"{'DRY RUN — ' if report.dry_run else ''}ROLLBACK v{release} at {when}",
        f"reason:         {report.reason}",
        f"stage:          {report.stage}%",
        f"triggered by:   {report.triggered_by}",
        f"weight before:  {report.weight_before}",
        f"weight after:   {report.weight_after}",
        f"seconds from the breaching interval to weight 0: {seconds}",
        "",
        "signals at that moment:",
    ]
    if signals:
        for name, v in signals.items():
            canary = "–" if v.get("canary") is None else f"{v['canary']:.4g}"
            stable = "–" if v.get("baseline") is None else f"{v['baseline']:.4g}"
            lines.append(f"  {name:<26} {v.get('verdict', ''):<9} canary {canary:<10} stable {stable:<10} "
                         f"rule {v.get('rule', '')}  {v.get('detail', '')}")
    else:
        lines.append("  (not given: a rollback started by hand)")
    lines += ["", "steps:"] + [f"  {i}. {step}" for i, step in enumerate(report.steps, 1)]
    return "\n".join(lines) + "\n"
