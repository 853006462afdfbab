"""The operator's Grafana dashboard, built with Grafana's own SDK from the judge's catalogue.

Every signal's panel reads the series `golive rules` records (`golive:<signal>:<window>`), so the
dashboard, the alerts and the judge see the same numbers, and every threshold comes from the
settings in force: change one there and the panel's line moves with it.

Panels, top to bottom: the go-live's signals (the list in the settings, in its order), canary
against stable, each with its threshold line
(the relative rule draws the stable line times its factor); the canary's weight as the users'
requests show it; the runbook's panel 11 (event-loop lag p95, steps 30 / 50 ms) and panel 12 (GC
pause mean, steps 15 / 20 ms) as gauges; the error budget left and its burn rate over 1 h, 6 h and
24 h; the shadow stage's own checks, from the series golive pushes while its mirror is on
(`golive.shadow.SHADOW_SERIES`, read only while fresh: a go-live that died leaves its last push
behind): the drift of paper against live fills, the canary's answers differing beyond stable's
secondary, and stable's latency with the mirror on and off. Annotations: golive's decisions
(Grafana annotations tagged `golive` and the service) and the critical alerts that fired.
Variables: the data source, the service and the tracks.
"""

from __future__ import annotations

from dataclasses import dataclass

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import gauge, timeseries
from grafana_foundation_sdk.builders.common import GraphThresholdsStyleConfig
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import GraphThresholdsStyleMode
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    VariableRefresh,
)

from golive.error_budget_panel import exhaustion_panel
from golive.rules import RuleOptions, duration, error_ratio_series, options_for, signal_series
from golive.settings import GoLiveSettings, ShadowSettings
from golive.signals import Signal, by_role, render_query

__all__ = ["PanelQuery", "build_dashboard", "dashboard_json", "panel_queries"]

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
GRAFANA_ANNOTATIONS = DataSourceRef(type_val="grafana", uid="-- Grafana --")
SERVICE, TRACKS = 'service="$service"', 'track=~"$track"'
# The runbook's gauges give their warning steps in milliseconds; the red step is the signal's threshold.
RUNBOOK_GAUGES = {"event_loop_p95_ms": ("11", 30.0), "gc_pause_avg_ms": ("12", 15.0)}
BURN_PANEL_HOURS = (1, 6, 24)
_UNITS = {"ms": "ms", "s": "s", "%": "percent", "/min": "short"}


@dataclass(frozen=True)
class PanelQuery:
    """One query of one panel, as the dashboard holds it (with Grafana's variables)."""

    panel: str
    legend: str
    expr: str


def _thresholds(*steps: tuple[float | None, str]) -> db.ThresholdsConfig:
    return db.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(
        [Threshold(value=value, color=color) for value, color in steps])


def _query(expr: str, legend: str, ref: str) -> Dataquery:
    return Dataquery().expr(expr).legend_format(legend).ref_id(ref).range().datasource(DATASOURCE)


def _signal_panel(sig: Signal, window: str) -> timeseries.Panel:
    series = signal_series(sig.name, window)
    panel = (timeseries.Panel().title(f"{sig.title} ({sig.rule_text()})").description(sig.name)
             .unit(_UNITS.get(sig.unit, "short")).min(0).height(8).span(6).datasource(DATASOURCE)
             .with_target(_query(f"{series}{{{SERVICE},{TRACKS}}}", "{{track}}", "A")))
    if sig.rule == "max_ratio_to_baseline":
        return panel.with_target(_query(f'{sig.threshold:g} * {series}{{{SERVICE},track="stable"}}',
                                        f"limit: stable x {sig.threshold:g}", "B"))
    return (panel.thresholds(_thresholds((None, "green"), (sig.threshold, "red")))
            .thresholds_style(GraphThresholdsStyleConfig().mode(GraphThresholdsStyleMode.DASHED)))


def _runbook_gauge(sig: Signal, window: str) -> gauge.Panel:
    number, warn = RUNBOOK_GAUGES[sig.name]
    return (gauge.Panel().title(f"Panel {number}: {sig.title} (canary)").description(sig.name)
            .unit("ms").min(0).max(sig.threshold * 2).height(8).span(6).datasource(DATASOURCE)
            .thresholds(_thresholds((None, "green"), (min(warn, sig.threshold), "yellow"), (sig.threshold, "red")))
            .with_target(_query(f'{signal_series(sig.name, window)}{{{SERVICE},track="canary"}}', "canary", "A")))


def _weight_panel(traffic_canary_query: str, traffic_total_query: str, window: str) -> timeseries.Panel:
    seconds = _seconds(window)
    share = (f"100 * ({render_query(traffic_canary_query, 'canary', seconds)})"
             f" / ({render_query(traffic_total_query, 'canary', seconds)})")
    return (timeseries.Panel().title("Canary weight (users' requests served by the canary)").unit("percent")
            .min(0).max(100).height(8).span(12).datasource(DATASOURCE)
            .with_target(_query(share, "canary %", "A")))


def _budget_gauge(options: RuleOptions, freeze_below: float) -> gauge.Panel:
    period = duration(options.slo_period_hours * 3600)
    remaining = f"1 - {error_ratio_series(period)}{{{SERVICE},{TRACKS}}} / {options.error_budget:g}"
    return (gauge.Panel().title(f"Error budget left ({options.slo_objective:g} over {period})")
            .unit("percentunit").min(0).max(1).height(8).span(6).datasource(DATASOURCE)
            .thresholds(_thresholds((None, "red"), (freeze_below, "yellow"), (0.5, "green")))
            .with_target(_query(remaining, "{{track}}", "A")))


def _burn_panel(options: RuleOptions) -> timeseries.Panel:
    factors = sorted({w.factor for w in options.burn_windows if w.long_hours in BURN_PANEL_HOURS})
    panel = (timeseries.Panel().title("Burn rate 1 h / 6 h / 24 h").unit("short").min(0).height(8).span(12)
             .datasource(DATASOURCE)
             .thresholds(_thresholds((None, "green"), *((f, "orange" if f < max(factors) else "red") for f in factors)))
             .thresholds_style(GraphThresholdsStyleConfig().mode(GraphThresholdsStyleMode.DASHED)))
    for ref, hours in zip("ABC", BURN_PANEL_HOURS):
        window = duration(hours * 3600)
        panel = panel.with_target(_query(f"{error_ratio_series(window)}{{{SERVICE},{TRACKS}}} / {options.error_budget:g}",
                                         f"{hours} h {{{{track}}}}", ref))
    return panel


def _pushed(series: str, fresh_seconds: float) -> str:
    """A series golive pushes, for the service, only while its group was pushed within `fresh_seconds`."""
    return (f"{series}{{{SERVICE}}} and on(job, service, release) "
            f"(time() - push_time_seconds{{{SERVICE}}} < {fresh_seconds:g})")


def _shadow_panels(catalogue: tuple[Signal, ...], shadow: ShadowSettings, window: str,
                   fresh_seconds: float) -> list[timeseries.Panel]:
    def limit_line(panel: timeseries.Panel, limit: float) -> timeseries.Panel:
        return (panel.thresholds(_thresholds((None, "green"), (limit, "red")))
                .thresholds_style(GraphThresholdsStyleConfig().mode(GraphThresholdsStyleMode.DASHED)))

    drift = (timeseries.Panel().title(f"Shadow: drift p99, paper against live fills (< {shadow.drift_p99_max_ms:g} ms)")
             .unit("ms").min(0).height(8).span(8).datasource(DATASOURCE)
             .with_target(_query(_pushed("golive_shadow_drift_p99_ms", fresh_seconds), "{{release}}", "A")))
    differ = (timeseries.Panel().title(f"Shadow: answers differing beyond the secondary's "
                                       f"(<= {shadow.response_margin_pct:g} points)")
              .unit("percent").min(0).height(8).span(8).datasource(DATASOURCE)
              .with_target(_query(_pushed("golive_shadow_response_difference_points", fresh_seconds),
                                  "{{release}}", "A")))
    panels = [limit_line(drift, shadow.drift_p99_max_ms), limit_line(differ, shadow.response_margin_pct)]
    latency = by_role(catalogue, "latency")
    if latency is not None:
        stable = f'{signal_series(latency.name, window)}{{{SERVICE},track="stable"}}'
        mirror_on = f"on(service) (({_pushed('golive_shadow_mirror_on', fresh_seconds)}) == 1)"
        panels.append(timeseries.Panel().title(f"Shadow: stable's {latency.title}, mirror on / off")
                      .unit(_UNITS.get(latency.unit, "short")).min(0).height(8).span(8).datasource(DATASOURCE)
                      .with_target(_query(f"{stable} and {mirror_on}", "mirror on", "A"))
                      .with_target(_query(f"{stable} unless {mirror_on}", "mirror off", "B")))
    return panels


def _seconds(window: str) -> float:
    sizes = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return float(window[:-1]) * sizes[window[-1]]


def _in_words(count: int) -> str:
    words = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")
    return words[count - 1] if 1 <= count <= len(words) else str(count)


def _variables(first_signal: str, window: str) -> list:
    # The service and track choices are read off the list's first recorded series, which any list has.
    any_signal = signal_series(first_signal, window)
    return [
        db.DatasourceVariable("datasource").label("Prometheus").type("prometheus"),
        db.QueryVariable("service").label("Service").datasource(DATASOURCE)
        .query(f"label_values({any_signal}, service)").refresh(VariableRefresh.ON_TIME_RANGE_CHANGED),
        db.QueryVariable("track").label("Track").datasource(DATASOURCE)
        .query(f'label_values({any_signal}{{{SERVICE}}}, track)').refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .multi(True).include_all(True).all_value("stable|canary"),
    ]


def _annotations() -> list:
    return [
        db.AnnotationQuery().name("golive decisions").datasource(GRAFANA_ANNOTATIONS).enable(True)
        .icon_color("blue").target(db.AnnotationTarget().type("tags").tags(["golive", "$service"]).match_any(False)
                                   .limit(500)),
        db.AnnotationQuery().name("critical alerts").datasource(DATASOURCE).enable(True).icon_color("red")
        .expr(f'ALERTS{{alertstate="firing",severity="critical",{SERVICE}}}'),
    ]


def dashboard_for(settings: GoLiveSettings, options: RuleOptions | None = None) -> db.Dashboard:
    """`build_dashboard` for the settings in force: their signals, traffic queries, budget freeze
    line, shadow stage and interval; `options` default to the settings' own (`options_for`)."""
    return build_dashboard(settings.policy.catalogue(), options or options_for(settings),
                           traffic_canary_query=settings.prometheus.traffic_canary_query,
                           traffic_total_query=settings.prometheus.traffic_total_query,
                           freeze_below_budget=settings.process.first_night.freeze_below_budget,
                           shadow=settings.policy.shadow, interval_seconds=settings.policy.interval_seconds)


def build_dashboard(catalogue: tuple[Signal, ...], options: RuleOptions | None = None, *,
                    traffic_canary_query: str, traffic_total_query: str,
                    freeze_below_budget: float = 0.10, shadow: ShadowSettings | None = None,
                    interval_seconds: float = 60.0) -> db.Dashboard:
    """The dashboard's builder (call `.build()` for the model); `options` as for `golive rules`;
    `shadow`: the shadow stage's row, its pushes fresh for three `interval_seconds` (none when off)."""
    options = options or RuleOptions()
    window = options.window
    board = (db.Dashboard(f"golive: {options.service} go-live").uid(f"golive-{options.service}")
             .tags(["golive", "canary"]).refresh("10s").time("now-1h", "now").timezone("browser")
             .editable().variables(_variables(catalogue[0].name, window)).annotations(_annotations()))
    board = board.with_row(db.Row(f"The {_in_words(len(catalogue))} signals, canary against stable"))
    for sig in catalogue:
        board = board.with_panel(_signal_panel(sig, window))
    board = board.with_row(db.Row("Traffic and the runbook's panels 11 and 12"))
    board = board.with_panel(_weight_panel(traffic_canary_query, traffic_total_query, window))
    for sig in catalogue:
        if sig.name in RUNBOOK_GAUGES:
            board = board.with_panel(_runbook_gauge(sig, window))
    board = board.with_row(db.Row("Error budget"))
    board = (board.with_panel(_budget_gauge(options, freeze_below_budget))
             .with_panel(exhaustion_panel(options, DATASOURCE)).with_panel(_burn_panel(options)))
    if shadow is not None and shadow.enabled:
        board = board.with_row(db.Row("The shadow stage (golive's pushed series)"))
        for panel in _shadow_panels(catalogue, shadow, window, 3 * interval_seconds):
            board = board.with_panel(panel)
    return board


def dashboard_json(board: db.Dashboard) -> str:
    return JSONEncoder(sort_keys=True, indent=2).encode(board.build()) + "\n"


def panel_queries(model) -> list[PanelQuery]:
    """Every panel's PromQL in a dashboard model (built, or loaded back from its JSON)."""
    return [PanelQuery(panel.title, target.legend_format or "", target.expr)
            for panel in model.panels if getattr(panel, "targets", None)
            for target in panel.targets]
