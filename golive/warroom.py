"""The war-room table: the go-live's signals at every gate decision, one column each.

A row keeps the canary's level per column (what the demo's screen and the CSV show) and, under
`cells`, what the judge said of each signal: the value against its threshold, the verdict and
the evidence it rests on, so a cell never reads as a breach beside a green light. The columns
are the signal list's (each signal's `column`), in its order, named under `columns` in each row;
a table's columns are its rows'. Rows written before `columns` existed have the runbook's eight,
and rows written before `cells` existed still render, value only. A Hold or Rollback whose signals
were latency, event loop or GC carries, under `profile`, a few lines on what grew in the canary's
profile (`golive.profiles.profile_notes`), and a shadow decision, under `shadow`, the shadow
stage's own checks (`golive.shadow.shadow_notes`): the tables show them below the rows, the CSV
does not.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping
from datetime import datetime

import pandas as pd

from golive.signals import CATALOGUE, Signal
from golive.stage import stage_name

__all__ = [
    "COLUMNS", "VERDICT_WORDS", "WarRoomRow", "cell_summary", "cell_text", "channel_message", "columns",
    "notes_of", "table_rows", "to_csv", "to_frame", "to_html", "to_markdown",
]

SIGNAL_COLUMNS = {s.name: s.column for s in CATALOGUE}
# The runbook's table: what rows without `columns` (and the demo's screen) show.
COLUMNS = ["Time", "Stage", *SIGNAL_COLUMNS.values(), "Decision"]
_DIGITS = {"p95": 0, "5xx%": 2, "ws_stale": 1, "risk/min": 2, "idem%": 2, "evloop": 1, "gc": 1}
_RELATIVE = "cspΔ"
# The judge's words as the table says them; "within noise" is a pass whose point estimate alone
# would fail the rule: the judge found no evidence that the canary is really over.
VERDICT_WORDS = ("pass", "within noise", "deviation", "breach", "insufficient", "no data")
_COLOURS = {"pass": "#d9f2d9", "within noise": "#eef7d4", "deviation": "#fff1c2", "breach": "#f8c9c4",
            "insufficient": "#e4e4f4", "no data": "#eeeeee"}
_DECISION_COLOURS = {"Proceed": "#2e7d32", "Hold": "#b7860b", "Rollback": "#c62828", "Pause": "#5e35b1"}
_NOT_COLUMNS = ("cells", "columns", "profile", "shadow", "gate")
# Lines a row may carry below the table, by key, under their heading.
_NOTES = (("profile", "Profiles at these decisions (canary vs stable)"),
          ("shadow", "The shadow stage's own checks at these decisions"),
          ("gate", "Signals left to a later stage for lack of traffic"))


def _number(value) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _over(rule: str, threshold: float, value: float) -> bool:
    return value >= threshold if rule == "below" else value > threshold


def _threshold_text(relative: bool, rule: str | None, threshold: float | None) -> str:
    if threshold is None:
        return "–"
    if relative:
        return f"≤ {(threshold - 1) * 100:+.0f}%"
    return f"{'<' if rule == 'below' else '≤'} {threshold:g}"


def _series_evidence(series: Mapping | None) -> str | None:
    """Events among requests for a count signal, else the range of the canary's interval values."""
    canary = [o for o in (series or {}).get("canary", []) if isinstance(o, Mapping)]
    if not canary:
        return None
    counted = [o for o in canary if o.get("bad") is not None and o.get("total") is not None]
    if counted:
        bad, total = sum(o["bad"] for o in counted), sum(o["total"] for o in counted)
        stable = [o for o in (series or {}).get("baseline", []) if o.get("bad") is not None and o.get("total")]
        seen = f"{bad:.0f} events in {total:.0f} requests"
        if stable:
            seen += f"; stable {sum(o['bad'] for o in stable):.0f} in {sum(o['total'] for o in stable):.0f}"
        return seen
    values = [v for o in canary if (v := _number(o.get("value"))) is not None]
    if not values:
        return f"{len(canary)} intervals, none with data"
    return f"{len(values)} intervals, {min(values):.4g}–{max(values):.4g}"


def _relative(column: str, verdict: Mapping) -> bool:
    # The judge writes its rule as text (`<= 200 ms`, `< 0.5 /min`, `<= baseline x 1.1`).
    return column == _RELATIVE or str(verdict.get("rule", "")).startswith("<= baseline")


def _cell(column: str, verdict: Mapping, series: Mapping | None) -> dict:
    canary, baseline = _number(verdict.get("canary")), _number(verdict.get("baseline"))
    rule = "below" if str(verdict.get("rule", "")).startswith("< ") else "max"
    threshold = _number(verdict.get("threshold"))
    relative = _relative(column, verdict)
    if relative:
        value = (canary / baseline - 1) * 100 if canary is not None and baseline else None
        naive_over = value is not None and threshold is not None and value > (threshold - 1) * 100
    else:
        value = canary
        naive_over = value is not None and threshold is not None and _over(rule or "max", threshold, value)
    word = {"nodata": "no data"}.get(verdict.get("verdict"), verdict.get("verdict") or "no data")
    if word == "pass" and naive_over:
        word = "within noise"
    cell = {"value": value, "threshold": _threshold_text(relative, rule, threshold), "verdict": word,
            "evidence": _series_evidence(series) or verdict.get("detail") or "–", "detail": verdict.get("detail")}
    if relative:
        cell["relative"] = True
    return cell


class WarRoomRow(dict):
    """One gate decision: time, stage, the canary's level per signal, the decision, and the
    judge's word on each signal under `cells`."""

    @classmethod
    def from_verdict(cls, at: datetime, stage: int | None, decision: str, signals: Mapping[str, Mapping],
                     series: Mapping[str, Mapping] | None = None,
                     catalogue: Iterable[Signal] | None = None) -> WarRoomRow:
        """`signals` is the judge's verdict per signal; `series` (the judged scenario's signals,
        optional) lets each cell name the events or intervals it rests on. The columns are
        `catalogue`'s (the signal list judged); without it, the verdict's own signals' (the
        judge gives every signal of its list a verdict), each under its runbook column or its
        name, or the runbook's eight when they are all of them (a rollback's row has no signals)."""
        row = cls(Time=at.strftime("%H:%M:%S"), Stage=stage_name(stage), Decision=decision)
        if catalogue is not None:
            signal_columns = {s.name: s.column for s in catalogue}
        elif set(signals) - set(SIGNAL_COLUMNS):
            signal_columns = {name: SIGNAL_COLUMNS.get(name, name) for name in signals}
        else:
            signal_columns = SIGNAL_COLUMNS
        if signal_columns is not SIGNAL_COLUMNS:
            row["columns"] = list(signal_columns.values())
        cells = {}
        for name, column in signal_columns.items():
            verdict = signals.get(name)
            if not verdict:
                row[column] = None
                continue
            cell = _cell(column, verdict, (series or {}).get(name))
            row[column] = cell["value"]
            cells[column] = cell
        if cells:
            row["cells"] = cells
        return row


def columns(rows: Iterable[Mapping]) -> list[str]:
    """The table's columns: Time, Stage, the signal columns its rows name (in their order; the
    runbook's eight when none names any), Decision."""
    named: dict[str, None] = {}
    for row in rows:
        named.update(dict.fromkeys(row.get("columns") or ()))
    if not named:
        return list(COLUMNS)
    return ["Time", "Stage", *named, "Decision"]


def to_frame(rows: Iterable[Mapping]) -> pd.DataFrame:
    rows = list(rows)
    return pd.DataFrame([{k: v for k, v in row.items() if k not in _NOT_COLUMNS} for row in rows],
                        columns=columns(rows))


def cell_text(column: str, value, relative: bool = False) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    if column == _RELATIVE or relative:
        return f"{value:+.0f}%"
    if column in _DIGITS:
        return f"{value:.{_DIGITS[column]}f}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def cell_summary(row: Mapping, column: str, evidence: bool = True) -> str:
    """`141 / ≤ 200 pass (3 intervals, 120–160)`: the value, the threshold, the judge's word."""
    cell = (row.get("cells") or {}).get(column)
    value = cell_text(column, row.get(column), bool(cell and cell.get("relative")))
    if cell is None:
        return value
    text = f"{value} / {cell['threshold']} {cell['verdict']}"
    return f"{text} ({cell['evidence']})" if evidence else text


def notes_of(rows: Iterable[Mapping], key: str) -> list[tuple[str, list[str]]]:
    """The rows' lines under `key` (their profiles, the shadow stage's own checks, or the signals
    the gate left to a later stage), each with
    the decision it belongs to (`25% Hold at 10:03:01`)."""
    return [(f"{row.get('Stage')} {row.get('Decision')} at {row.get('Time')}", [str(n) for n in row[key]])
            for row in rows if row.get(key)]


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(rows: Iterable[Mapping]) -> str:
    rows = list(rows)
    table = columns(rows)
    lines = ["| " + " | ".join(table) + " |", "|" + "---|" * len(table)]
    for row in rows:
        lines.append("| " + " | ".join(_markdown_cell(cell_summary(row, c)) for c in table) + " |")
    if any(row.get("cells") for row in rows):
        lines += ["", "Each signal: the canary's value / its threshold, the judge's verdict "
                      "(pass, within noise, deviation, breach, insufficient, no data) and what it rests on."]
    for key, heading in _NOTES:
        if noted := notes_of(rows, key):
            lines += ["", f"{heading}:"]
            for decision, notes in noted:
                lines += [f"- {decision}"] + [f"  - {' '.join(note.split())}" for note in notes]
    return "\n".join(lines) + "\n"


def table_rows(rows: Iterable[Mapping]) -> list[dict[str, str]]:
    """The rows as flat text, one key per column, for a table artifact."""
    rows = list(rows)
    table = columns(rows)
    return [{c: cell_summary(row, c) for c in table} for row in rows]


def to_csv(rows: Iterable[Mapping]) -> str:
    return to_frame(rows).to_csv(index=False, float_format="%.4g")


def to_html(rows: Iterable[Mapping], title: str = "War room") -> str:
    """A page of its own: the table coloured by the judge's verdicts, the judge's detail on hover."""
    rows = list(rows)
    table = columns(rows)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table)
    body = []
    for row in rows:
        cells = []
        for column in table:
            cell = (row.get("cells") or {}).get(column)
            if column == "Decision":
                colour = _DECISION_COLOURS.get(str(row.get(column)), "#333")
                cells.append(f'<td class="decision" style="color:{colour}">{html.escape(str(row.get(column)))}</td>')
            elif cell is None:
                cells.append(f"<td>{html.escape(cell_text(column, row.get(column)))}</td>")
            else:
                cells.append(
                    f'<td style="background:{_COLOURS.get(cell["verdict"], "#fff")}" '
                    f'title="{html.escape(cell.get("detail") or "")}">'
                    f'<b>{html.escape(cell_text(column, row.get(column), bool(cell.get("relative"))))}</b> / '
                    f'{html.escape(cell["threshold"])}'
                    f'<br><span class="verdict">{html.escape(cell["verdict"])}</span>'
                    f'<br><small>{html.escape(cell["evidence"])}</small></td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    legend = " ".join(f'<span style="background:{c};padding:0 .4em">{html.escape(w)}</span>'
                      for w, c in _COLOURS.items())
    profiled = ""
    for key, heading in _NOTES:
        if noted := notes_of(rows, key):
            items = "".join(f"<li>{html.escape(decision)}<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes)
                            + "</ul></li>" for decision, notes in noted)
            profiled += f"<h2>{html.escape(heading)}</h2><ul>{items}</ul>"
    return (f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title><style>"
            "body{font-family:system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse;font-size:13px}"
            "th,td{border:1px solid #bbb;padding:4px 6px;vertical-align:top;text-align:right}"
            "td.decision{font-weight:bold;text-align:left}small{color:#444}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><table><thead><tr>{head}</tr></thead><tbody>\n"
            + "\n".join(body) + f"\n</tbody></table><p>{legend}</p>{profiled}</body></html>\n")


def channel_message(release: str, decision: str, stage: int | None, reason: str, row: Mapping | None = None) -> str:
    """One short message for the war-room channel: what was decided, the table row, the reason."""
    where = f" at {stage_name(stage)}" if stage is not None else ""
    lines = [f"golive v{release}{where}: {decision.upper()}"]
    if row:
        lines.append(" | ".join(f"{c} {cell_summary(row, c, evidence=False)}" for c in columns([row]) if c in row))
    lines.append(f"reason: {' '.join(reason.split())}")
    return "\n".join(lines)
