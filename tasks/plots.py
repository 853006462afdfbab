"""Pictures in the evidence: each signal of a stage as a PNG, and the war room as an HTML page."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from golive import layout
from golive.evidence import EvidenceLedger
from golive.stage import stage_name
from golive.validation import error_line

__all__ = ["plot_stage", "write_war_room_page"]


@task(name="draw the stage's signals", cache_policy=NO_CACHE)
def plot_stage(folder: str, percent: int) -> list[str]:
    """One PNG per signal of the stage at `percent` %, canary against stable with the threshold and
    the decisions, from the stage's snapshots; and the war room's HTML page. Returns the names
    written. A picture that cannot be drawn is a warning, never the stage's end."""
    from golive import plots

    try:
        ledger = EvidenceLedger(folder)
        snapshots = sorted((ledger.read_json(p.name) for p in Path(folder).glob(layout.snapshot_files(percent))),
                           key=lambda s: (s.get("window") or [0])[0])
        written = []
        if snapshots:
            thresholds = snapshots[-1].get("thresholds") or {}
            signals = ((snapshots[-1].get("verdict") or {}).get("signals") or {})
            decisions = plots.stage_decisions(snapshots)
            for name, limit in thresholds.items():
                frame = plots.stage_frame(snapshots, name)
                unit = _unit(signals.get(name, {}).get("rule", ""))
                picture = plots.signal_png(frame, decisions, f"{name} at {stage_name(percent)}: canary vs stable", unit,
                                           limit["rule"], limit["threshold"])
                ledger.write_bytes(layout.signal_plot(percent, name), picture)
                written.append(layout.signal_plot(percent, name))
        if write_war_room_page(folder):
            written.append(layout.WAR_ROOM_HTML)
        return written
    except Exception as exc:
        get_run_logger().warning("stage %s%%: the pictures were not drawn: %s", percent, error_line(exc))
        return []


def _unit(rule_text: str) -> str:
    # The judge's rule text ends with the unit: "<= 200 ms", "< 0.5 /min"; a relative rule has none.
    parts = rule_text.split()
    return parts[-1] if len(parts) == 3 and not parts[-1][0].isdigit() else ""


def write_war_room_page(folder: str) -> bool:
    """war_room.html beside war_room.md, from the rows; False when there are no rows yet."""
    from golive import warroom

    ledger = EvidenceLedger(folder)
    if not ledger.path(layout.WAR_ROOM_JSON).exists():
        return False
    rows = ledger.read_json(layout.WAR_ROOM_JSON)
    ledger.write_text(layout.WAR_ROOM_HTML, warroom.to_html(rows, f"War room {Path(folder).name}"))
    return True
