"""Prometheus rules as code: the signals recorded per track, and the alerts that watch them.

Built from the same catalogue the judge reads (thresholds and queries after the settings'
overrides), so a threshold changed in settings changes the alert and the dashboard with it.

- **Recording rules** (group `golive-signals`): each signal's value query per track over one
  window, as `golive:<signal>:<window>{service, track}`; the dashboard plots these series.
- **Error ratio** (group `golive-slo`): 5xx share of requests per track over every window the
  burn-rate alerts and the dashboard need, as `golive:slo_error_ratio:<window>{service, track}`.
- **Burn-rate alerts** (group `golive-burn`): one per window pair of `golive.slo.BURN_WINDOWS`
  (sloth's 1h/5m x14.4, 6h/30m x6, 1d/2h x3, 3d/6h x1). Both windows must burn at least the
  factor: the long one proves the burn is real, the short one that it is still going on, so
  the alert clears within the short window once the errors stop. Paging windows are
  `severity=critical`, the others `warning`.
- **Far over threshold** (group `golive-critical`): one alert per signal, `severity=critical`,
  when a track is `severe_factor` times over its threshold for `alert_for` (the relative rule:
  the canary's per-request rate that many times the stable's). A firing one is the
  `critical-alert` trigger.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import yaml

from golive.settings import GoLiveSettings
from golive.signals import TRACKS, Signal, render_query
from golive.slo import BURN_WINDOWS, BurnWindow

__all__ = [
    "CRITICAL_ALERT",
    "BURN_ALERT",
    "RuleOptions",
    "build_rules",
    "options_for",
    "duration",
    "error_ratio_series",
    "render_rules",
    "signal_series",
]

CRITICAL_ALERT = "GoLiveSignalFarOverThreshold"
BURN_ALERT = "GoLiveErrorBudgetBurn"
_BURN_SEVERITY = {"page": "critical", "ticket": "warning"}


@dataclass(frozen=True)
class RuleOptions:
    """What the rules are about: the service's name, and the windows they measure over."""

    service: str = "spark"
    window_seconds: float = 60.0  # the recorded signals' window
    alert_for_seconds: float = 60.0  # a signal far over its threshold this long fires
    severe_factor: float = 2.0  # "far over": this many times the threshold
    slo_objective: float = 0.999
    slo_period_hours: float = 720.0
    burn_windows: tuple[BurnWindow, ...] = BURN_WINDOWS

    def __post_init__(self) -> None:
        if not self.service or '"' in self.service or "\\" in self.service:
            raise ValueError(f"service: expected a plain name, got {self.service!r}")
        if not 0 < self.slo_objective < 1:
            raise ValueError(f"slo_objective: expected a fraction in (0, 1), got {self.slo_objective}")
        for name in ("window_seconds", "alert_for_seconds", "severe_factor", "slo_period_hours"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name}: expected a finite number > 0, got {value}")

    @property
    def window(self) -> str:
        return duration(self.window_seconds)

    @property
    def error_budget(self) -> float:
        return 1 - self.slo_objective


def duration(seconds: float) -> str:
    """A Prometheus duration for whole seconds: 30s, 5m, 1h, 1d (never below 1 s)."""
    seconds = max(1, round(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def signal_series(signal: str, window: str) -> str:
    """The recorded series of one signal: `golive:api_p95_ms:1m`."""
    return f"golive:{signal}:{window}"


def error_ratio_series(window: str) -> str:
    return f"golive:slo_error_ratio:{window}"


def _labels(options: RuleOptions, track: str, **more: str) -> dict[str, str]:
    return {"service": options.service, "track": track, **more}


def _recording_rules(catalogue: tuple[Signal, ...], options: RuleOptions) -> list[dict]:
    return [
        {"record": signal_series(sig.name, options.window),
         "expr": render_query(sig.value_query, track, options.window_seconds),
         "labels": _labels(options, track)}
        for sig in catalogue for track in TRACKS
    ]


def _error_windows(options: RuleOptions) -> list[float]:
    """Every window in hours the SLO rules read: the burn windows, 24 h for the dashboard, the period."""
    hours = {h for w in options.burn_windows for h in (w.long_hours, w.short_hours)}
    return sorted(hours | {1.0, 6.0, 24.0, options.slo_period_hours})


def _error_ratio_rules(catalogue: tuple[Signal, ...], options: RuleOptions) -> list[dict]:
    errors = next((s for s in catalogue if s.name == "http_5xx_pct" and s.has_counts), None)
    if errors is None:
        return []
    rules = []
    for hours in _error_windows(options):
        for track in TRACKS:
            bad = render_query(errors.bad_query, track, hours * 3600)
            total = render_query(errors.total_query, track, hours * 3600)
            rules.append({"record": error_ratio_series(duration(hours * 3600)), "expr": f"({bad}) / ({total})",
                          "labels": _labels(options, track)})
    return rules


def _selector(options: RuleOptions) -> str:
    return f'{{service="{options.service}"}}'


def _burn_alerts(options: RuleOptions) -> list[dict]:
    alerts = []
    for window in options.burn_windows:
        long, short = duration(window.long_hours * 3600), duration(window.short_hours * 3600)
        limit = f"{window.factor:g} * {options.error_budget:g}"
        alerts.append({
            "alert": BURN_ALERT,
            "expr": (f"{error_ratio_series(long)}{_selector(options)} > ({limit}) "
                     f"and {error_ratio_series(short)}{_selector(options)} > ({limit})"),
            "labels": {"severity": _BURN_SEVERITY.get(window.severity, "warning"), "service": options.service,
                       "window": f"{long}/{short}"},
            "annotations": {
                "summary": f"{options.service} {{{{ $labels.track }}}} burns its error budget "
                           f"over {window.factor:g}x ({long}/{short})",
                "description": (f"5xx ratio over {long} and {short} both above {window.factor:g} x the budget "
                                f"of a {options.slo_objective:g} SLO: {budget_share(window, options):.0%} of "
                                f"the {options.slo_period_hours:g} h budget in {long}."),
            },
        })
    return alerts


def budget_share(window: BurnWindow, options: RuleOptions) -> float:
    """The share of the period's budget a burn at the window's factor spends over its long window."""
    return window.factor * window.long_hours / options.slo_period_hours


def far_over_expr(sig: Signal, options: RuleOptions) -> str:
    """PromQL that has a sample for each track `severe_factor` times over the signal's threshold."""
    if sig.rule == "max_ratio_to_baseline":
        return _relative_far_over(sig, options)
    limit = sig.threshold * options.severe_factor
    series = f"{signal_series(sig.name, options.window)}{_selector(options)}"
    operator = ">=" if sig.rule == "below" else ">"
    return f"{series} {operator} {limit:g}"


def _relative_far_over(sig: Signal, options: RuleOptions) -> str:
    # Per request, not per minute: a canary at 1 % of the traffic sees 1 % of the events.
    def per_request(track: str) -> str:
        if not sig.has_counts:
            return f'{signal_series(sig.name, options.window)}{{service="{options.service}",track="{track}"}}'
        bad = render_query(sig.bad_query, track, options.window_seconds)
        total = render_query(sig.total_query, track, options.window_seconds)
        return f"(({bad}) / ({total}))"

    limit = sig.threshold * options.severe_factor
    return (f"{per_request('canary')} > on() {limit:g} * {per_request('stable')} "
            f"and on() {per_request('stable')} > 0")


def _critical_alerts(catalogue: tuple[Signal, ...], options: RuleOptions) -> list[dict]:
    alerts = []
    for sig in catalogue:
        relative = sig.rule == "max_ratio_to_baseline"
        labels = {"severity": "critical", "service": options.service, "signal": sig.name}
        if relative:
            labels["track"] = "canary"
        alerts.append({
            "alert": CRITICAL_ALERT,
            "expr": far_over_expr(sig, options),
            "for": duration(options.alert_for_seconds),
            "labels": labels,
            "annotations": {
                "summary": (f"{options.service} {'canary' if relative else '{{ $labels.track }}'}: {sig.title} "
                            f"{options.severe_factor:g}x over its rule ({sig.rule_text()})"),
            },
        })
    return alerts


def options_for(settings: GoLiveSettings, **changes) -> RuleOptions:
    """The rules' options from the settings in force: the service, "far over" as the judge's
    `severe_factor`, the SLO as the first night's."""
    night = settings.process.first_night
    return RuleOptions(**{"service": settings.target.service,
                          "severe_factor": settings.policy.judge_policy().severe_factor,
                          "slo_objective": night.slo_objective, "slo_period_hours": night.slo_period_hours,
                          **changes})


def build_rules(catalogue: tuple[Signal, ...], options: RuleOptions | None = None) -> dict:
    """The rule file's content, as Prometheus reads it (`groups: [...]`)."""
    options = options or RuleOptions()
    groups = [
        {"name": "golive-signals", "rules": _recording_rules(catalogue, options)},
        {"name": "golive-slo", "rules": _error_ratio_rules(catalogue, options)},
        {"name": "golive-burn", "rules": _burn_alerts(options)},
        {"name": "golive-critical", "rules": _critical_alerts(catalogue, options)},
    ]
    return {"groups": [g for g in groups if g["rules"]]}


def render_rules(rules: dict) -> str:
    """YAML for a rule file, with a header saying where it comes from."""
    body = yaml.safe_dump(rules, sort_keys=False, width=120, allow_unicode=True)
    return "# Generated by `golive rules` from the signal catalogue and settings; edit those, not this.\n" + body
