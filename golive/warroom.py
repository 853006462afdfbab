"""The war-room table: the eight signals at every gate decision, in the runbook's columns."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

import pandas as pd

from golive.signals import CATALOGUE

__all__ = ["COLUMNS", "WarRoomRow", "cell_text", "to_csv", "to_frame", "to_markdown"]

SIGNAL_COLUMNS = {s.name: s.column for s in CATALOGUE}
COLUMNS = ["Time", "Stage", *SIGNAL_COLUMNS.values(), "Decision"]
_DIGITS = {"p95": 0, "5xx%": 2, "ws_stale": 1, "risk/min": 2, "idem%": 2, "evloop": 1, "gc": 1}


class WarRoomRow(dict):
    """One gate decision: time, stage, the canary's level per signal, and the decision."""

    @classmethod
    def from_verdict(cls, at: datetime, stage: int, decision: str, signals: Mapping[str, Mapping]) -> WarRoomRow:
        row = cls(Time=at.strftime("%H:%M:%S"), Stage=f"{stage}%", Decision=decision)
        for name, column in SIGNAL_COLUMNS.items():
            verdict = signals.get(name, {})
            canary, baseline = verdict.get("canary"), verdict.get("baseline")
            if column == "cspΔ":
                # CSP's rule is relative: the table shows the canary against stable.
                row[column] = (canary / baseline - 1) * 100 if canary is not None and baseline else None
            else:
                row[column] = canary
        return row


def to_frame(rows: Iterable[Mapping]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=COLUMNS)


def cell_text(column: str, value) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    if column == "cspΔ":
        return f"{value:+.0f}%"
    if column in _DIGITS:
        return f"{value:.{_DIGITS[column]}f}"
    return str(value)


def to_markdown(rows: Iterable[Mapping]) -> str:
    frame = to_frame(rows)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for record in frame.to_dict("records"):
        lines.append("| " + " | ".join(cell_text(c, record[c]) for c in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def to_csv(rows: Iterable[Mapping]) -> str:
    return to_frame(rows).to_csv(index=False, float_format="%.4g")
