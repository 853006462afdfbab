"""Does every signal of the list have data for both tracks? `golive signals check` and the preflight.

Before any traffic moves, each query of each signal (the value, and the event and request counts
where it has them) is asked of Prometheus for both tracks. A signal passes when its value (and
its request count) answers a number for stable and for canary. When it does not, the check says
why in the one way a user can act on: a metric its queries name that Prometheus has never seen
is a wrong name (or a target not scraped); a query that answers several series (ManySeries) must
aggregate them; a metric that exists but answers nothing for a track is a label that matches
nothing there, or no traffic yet.

The metric names of a query are read from its text: a name directly before a selector's braces
or a range (`http_requests_total{…}`, `up[5m]`), quoted strings left out. A bare name with
neither (`foo / bar`) is not looked up; its signal is still checked for data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from golive.models import Check
from golive.signals import TRACKS, Signal, render_query

__all__ = ["ManySeries", "SignalDataCheck", "check_signals", "metric_names", "signal_queries", "signals_check"]

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_COMMENT = re.compile(r"#[^\n]*")
_SELECTED_NAME = re.compile(r"(?<![A-Za-z0-9_:.])([A-Za-z_:][A-Za-z0-9_:]*)\s*(?=[{\[])")


def metric_names(query: str) -> list[str]:
    """The metric names a PromQL query selects with braces or a range, in order, each once
    (comments, such as the matchers per track a query carries, left out)."""
    names = _SELECTED_NAME.findall(_COMMENT.sub("", _STRING.sub('""', query)))
    return list(dict.fromkeys(names))


def signal_queries(catalogue: Iterable[Signal], window_seconds: float) -> dict[tuple[str, str, str], str]:
    """Every query to ask: (signal, track, kind) → PromQL, kind being value, bad or total."""
    queries = {}
    for sig in catalogue:
        templates = {"value": sig.value_query}
        if sig.has_counts:
            templates.update(bad=sig.bad_query, total=sig.total_query)
        for track in TRACKS:
            for kind, template in templates.items():
                queries[(sig.name, track, kind)] = render_query(template, track, window_seconds)
    return queries


@dataclass(frozen=True)
class ManySeries:
    """A query's answer of more than one series. A signal is one number per track and interval:
    which of several to judge is not golive's to guess, so none of them is (no data, never the
    first one's); the query must aggregate them."""

    count: int

    def __str__(self) -> str:
        return f"answers {self.count} series, not one (aggregate them: sum, max, …)"


Answer = float | ManySeries | None


@dataclass(frozen=True)
class SignalDataCheck:
    """One signal's answer: its value per track, whether it can be judged, and why not."""

    name: str
    ok: bool
    values: dict[str, float | None]
    detail: str
    unknown_metrics: list[str] = field(default_factory=list)

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.name}: {self.detail}"


def _shown(value: float | None) -> str:
    return "no data" if value is None else f"{value:.4g}"


def _number(answer: Answer) -> float | None:
    return None if isinstance(answer, ManySeries) else answer


def check_signals(catalogue: Iterable[Signal], answers: Mapping[tuple[str, str, str], Answer],
                  known_metrics: Iterable[str] | None) -> list[SignalDataCheck]:
    """Each signal's check from Prometheus' `answers` (as `signal_queries` keys them; None: no
    value; ManySeries: several series) and the metric names it knows (`known_metrics`; None: not
    asked, names not looked up)."""
    known = None if known_metrics is None else set(known_metrics)
    results = []
    for sig in catalogue:
        several = {key: answer for key, answer in answers.items()
                   if key[0] == sig.name and isinstance(answer, ManySeries)}
        values = {track: _number(answers.get((sig.name, track, "value"))) for track in TRACKS}
        counted = ({track: _number(answers.get((sig.name, track, "total"))) for track in TRACKS}
                   if sig.has_counts else {})
        queries = [q for q in (sig.value_query, sig.bad_query, sig.total_query) if q]
        names = list(dict.fromkeys(n for q in queries for n in metric_names(q)))
        unknown = [n for n in names if known is not None and n not in known]
        silent = [t for t in TRACKS if values[t] is None or (sig.has_counts and counted[t] is None)]
        if unknown:
            detail = (f"no such metric in Prometheus: {', '.join(unknown)} (a wrong name, or a target not scraped)"
                      + (f"; no data on {' and '.join(silent)}" if silent else ""))
        elif several:
            detail = "; ".join(f"its {kind} query {answer} on {track}" for (_, track, kind), answer in several.items())
        elif silent:
            detail = (f"no data on {' and '.join(silent)}: its metrics exist, but the query answers nothing there "
                      "(a label that matches nothing, or no traffic yet)")
        else:
            detail = ", ".join(f"{track} {_shown(values[track])}" for track in TRACKS)
            if sig.has_counts:
                detail += f" (requests: {', '.join(f'{t} {_shown(counted[t])}' for t in TRACKS)})"
        results.append(SignalDataCheck(sig.name, not unknown and not several and not silent, values, detail, unknown))
    return results


def signals_check(results: list[SignalDataCheck], window_seconds: float, error: str | None = None) -> Check:
    """The preflight's word on the list: every signal has data for both tracks, its metrics known."""
    if error is not None:
        return Check(name="signal_data", ok=False, detail=f"Prometheus did not answer: {error}")
    failed = [r for r in results if not r.ok]
    detail = (f"{len(results)}/{len(results)} signals answer for both tracks over {window_seconds:g} s" if not failed
              else "; ".join(f"{r.name}: {r.detail}" for r in failed))
    return Check(name="signal_data", ok=not failed, detail=detail,
                 facts={"signals": {r.name: {"ok": r.ok, "values": r.values, "detail": r.detail,
                                             "unknown_metrics": r.unknown_metrics} for r in results}})
