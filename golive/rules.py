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
- **Error budget, sloth's names** (group `golive-budget`, sloth's id
  `<service>-requests-availability`): the SLO's error ratio
  per window as `slo:sli_error:ratio_rate<window>`, and `slo:objective:ratio`,
  `slo:error_budget:ratio`, `slo:time_period:days`, `slo:current_burn_rate:ratio` (over 5 min),
  `slo:period_burn_rate:ratio` and `slo:period_error_budget_remaining:ratio`, with sloth's labels
  (`sloth_id`, `sloth_service`, `sloth_slo`, and `sloth_window` on the ratios) plus `track`, so
  dashboards built for sloth read them; the joins match on the SLO's labels and the track. As
  sloth's, the burns and the budget left keep the `sloth_window` of the ratio they divide.
- **Predictive** (group `golive-budget` too): the time until the budget is spent at the
  burn of each of `budget.predict_windows_hours` (remaining x period / burn), as
  `golive:error_budget_exhausted_in:seconds{burn_window}`; none while nothing burns, 0 once the
  budget is spent. `GoLiveErrorBudgetExhaustion` fires when the prediction of the longest and the
  shortest window are both under a horizon: the ticket's (`warning`) and the page's (`critical`).
  One group, not sloth's three: a group's rules run in order at one instant, so the budget, its
  burns and the prediction are of the same evaluation (across groups each reads the others' last).
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
    "EXHAUSTION_ALERT",
    "EXHAUSTION_SERIES",
    "SLO_NAME",
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
EXHAUSTION_ALERT = "GoLiveErrorBudgetExhaustion"
EXHAUSTION_SERIES = "golive:error_budget_exhausted_in:seconds"
SLO_NAME = "requests-availability"  # the SLO's name among sloth's labels: requests without a 5xx
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
    predict_windows_hours: tuple[float, ...] = (1.0, 6.0)  # the burns the time until the budget is spent reads
    ticket_horizon_hours: float = 24.0  # spent sooner than this: a ticket
    page_horizon_hours: float = 2.0  # spent sooner than this: a page

    def __post_init__(self) -> None:
        if not self.service or '"' in self.service or "\\" in self.service:
            raise ValueError(f"service: expected a plain name, got {self.service!r}")
        if not 0 < self.slo_objective < 1:
            raise ValueError(f"slo_objective: expected a fraction in (0, 1), got {self.slo_objective}")
        if not self.predict_windows_hours or not all(math.isfinite(h) and h > 0 for h in self.predict_windows_hours):
            raise ValueError(f"predict_windows_hours: expected hours > 0, got {self.predict_windows_hours}")
        for name in ("window_seconds", "alert_for_seconds", "severe_factor", "slo_period_hours",
                     "ticket_horizon_hours", "page_horizon_hours"):
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
    errors = next((s for s in catalogue if s.role == "errors" and s.has_counts), None)
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


def sloth_id(options: RuleOptions) -> str:
    return f"{options.service}-{SLO_NAME}"


def sli_error_series(window: str) -> str:
    """sloth's error ratio of the SLO over a window: `slo:sli_error:ratio_rate5m`."""
    return f"slo:sli_error:ratio_rate{window}"


def _slo_labels(options: RuleOptions, track: str) -> dict[str, str]:
    return {"sloth_id": sloth_id(options), "sloth_service": options.service, "sloth_slo": SLO_NAME, "track": track}


def _slo_filter(options: RuleOptions, track: str | None = None) -> str:
    labels = _slo_labels(options, track or "")
    if track is None:
        del labels["track"]
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


_SLO_JOIN = "on(sloth_id, sloth_service, sloth_slo, track)"


def _current_burn_hours(options: RuleOptions) -> float:
    """sloth's current burn: over the quick page's short window (5 min), also without burn alerts."""
    return options.burn_windows[0].short_hours if options.burn_windows else BURN_WINDOWS[0].short_hours


def _sli_windows(options: RuleOptions) -> list[float]:
    """The windows in hours the SLI is recorded over: the burn windows', the current burn's, the
    predictions', the period."""
    hours = {h for w in options.burn_windows for h in (w.long_hours, w.short_hours)} | {_current_burn_hours(options)}
    return sorted(hours | set(options.predict_windows_hours) | {options.slo_period_hours})


def _sloth_sli_rules(catalogue: tuple[Signal, ...], options: RuleOptions) -> list[dict]:
    errors = next((s for s in catalogue if s.role == "errors" and s.has_counts), None)
    if errors is None:
        return []
    rules = []
    for track in TRACKS:
        for hours in _sli_windows(options):
            window = duration(hours * 3600)
            bad = render_query(errors.bad_query, track, hours * 3600)
            total = render_query(errors.total_query, track, hours * 3600)
            rules.append({"record": sli_error_series(window), "expr": f"({bad}) / ({total})",
                          "labels": {**_slo_labels(options, track), "sloth_window": window}})
    return rules


def _sloth_meta_rules(options: RuleOptions) -> list[dict]:
    """sloth's metadata recordings, per track; the burns divide the ratio by the budget as sloth does."""
    period = duration(options.slo_period_hours * 3600)
    current = duration(_current_burn_hours(options) * 3600)
    rules = []
    for track in TRACKS:
        labels, where = _slo_labels(options, track), _slo_filter(options, track)

        def burn(window: str) -> str:
            return f"{sli_error_series(window)}{where} / {_SLO_JOIN} group_left slo:error_budget:ratio{where}"

        recorded = (("slo:objective:ratio", f"vector({options.slo_objective:g})"),
                    ("slo:error_budget:ratio", f"vector(1-{options.slo_objective:g})"),
                    ("slo:time_period:days", f"vector({options.slo_period_hours / 24:g})"),
                    ("slo:current_burn_rate:ratio", burn(current)),
                    ("slo:period_burn_rate:ratio", burn(period)),
                    ("slo:period_error_budget_remaining:ratio", f"1 - slo:period_burn_rate:ratio{where}"))
        rules += [{"record": record, "expr": expr, "labels": dict(labels)} for record, expr in recorded]
    return rules


def _exhaustion_rules(options: RuleOptions) -> list[dict]:
    """remaining x period / burn per prediction window; a burn of 0 leaves no sample (never spent)."""
    period_seconds = options.slo_period_hours * 3600
    rules = []
    for track in TRACKS:
        where = _slo_filter(options, track)
        for hours in sorted(options.predict_windows_hours):
            window = duration(hours * 3600)
            burn = f"{sli_error_series(window)}{where} / {_SLO_JOIN} group_left slo:error_budget:ratio{where}"
            rules.append({
                "record": EXHAUSTION_SERIES,
                "expr": (f"clamp_min(max without(sloth_window) (slo:period_error_budget_remaining:ratio{where}), 0) "
                         f"* {period_seconds:.0f} "
                         f"/ {_SLO_JOIN} ({burn} > 0)"),
                "labels": {**_slo_labels(options, track), "burn_window": window}})
    return rules


def _budget_rules(catalogue: tuple[Signal, ...], options: RuleOptions) -> list[dict]:
    """The SLI, sloth's metadata, the predictions and their alerts, in the order they read each other."""
    sli = _sloth_sli_rules(catalogue, options)
    if not sli:
        return []
    return sli + _sloth_meta_rules(options) + _exhaustion_rules(options) + _exhaustion_alerts(options)


def _exhaustion_alerts(options: RuleOptions) -> list[dict]:
    """Both the longest and the shortest window's prediction under the horizon: the trend is real
    and still going on."""
    long = duration(max(options.predict_windows_hours) * 3600)
    short = duration(min(options.predict_windows_hours) * 3600)
    where = _slo_filter(options)[:-1]
    alerts = []
    for severity, horizon in (("warning", options.ticket_horizon_hours), ("critical", options.page_horizon_hours)):
        seconds = f"{horizon * 3600:g}"
        alerts.append({
            "alert": EXHAUSTION_ALERT,
            "expr": (f'{EXHAUSTION_SERIES}{where},burn_window="{long}"}} < {seconds} '
                     f'and ignoring(burn_window) {EXHAUSTION_SERIES}{where},burn_window="{short}"}} < {seconds}'),
            "labels": {"severity": severity, "service": options.service, "horizon": f"{horizon:g}h"},
            "annotations": {
                "summary": (f"{options.service} {{{{ $labels.track }}}}: error budget gone in "
                            f"{{{{ $value | humanizeDuration }}}} at this rate ({long} burn; under {horizon:g} h)"),
                "description": (f"remaining x period / burn over {long} and {short} both under {horizon:g} h "
                                f"for the {options.slo_objective:g} SLO over {options.slo_period_hours:g} h"),
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
    budget = settings.process.budget
    return RuleOptions(**{"service": settings.target.service,
                          "predict_windows_hours": tuple(budget.predict_windows_hours),
                          "ticket_horizon_hours": budget.ticket_horizon_hours,
                          "page_horizon_hours": budget.page_horizon_hours,
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
        {"name": "golive-budget", "rules": _budget_rules(catalogue, options)},
        {"name": "golive-critical", "rules": _critical_alerts(catalogue, options)},
    ]
    return {"groups": [g for g in groups if g["rules"]]}


def render_rules(rules: dict) -> str:
    """YAML for a rule file, with a header saying where it comes from."""
    body = yaml.safe_dump(rules, sort_keys=False, width=120, allow_unicode=True)
    return "# Generated by `golive rules` from the signal catalogue and settings; edit those, not this.\n" + body
