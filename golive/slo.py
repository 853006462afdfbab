"""SLO burn rate and error budget, after the SRE workbook ("Alerting on SLOs") and sloth.

An SLO of `objective` (say 99.9 % of requests without a 5xx) over a period (30 days) allows an
error budget of `1 - objective` of the period's requests. The **burn rate** is how fast that
budget goes, relative to spending it exactly over the period:

    burn = error_ratio / (1 - objective)

so a burn of 1 sustained for the whole period spends 100 % of the budget, and a burn `b` over a
window `w` spends `b × w / period` of it. The alerting windows below are sloth's (and the
workbook's table 5-8): each pairs a long window with a short one (1/12 of it), and fires only
when both burn at least `factor`, so an alert starts fast and stops soon after the burn does.

    page    1 h  &  5 min  ≥ 14.4   → 2 % of a 30-day budget in one hour
    page    6 h  & 30 min  ≥ 6      → 5 % in six hours
    ticket  1 d  &  2 h    ≥ 3      → 10 % in a day
    ticket  3 d  &  6 h    ≥ 1      → 10 % in three days

No requests in a window means no burn measured (None), never a division by zero and never an
alert; nor is an empty answer (no series at all) a zero: it is no data, and says nothing about
the release.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "BURN_WINDOWS", "PERIOD", "BurnWindow", "budget_remaining", "budget_spent", "burn_rate", "burns_of", "firing",
    "measurement_windows", "window_spans",
]

PERIOD = "period"  # the name of the SLO period's window among the measured ones


@dataclass(frozen=True)
class BurnWindow:
    long_hours: float
    short_hours: float
    factor: float
    severity: str  # "page" or "ticket"

    @property
    def name(self) -> str:
        return f"{self.long_hours:g}h/{self.short_hours * 60:g}m"


BURN_WINDOWS = (
    BurnWindow(1, 5 / 60, 14.4, "page"),
    BurnWindow(6, 30 / 60, 6, "page"),
    BurnWindow(24, 2, 3, "ticket"),
    BurnWindow(72, 6, 1, "ticket"),
)


def burn_rate(bad: float, total: float, objective: float) -> float | None:
    """The error ratio as a multiple of the budgeted one; None without requests."""
    if not 0 < objective < 1:
        raise ValueError(f"objective: expected a fraction in (0, 1), got {objective}")
    if total <= 0:
        return None
    return (bad / total) / (1 - objective)


def budget_spent(burn: float, window_hours: float, period_hours: float) -> float:
    """The share of the period's error budget a burn spends over a window (14.4 × 1 h / 720 h = 2 %)."""
    return burn * window_hours / period_hours


def budget_remaining(bad: float, total: float | None, objective: float) -> float | None:
    """The share of the budget left, from the period's requests so far (1.0 without requests;
    negative once overspent; None when Prometheus had no answer: unknown, not untouched)."""
    if total is None:
        return None
    burn = burn_rate(bad, total, objective)
    return 1.0 if burn is None else 1.0 - burn


def firing(burns: Mapping[float, float | None], windows=BURN_WINDOWS) -> list[BurnWindow]:
    """The windows whose long and short burns (keyed by hours) both reach their factor."""
    fired = []
    for window in windows:
        long, short = burns.get(window.long_hours), burns.get(window.short_hours)
        if long is not None and short is not None and long >= window.factor and short >= window.factor:
            fired.append(window)
    return fired


def window_spans(windows=BURN_WINDOWS) -> list[float]:
    """Every long and short window of the alerts, in hours, shortest first: what each hour measures."""
    return sorted({w.long_hours for w in windows} | {w.short_hours for w in windows})


def _key(hours: float) -> str:
    return f"{hours:g}"


def measurement_windows(hour_seconds: float, period_hours: float, windows=BURN_WINDOWS) -> dict[str, float]:
    """The windows to count errors over, in seconds of an hour of `hour_seconds` (a compressed
    night shortens them all alike): {"1": 3600, "0.0833333": 300, …, "period": 2592000}."""
    return {_key(h): h * hour_seconds for h in window_spans(windows)} | {PERIOD: period_hours * hour_seconds}


def burns_of(counts: Mapping[str, Sequence[float | None] | None], objective: float,
             windows=BURN_WINDOWS) -> dict[float, float | None]:
    """Each window's burn (keyed by hours) from `{name: [bad, total]}` as measured; a window with
    no answer (None, or a None total) or no requests has no burn."""
    burns = {}
    for hours in window_spans(windows):
        bad, total = counts.get(_key(hours)) or (None, None)
        burns[hours] = None if total is None else burn_rate(bad or 0.0, total, objective)
    return burns
