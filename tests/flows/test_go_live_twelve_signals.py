"""A real go-live judged on a list of twelve signals: the runbook's eight, the router's two (from
nginx's log, renamed beside the service's own latency and 5xx), and two of Prometheus' own series
for every target it scrapes (`scrape_duration_seconds`, `scrape_samples_scraped`, per track by the
scrape's label). It goes Live on the sandbox through the go-live flow; the war room has twelve
columns, the dashboard a panel per signal, the success criteria and the one-liner count twelve."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
import yaml

from golive import layout
from golive.signal_packs import PACKS
from tests.flows.helpers import flow_settings

pytestmark = pytest.mark.sandbox


def _router(name: str, column: str) -> dict:
    """The router pack's signal `name` under another name and column, no role (the runbook's have them)."""
    fields = {k: v for k, v in asdict(next(s for s in PACKS["router"].signals if s.name == name)).items()
              if k not in ("name", "role")}
    return {**fields, "column": column, "title": f"Router {fields['title']}"}


EXTRA = {
    "router_p95_ms": _router("http_p95_ms", "rt.p95"),
    "router_5xx_pct": _router("http_5xx_pct", "rt.5xx%"),
    # Prometheus' own series for each target it scrapes: how long the service's /metrics took to
    # answer (within the scrape timeout), and how many samples it exported (no series explosion).
    "scrape_ms": {"kind": "gauge", "rule": "max", "threshold": 900, "unit": "ms", "column": "scrape",
                  "value_query": '1000 * max(max_over_time(scrape_duration_seconds{job="spark",track="$track"}'
                                 "[$window]))"},
    "exported_samples": {"kind": "gauge", "rule": "max", "threshold": 20000, "unit": "samples", "column": "samples",
                         "value_query": 'max(max_over_time(scrape_samples_scraped{job="spark",track="$track"}'
                                        "[$window]))"},
}
COLUMNS = ["p95", "5xx%", "ws_stale", "risk/min", "idem%", "cspΔ", "evloop", "gc", "rt.p95", "rt.5xx%", "scrape",
           "samples"]


def test_a_go_live_judged_on_twelve_signals_goes_live_and_counts_twelve(sandbox, canary_weight, signing_key,
                                                                        tmp_path):
    from cli.main import main
    from flows.go_live import go_live

    settings = flow_settings(sandbox, signing_key, tmp_path / "live", [100], policy={"signals": EXTRA})
    state = go_live("1.4.0", settings=settings, return_state=True)
    assert (state.type.value, state.name) == ("COMPLETED", "Live"), state.message

    folder = tmp_path / "live" / "v1.4.0"
    stage = json.loads((folder / layout.stage_record(100)).read_text())
    judged = stage["decisions"][-1]["signals"]
    assert len(judged) == 12 and list(judged)[8:] == list(EXTRA)
    rows = json.loads((folder / layout.WAR_ROOM_JSON).read_text())
    assert rows[-1]["columns"] == COLUMNS
    assert (folder / layout.WAR_ROOM_MD).read_text().splitlines()[0] == (
        f"| Time | Stage | {' | '.join(COLUMNS)} | Decision |")
    assert "; 12/12 green" in (folder / layout.RELEASE_ONELINER).read_text()  # then any transient breach held
    criteria = json.loads((folder / layout.SUCCESS_CRITERIA).read_text())
    assert criteria["each_stage_green_at_proceed"]["ok"] and criteria["final_signals_green"]["ok"]
    preflight = json.loads((folder / layout.preflight_check("signal_data")).read_text())
    assert preflight["ok"] and preflight["detail"].startswith("12/12 signals answer for both tracks")

    # The dashboard of the same settings: one panel per signal, in the list's order.
    config, out = tmp_path / "golive.yaml", tmp_path / "dashboard.json"
    config.write_text(yaml.safe_dump(settings, allow_unicode=True, sort_keys=False))
    assert main(["dashboard", "--config", str(config), "--out", str(out)]) == 0
    panels = json.loads(out.read_text())["panels"]
    assert [p.get("description") for p in panels if p["type"] == "timeseries"][:12] == list(judged)
    assert "The twelve signals, canary against stable" in out.read_text()
