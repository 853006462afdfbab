"""The Grafana dashboard: built with Grafana's SDK from the catalogue and the settings, loaded back
through the SDK, the shipped copy current; in the sandbox every panel's PromQL is accepted by the
real Prometheus and answers for both tracks, and its panels are drawn from that data."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

from cli.observability_commands import render_png, substitute
from golive.dashboard import dashboard_for, dashboard_json, panel_queries
from golive.error_budget_panel import TITLE as EXHAUSTION_TITLE
from golive.rules import build_rules, options_for, render_rules
from golive.settings import load_settings
from golive.shadow import SHADOW_SERIES, shadow_series
from golive.signals import CATALOGUE
from tasks.pushgateway import delete_series, push_series

SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "golive-spark.json"


def _dashboard(settings) -> str:
    return dashboard_json(dashboard_for(settings))


def _load(text: str) -> Dashboard:
    register_default_plugins()
    return Dashboard.from_json(json.loads(text))


def _panel(model: Dashboard, title_start: str):
    return next(p for p in model.panels if p.title.startswith(title_start))


def _steps(panel) -> list[tuple[float | None, str]]:
    return [(s.value, s.color) for s in panel.field_config.defaults.thresholds.steps]


def test_the_dashboard_loads_back_through_the_sdk_with_every_panel():
    model = _load(_dashboard(load_settings({"release": "1.4.0"})))
    assert model.uid == "golive-spark"
    assert [v.name for v in model.templating.list_val] == ["datasource", "service", "track"]
    assert [a.name for a in model.annotations.list_val] == ["golive decisions", "critical alerts"]
    titles = [p.title for p in model.panels if getattr(p, "targets", None)]
    assert len(titles) == 8 + 1 + 2 + 3 + 3
    for sig in CATALOGUE:
        panel = _panel(model, sig.title + " (")
        assert {t.legend_format for t in panel.targets} >= {"{{track}}"}
        if sig.rule != "max_ratio_to_baseline":
            assert _steps(panel) == [(None, "green"), (sig.threshold, "red")]
    assert _steps(_panel(model, "Panel 11")) == [(None, "green"), (30, "yellow"), (50, "red")]
    assert _steps(_panel(model, "Panel 12")) == [(None, "green"), (15, "yellow"), (20, "red")]
    assert [t.legend_format for t in _panel(model, "Burn rate").targets] == ["1 h {{track}}", "6 h {{track}}",
                                                                             "24 h {{track}}"]
    assert _steps(_panel(model, "Shadow: drift p99")) == [(None, "green"), (5, "red")]
    assert _steps(_panel(model, "Shadow: answers differing")) == [(None, "green"), (1, "red")]
    assert [t.legend_format for t in _panel(model, "Shadow: stable's API latency p95").targets] == [
        "mirror on", "mirror off"]


def test_without_the_shadow_stage_the_dashboard_has_no_shadow_row():
    model = _load(_dashboard(load_settings({"release": "1.4.0", "policy": {"shadow": {"enabled": False}}})))
    assert not [p for p in model.panels if p.title.startswith("Shadow")]


def test_a_threshold_changed_in_settings_changes_the_panel():
    settings = load_settings({"release": "1.4.0", "policy": {"signals": {"api_p95_ms": {"threshold": 250},
                                                                       "gc_pause_avg_ms": {"threshold": 25}}}})
    model = _load(_dashboard(settings))
    assert _steps(_panel(model, "API latency p95"))[-1] == (250, "red")
    assert _steps(_panel(model, "Panel 12")) == [(None, "green"), (15, "yellow"), (25, "red")]


def test_the_shipped_dashboard_is_the_generated_one():
    assert SHIPPED.read_text() == _dashboard(load_settings({"release": "0.0.0"})), \
        "regenerate it: golive dashboard --out deploy/grafana/golive-spark.json"


@pytest.fixture
def recorded(sandbox, tmp_path):
    """The sandbox's Prometheus recording golive's series (the shipped rules' 1-minute window).
    Without the burn alerts: over earlier tests' faults they would fire, and Alertmanager would
    hold them for minutes after, into a later go-live on this shared sandbox."""
    settings = load_settings({**sandbox.golive_settings(), "release": "1.4.0"})
    path = tmp_path / "rules.yml"
    path.write_text(render_rules(build_rules(settings.policy.catalogue(), options_for(settings, burn_windows=()))))
    sandbox.load_rules(path)
    try:
        yield settings
    finally:
        sandbox.load_rules(None)


def _answers(prometheus_url: str, expr: str) -> list[dict]:
    response = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": expr}, timeout=10)
    assert response.status_code == 200, f"{expr}: {response.text}"
    return [r for r in response.json()["data"]["result"] if r["value"][1] not in ("NaN", "+Inf", "-Inf")]


def _unanswered(prometheus_url: str, queries, deadline: float) -> list[str]:
    """The queries (panel [legend]: tracks seen) still not answered as their panel needs at `deadline`."""
    while True:
        missing = []
        for query in queries:
            answers = _answers(prometheus_url, substitute(query.expr, "spark"))
            tracks = {r["metric"].get("track") for r in answers}
            if query.panel == EXHAUSTION_TITLE:
                continue  # accepted by Prometheus; a track without a sample burns nothing ("never at this rate")
            # A panel over the `track` variable must show both; the others (canary-only gauges,
            # the stable limit, the weight) must answer at all.
            if not answers or ('track=~"$track"' in query.expr and tracks != {"stable", "canary"}):
                missing.append(f"{query.panel} [{query.legend}]: {sorted(map(str, tracks))}")
        if not missing or time.monotonic() > deadline:
            return missing
        time.sleep(1)


@pytest.mark.sandbox
def test_every_panel_query_answers_for_both_tracks_in_the_sandbox(sandbox, canary_weight, recorded, tmp_path):
    canary_weight(10)
    model = _load(_dashboard(recorded))
    queries = panel_queries(model)
    # The shadow stage's row reads what a go-live pushes while its mirror is on: pushed here as it does.
    url = recorded.prometheus.pushgateway_url
    push_series(url, "spark", "0.0.1", shadow_series({"pairs": 40, "p99_abs_ms": 1.5},
                                                     {"compared_by_route": {"GET /quote": 60}, "fields": []}),
                SHADOW_SERIES)
    try:
        mirror_off = [q for q in queries if q.legend == "mirror off"]
        missing = _unanswered(sandbox.prometheus_url, [q for q in queries if q not in mirror_off],
                              time.monotonic() + 30)
        assert not missing, missing
        assert mirror_off and not _answers(sandbox.prometheus_url, substitute(mirror_off[0].expr, "spark"))
    finally:
        delete_series(url, "spark", "0.0.1")
    assert not _unanswered(sandbox.prometheus_url, mirror_off, time.monotonic() + 30)
    annotation = next(a for a in model.annotations.list_val if a.name == "critical alerts")
    _answers(sandbox.prometheus_url, substitute(annotation.expr, "spark"))  # accepted, empty or not

    png = tmp_path / "panels.png"
    render_png(model, sandbox.prometheus_url, png, "spark", minutes=1)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
